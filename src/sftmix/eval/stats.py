"""Uncertainty of evaluation scores: bootstrap intervals over items and paired comparisons.

A benchmark score is a mean over a finite set of items (HumanEval: 164, one
problem is 0.6 points), so every reported mean carries a 95% interval from the
percentile bootstrap over items. Two models evaluated on the same items are
compared *paired*: the bootstrap resamples items, not models, which removes the
item-difficulty variance that both share. For binary metrics an exact
two-sided sign test on the discordant items (McNemar's exact test) gives a
p-value that does not depend on resampling at all.

A score whose items are all right or all wrong is still uncertain: 0 out of 100
does not mean the model never succeeds. A metric whose per-item values are only
its two bounds (accuracy, pass@1 from one sample, a prompt-level verdict) gets
the Wilson score interval, which never collapses to a point at either end (0 of
100: [0, 0.037]); so does any other metric whose bootstrap would collapse
because every item has the same value (the proportion taken over its declared
range, with the items' effective number under weights).

Missing values (NaN: a judge that failed to answer, an item not scored) are
excluded and counted, never treated as 0.

Weighted means: an item may carry ``metadata["weights"][metric]`` (for example
the number of instructions in an IFEval prompt), and the summary is then
``sum(w * x) / sum(w)`` -- the micro-average the benchmark defines -- with the
bootstrap resampling whole items (a cluster bootstrap).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from sftmix.eval.base import ItemResult, Metric

DEFAULT_RESAMPLES = 2000
_CHUNK = 2_000_000  # resampled indices held in memory at once


@dataclass(frozen=True)
class Interval:
    mean: float
    ci_low: float
    ci_high: float
    n: int
    n_missing: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PairedComparison:
    """``b`` minus ``a`` over the items both have a value for."""

    diff: float
    ci_low: float
    ci_high: float
    n: int
    n_missing: int
    mean_a: float
    mean_b: float
    # Binary metrics only: items where only one model succeeded, and the exact p-value.
    b_better: int | None = None
    a_better: int | None = None
    p_value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _resampled_means(values: np.ndarray, weights: np.ndarray, resamples: int,
                     rng: np.random.Generator) -> np.ndarray:
    n = len(values)
    per_chunk = max(1, _CHUNK // max(n, 1))
    out = np.empty(resamples)
    wv = weights * values
    for start in range(0, resamples, per_chunk):
        stop = min(resamples, start + per_chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = wv[idx].sum(axis=1) / weights[idx].sum(axis=1)
    return out


def bootstrap_ci(values: Iterable[float], *, weights: Iterable[float] | None = None,
                 resamples: int = DEFAULT_RESAMPLES, confidence: float = 0.95,
                 seed: int = 0) -> Interval:
    """Mean of ``values`` (NaN excluded) with its percentile-bootstrap interval."""
    x = np.asarray(list(values), dtype=float)
    w = np.ones_like(x) if weights is None else np.asarray(list(weights), dtype=float)
    if w.shape != x.shape:
        raise ValueError(f"{len(w)} weights for {len(x)} values")
    keep = ~np.isnan(x) & (w > 0)
    n_missing = int(np.isnan(x).sum())
    x, w = x[keep], w[keep]
    if len(x) == 0:
        return Interval(math.nan, math.nan, math.nan, 0, n_missing)
    mean = float((w * x).sum() / w.sum())
    if len(x) == 1 or np.all(x == x[0]):
        return Interval(mean, mean, mean, len(x), n_missing)
    means = _resampled_means(x, w, resamples, np.random.default_rng(seed))
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return Interval(mean, float(low), float(high), len(x), n_missing)


def wilson_interval(p: float, n: float, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``p`` observed over ``n`` trials."""
    from scipy.stats import norm

    z = float(norm.ppf(1 - (1 - confidence) / 2))
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # At p = 0 (or 1) the bound is 0 (or 1) exactly; rounding would leave 1e-18.
    low = 0.0 if p <= 0 else max(0.0, centre - half)
    high = 1.0 if p >= 1 else min(1.0, centre + half)
    return low, high


