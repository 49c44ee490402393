"""Human-readable views of a plan."""

from __future__ import annotations

from sftmix.study.plan import Plan


def plan_summary(plan: Plan, list_runs: bool = False) -> str:
    lines = [f"study {plan.study.name}: {len(plan.runs)} runs"]
    by_design: dict[str, int] = {}
    for run in plan.runs:
        by_design[run.design] = by_design.get(run.design, 0) + 1
    lines.append("  " + ", ".join(f"{d}: {n}" for d, n in by_design.items()))
    if list_runs:
        for run in plan.runs:
            chain = " -> ".join(f"{plan.stages[k].recipe.describe()} [{k[:8]}]" for k in run.stages)
            lines.append(f"  {run.name}: {chain or '(base model)'}")
    ns, ds = plan.naive_stages, len(plan.stages)
    ne, de = plan.naive_evals, len(plan.evals)
    lines.append(f"training stages: {ds} distinct of {ns} run one at a time (saves {ns - ds}, {_pct(ns - ds, ns)})")
    lines.append(f"evaluations:     {de} distinct of {ne} run one at a time (saves {ne - de}, {_pct(ne - de, ne)})")
    return "\n".join(lines)


def _pct(a: int, b: int) -> str:
    return f"{100 * a / b:.0f}%" if b else "0%"
