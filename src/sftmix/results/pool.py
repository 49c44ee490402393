"""Seeds pooled into one interval, and the range each metric lives in.

The results store holds one row per (run, metric). A run's name ends in
``/<model>/s<seed>``; results speak of the run without its seed and pool the
seeds: the value is the mean over seeds, and the 95% interval comes from the
larger of two standard errors -- the spread between seeds (``sd / sqrt(S)``)
and the evaluation's own sampling error (the per-seed intervals' half-widths
/ 1.96, combined as the error of a mean). With one seed the run's own interval
is kept as it is. Design coordinates become ``c_<name>`` columns (``c_fraction``,
``c_setup``, ``c_k``, ``c_strategy``, ...), so they never collide with the
evaluated ``ability``.
"""

from __future__ import annotations

import math
import re
from functools import cache
from typing import Any

import pandas as pd

Z95 = 1.959963984540054
_SEED = re.compile(r"/s-?\d+$")
KEY_COLUMNS = ["run", "design", "model", "ability", "suite", "metric"]


def run_group(name: str) -> str:
    """A run's name without its seed: ``mixed/1/m/s0`` -> ``mixed/1/m``."""
    return _SEED.sub("", name)


def tidy(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Store rows as a frame with the design coordinates as ``c_<name>`` columns."""
    base = ["run", "design", "model", "seed", "ability", "suite", "metric", "value", "ci_low",
            "ci_high", "n", "higher_is_better", "primary", "eval"]
    if not rows:
        return pd.DataFrame(columns=[*base, "group"])
    frame = pd.DataFrame([{k: r[k] for k in base} for r in rows])
    coords = pd.DataFrame([{f"c_{k}": v for k, v in r["coords"].items()} for r in rows])
    frame = pd.concat([frame, coords], axis=1)
    frame["group"] = frame["run"].map(run_group)
    frame = frame[frame["value"].notna()].reset_index(drop=True)
    return frame


@cache
def _declared_ranges() -> dict[tuple[str, str], tuple[float, float]]:
    """(suite, metric) -> (low, high) for metrics a suite declares on its class."""
    from sftmix.eval.base import Task
    from sftmix.eval.runner import import_suites

    import_suites()
    out: dict[tuple[str, str], tuple[float, float]] = {}
    todo = list(Task.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        for m in getattr(cls, "metrics", ()) if isinstance(getattr(cls, "metrics", ()), tuple) else ():
            out[(getattr(cls, "name", ""), m.name)] = (m.low, m.high)
    return out


def metric_range(suite: str, metric: str) -> tuple[float, float]:
    """The range a metric's values lie in: as its suite declares it, else a rate's [0, 1].

    A metric is a mean of per-item values in its range (``sftmix.eval.base.Metric``,
    whose default range is [0, 1]), so its interval must stay inside it too.
    """
    return _declared_ranges().get((suite, metric), (0.0, 1.0))


def scaled(value: float, suite: str, metric: str, higher_is_better: bool = True) -> float:
    """A metric's value on its range, the *scaled score*: 0 its worst end, 1 its best.

    An accuracy or a pass rate is itself; an MT-Bench score s is (s - 1) / 9. The one scale
    on which the report's and ``sftmix suggest``'s weighted scores are computed.
    """
    lo, hi = metric_range(suite, metric)
    span = hi - lo if math.isfinite(hi - lo) and hi > lo else 1.0
    return (value - lo) / span if higher_is_better else (hi - value) / span


def _clip(value: float | None, low: float, high: float) -> float | None:
    return None if value is None else min(max(value, low), high)


def _pool(group: pd.DataFrame, bounds: tuple[float, float] = (-math.inf, math.inf)) -> dict[str, Any]:
    values = group["value"].astype(float)
    mean = float(values.mean())
    lows, highs = group["ci_low"], group["ci_high"]
    if len(group) == 1:
        low = None if pd.isna(lows.iloc[0]) else float(lows.iloc[0])
        high = None if pd.isna(highs.iloc[0]) else float(highs.iloc[0])
        return {"value": mean, "ci_low": _clip(low, *bounds), "ci_high": _clip(high, *bounds),
                "n_seeds": 1}
    s = len(group)
    between = float(values.std(ddof=1)) / math.sqrt(s)
    if lows.notna().all() and highs.notna().all():
        half = (highs.astype(float) - lows.astype(float)) / 2 / Z95
        within = math.sqrt(float((half**2).sum())) / s
    else:
        within = 0.0
    se = max(between, within)
    # mean +- 1.96 se can leave the metric's range (every seed at 0 but one); the range is exact.
    return {"value": mean, "ci_low": _clip(mean - Z95 * se, *bounds),
            "ci_high": _clip(mean + Z95 * se, *bounds), "n_seeds": s}


def pool_seeds(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (run without seed, metric): mean over seeds and the pooled 95% interval."""
    coord_cols = [c for c in frame.columns if c.startswith("c_")]
    cols = [*KEY_COLUMNS, *coord_cols, "value", "ci_low", "ci_high", "n_seeds", "n",
            "higher_is_better", "primary", "seeds", "seed_values", "evals"]
    if frame.empty:
        return pd.DataFrame(columns=cols)
    out = []
    for (group, _, _, _, suite, metric), part in frame.groupby(
            ["group", "design", "model", "ability", "suite", "metric"], sort=False, dropna=False):
        first = part.iloc[0]
        row = {"run": group, "design": first["design"], "model": first["model"],
               "ability": first["ability"], "suite": suite, "metric": metric}
        row.update({c: first[c] for c in coord_cols})
        row.update(_pool(part, metric_range(str(suite), str(metric))))
        row["n"] = None if pd.isna(first["n"]) else int(first["n"])
        row["higher_is_better"] = bool(first["higher_is_better"])
        row["primary"] = bool(first["primary"])
        ordered = part.sort_values("seed")
        row["seeds"] = [int(s) for s in ordered["seed"]]
        row["seed_values"] = [float(v) for v in ordered["value"]]
        row["evals"] = tuple(sorted(set(part["eval"])))
        out.append(row)
    return pd.DataFrame(out, columns=cols)
