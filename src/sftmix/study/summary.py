"""Human-readable views of a plan."""

from __future__ import annotations

from sftmix.study.cost import Cost
from sftmix.study.estimate import Estimate
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


def duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3.4 h``, ``2.1 days``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def estimate_summary(est: Estimate, headers: dict[str, list[str]] | None = None, brief: bool = False) -> str:
    """The estimate as ``sftmix plan`` prints it (``brief``: the lines ``sftmix run`` prints)."""
    rows = est.by_kind()
    to_run = sum(r["to_run"] for r in rows.values())
    gpu = sum(r["gpu_hours"] for r in rows.values())
    cpu = sum(r["cpu_hours"] for r in rows.values())
    hours = f"{gpu:,.1f} GPU-hours" if gpu else f"{cpu:,.1f} CPU-hours"
    wall = (f"wall time: about {duration(est.wall_seconds)} ({est.wall_how}); "
            f"{to_run} of {len(est.jobs)} jobs to run, {duration(est.job_seconds)} of job time, {hours}")
    lines = [f"estimate on the {est.executor} executor ({est.machine}):"]
    if brief:
        lines.append("  " + wall)
        lines += [f"  {what}: {rate.value:,.4g} {rate.unit} ({rate.source})" for what, rate in est.rates.items()]
        return "\n".join(lines + [f"  {note}" for note in est.notes])
    table = [("kind", "jobs", "to run", "each on", "longest job", "job time", "CPU-hours", "GPU-hours")]
    for kind, r in rows.items():
        table.append((kind, str(r["jobs"]), str(r["to_run"]), r["device"].describe(), duration(r["longest"]),
                      duration(r["seconds"]), f"{r['cpu_hours']:,.2f}", f"{r['gpu_hours']:,.2f}"))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        lines.append("  " + "  ".join(cell.ljust(w) if i in (0, 3) else cell.rjust(w)
                                      for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip())
    lines.append("  " + wall)
    lines.append("  rates (per job, on what it asks for):")
    lines += [f"    {what}: {rate.value:,.4g} {rate.unit} ({rate.source})" for what, rate in est.rates.items()]
    lines += [f"  {note}" for note in est.notes]
    for kind, header in (headers or {}).items():
        lines.append(f"  sbatch header, {kind} jobs:")
        lines += [f"    {line}" for line in header]
    return "\n".join(lines)
