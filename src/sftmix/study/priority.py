"""Which ready job to start first: the one with the longest remaining path to the end.

A study's jobs form a graph whose chains differ a lot in size: DMT's stage 2
with k = 1 trains on several times the data of a 1/256 run. Started in plan
order, the largest chain may become ready late and then train alone while the
other workers idle. Starting, among the ready jobs, the one whose longest path
through its dependents costs most (critical-path scheduling) keeps the big
chains moving from the start.

A stage costs its training tokens (``sftmix.study.cost``: from each source's
size and mean length, at four characters per token, capped by ``max_steps``);
a mixture, model or evaluation costs a small fixed amount, so among equals the
plan order is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sftmix.study.jobs import Job

# The cost of a job that trains nothing, in tokens: enough to break ties between
# chains of equal training, small against any real stage.
SMALL_JOB = 1.0


def remaining_path(jobs: Mapping[str, Job], weights: Mapping[str, float]) -> dict[str, float]:
    """Key -> the cost of the job plus the costliest chain of jobs that depend on it."""
    dependents: dict[str, list[str]] = {k: [] for k in jobs}
    for key, job in jobs.items():
        for dep in job.deps:
            if dep in dependents:
                dependents[dep].append(key)
    memo: dict[str, float] = {}

    def path(key: str) -> float:
        if key not in memo:
            below = max((path(d) for d in dependents[key]), default=0.0)
            memo[key] = weights.get(key, SMALL_JOB) + below
        return memo[key]

    for key in reversed(list(jobs)):  # dependents come later in plan order: shallow recursion
        path(key)
    return memo


def by_priority(keys: Iterable[str], priority: Mapping[str, float]) -> list[str]:
    """``keys`` longest remaining path first; plan order among equals (the sort is stable)."""
    return sorted(keys, key=lambda k: -priority.get(k, 0.0))