def metric_interval(values: Sequence[float], weights: Sequence[float], metric: Metric, *,
                    resamples: int = DEFAULT_RESAMPLES, confidence: float = 0.95,
                    seed: int = 0) -> Interval:
    """A metric's mean with its 95% interval: Wilson where the items take only the metric's
    bounds or all agree (see the module), else the bootstrap over items."""
    x = np.asarray(values, dtype=float)
    w = np.asarray(weights, dtype=float)
    keep = ~np.isnan(x) & (w > 0)
    bounded = math.isfinite(metric.low) and math.isfinite(metric.high) and metric.high > metric.low
    binary = bounded and keep.any() and bool(np.isin(x[keep], (metric.low, metric.high)).all())
    if not binary:
        boot = bootstrap_ci(values, weights=weights, resamples=resamples, confidence=confidence, seed=seed)
        if not bounded or boot.n == 0 or boot.ci_low < boot.ci_high:
            return boot
    x, w = x[keep], w[keep]
    span = metric.high - metric.low
    p = float(np.clip(((w * x).sum() / w.sum() - metric.low) / span, 0.0, 1.0))
    n_eff = float(w.sum() ** 2 / (w * w).sum())
    low, high = wilson_interval(p, n_eff, confidence)
    return Interval(metric.low + p * span, metric.low + low * span, metric.low + high * span,
                    int(keep.sum()), int(np.isnan(np.asarray(values, dtype=float)).sum()))


def sign_test_p(successes: int, failures: int) -> float:
    """Exact two-sided binomial test of ``successes`` vs ``failures`` under p = 1/2."""
    n = successes + failures
    if n == 0:
        return 1.0
    k = min(successes, failures)
    # P(X <= k) for X ~ Binomial(n, 1/2), doubled, summed exactly with integers.
    tail = sum(math.comb(n, i) for i in range(k + 1))
    return min(1.0, 2 * tail / 2**n)


def paired_comparison(a: Mapping[str, float], b: Mapping[str, float], *,
                      resamples: int = DEFAULT_RESAMPLES, confidence: float = 0.95,
                      seed: int = 0) -> PairedComparison:
    """Compare two models by per-item values keyed by item id (``b - a``).

    Only items that both models have a (non-NaN) value for are compared; the
    others are counted in ``n_missing``. When every value is 0 or 1 the
    discordant counts and the exact sign-test p-value are filled in.
    """
    ids = sorted(set(a) | set(b))
    both = [i for i in ids if i in a and i in b
            and not math.isnan(a[i]) and not math.isnan(b[i])]
    n_missing = len(ids) - len(both)
    xa = np.array([a[i] for i in both], dtype=float)
    xb = np.array([b[i] for i in both], dtype=float)
    if len(both) == 0:
        nan = math.nan
        return PairedComparison(nan, nan, nan, 0, n_missing, nan, nan)
    diff = bootstrap_ci(xb - xa, resamples=resamples, confidence=confidence, seed=seed)
    result = PairedComparison(diff.mean, diff.ci_low, diff.ci_high, len(both), n_missing,
                              float(xa.mean()), float(xb.mean()))
    if np.isin(xa, (0.0, 1.0)).all() and np.isin(xb, (0.0, 1.0)).all():
        b_better = int(((xb == 1) & (xa == 0)).sum())
        a_better = int(((xa == 1) & (xb == 0)).sum())
        result = PairedComparison(**{**result.to_dict(), "b_better": b_better,
                                     "a_better": a_better,
                                     "p_value": sign_test_p(b_better, a_better)})
    return result


def metric_values(results: Sequence[ItemResult], metric: str) -> tuple[list[float], list[float]]:
    """Per-item values of ``metric`` (NaN where absent) and their weights."""
    values, weights = [], []
    for r in results:
        v = r.metrics.get(metric)
        values.append(math.nan if v is None else float(v))
        weights.append(float((r.metadata.get("weights") or {}).get(metric, 1.0)))
    return values, weights


def summarise(results: Sequence[ItemResult], metrics: Sequence[Metric], *,
              resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Per metric: mean, ci_low, ci_high, n, n_missing and higher_is_better."""
    summary: dict[str, dict[str, Any]] = {}
    for k, metric in enumerate(metrics):
        values, weights = metric_values(results, metric.name)
        # A distinct stream per metric, so intervals of different metrics are not coupled.
        interval = metric_interval(values, weights, metric, resamples=resamples, seed=seed + k)
        summary[metric.name] = {**interval.to_dict(), "higher_is_better": metric.higher_is_better}
    return summary


def compare_results(a: Sequence[ItemResult], b: Sequence[ItemResult], metric: str, *,
                    resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> PairedComparison:
    """:func:`paired_comparison` of two evaluations' item results on one metric."""
    def by_id(results: Sequence[ItemResult]) -> dict[str, float]:
        out = {}
        for r in results:
            v = r.metrics.get(metric)
            out[r.id] = math.nan if v is None else float(v)
        return out

    return paired_comparison(by_id(a), by_id(b), resamples=resamples, seed=seed)
