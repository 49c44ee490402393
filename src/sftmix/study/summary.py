"""Human-readable views of a plan."""

from __future__ import annotations

from sftmix.study.cost import Cost
from sftmix.study.plan import Plan


def plan_summary(plan: Plan, list_runs: bool = False, cost: Cost | None = None) -> str:
    lines = [f"study {plan.study.name}: {len(plan.runs)} runs"]
    by_design: dict[str, int] = {}
    for run in plan.runs:
        by_design[run.design] = by_design.get(run.design, 0) + 1
    lines.append("  " + ", ".join(f"{d}: {n}" for d, n in by_design.items()))
    strategies = plan.study.designs.get("strategies")
    if strategies is not None and strategies.implied():
        parts = ", ".join(strategies.implied())
        lines.append(f"  strategies: {parts} run by default (not written in the study; "
                     "set each to false to skip)")
    if list_runs:
        for run in plan.runs:
            chain = " -> ".join(f"{plan.stages[k].recipe.describe()} [{k[:8]}]" for k in run.stages)
            lines.append(f"  {run.name}: {chain or '(base model)'}")
    ns, ds = plan.naive_stages, len(plan.stages)
    ne, de = plan.naive_evals, len(plan.evals)
    lines.append(f"training stages: {ds} distinct of {ns} run one at a time (saves {ns - ds}, {_pct(ns - ds, ns)})")
    lines.append(f"evaluations:     {de} distinct of {ne} run one at a time (saves {ne - de}, {_pct(ne - de, ne)})")
    if cost is not None:
        how = "tokens" if cost.exact else "tokens, estimated at 4 characters each"
        saved = cost.naive_tokens - cost.plan_tokens
        lines.append(f"training tokens: {_big(cost.plan_tokens)} of {_big(cost.naive_tokens)} run one at a "
                     f"time (saves {_big(saved)}, {_pct(saved, cost.naive_tokens)}; {how})")
    return "\n".join(lines)


def _big(x: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if x >= size:
            return f"{x / size:.1f}{unit}"
    return f"{x:.0f}"


def _pct(a: float, b: float) -> str:
    return f"{100 * a / b:.0f}%" if b else "0%"
