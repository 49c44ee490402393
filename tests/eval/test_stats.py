"""Bootstrap intervals, paired comparisons and the per-metric summary."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from sftmix.eval.base import ItemResult, Metric
from sftmix.eval.stats import (
    bootstrap_ci,
    compare_results,
    paired_comparison,
    sign_test_p,
    summarise,
)


def _binary(n: int, p: float, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random(n) < p).astype(float)


def test_interval_matches_the_normal_approximation_for_a_proportion() -> None:
    values = np.array([1.0] * 200 + [0.0] * 200)
    ci = bootstrap_ci(values, resamples=4000, seed=1)
    half = 1.96 * math.sqrt(0.25 / 400)
    assert ci.mean == 0.5 and ci.n == 400 and ci.n_missing == 0
    assert ci.ci_low == pytest.approx(0.5 - half, abs=0.01)
    assert ci.ci_high == pytest.approx(0.5 + half, abs=0.01)


def test_seeded_and_narrower_with_more_items() -> None:
    small, large = _binary(50, 0.3, 0), _binary(2000, 0.3, 0)
    scores = np.random.default_rng(0).normal(6.0, 2.0, 80)  # judge-like scores
    assert bootstrap_ci(scores, seed=3) == bootstrap_ci(scores, seed=3)
    assert bootstrap_ci(scores, seed=3) != bootstrap_ci(scores, seed=4)
    w_small = bootstrap_ci(small).ci_high - bootstrap_ci(small).ci_low
    w_large = bootstrap_ci(large).ci_high - bootstrap_ci(large).ci_low
    assert w_large < w_small / 3


def test_missing_values_are_excluded_and_counted() -> None:
    ci = bootstrap_ci([7.0, math.nan, 9.0, 8.0, math.nan])
    assert (ci.mean, ci.n, ci.n_missing) == (8.0, 3, 2)
    assert 7.0 <= ci.ci_low <= ci.ci_high <= 9.0
    empty = bootstrap_ci([math.nan])
    assert empty.n == 0 and empty.n_missing == 1 and math.isnan(empty.mean)
    constant = bootstrap_ci([1.0, 1.0, 1.0])
    assert (constant.ci_low, constant.ci_high) == (1.0, 1.0)


def test_weighted_mean_is_the_micro_average() -> None:
    # Two prompts: 1 of 1 instruction followed, 0 of 3 followed -> micro 1/4, macro 1/2.
    ci = bootstrap_ci([1.0, 0.0], weights=[1, 3])
    assert ci.mean == 0.25
    assert 0.0 <= ci.ci_low <= ci.ci_high <= 1.0


def test_sign_test_matches_scipy() -> None:
    for wins, losses in [(0, 10), (3, 9), (5, 5), (12, 4), (0, 0), (30, 17)]:
        expected = 1.0 if wins + losses == 0 else scipy_stats.binomtest(
            wins, wins + losses, 0.5).pvalue
        assert sign_test_p(wins, losses) == pytest.approx(expected, rel=1e-9)


def test_paired_comparison_of_binary_scores() -> None:
    ids = [f"q{i}" for i in range(164)]
    a = dict(zip(ids, _binary(164, 0.4, 1), strict=True))
    b = dict(a)
    flipped = [i for i in ids if a[i] == 0][:15]
    for i in flipped:
        b[i] = 1.0
    cmp = paired_comparison(a, b, seed=0)
    assert cmp.diff == pytest.approx(15 / 164)
    assert (cmp.b_better, cmp.a_better) == (15, 0)
    assert cmp.p_value == pytest.approx(2 / 2**15)
    assert 0 < cmp.ci_low < cmp.diff < cmp.ci_high
    # Paired is tighter than even one model's own interval (an unpaired difference is ~1.4x wider).
    width_a = bootstrap_ci(list(a.values())).ci_high - bootstrap_ci(list(a.values())).ci_low
    assert cmp.ci_high - cmp.ci_low < width_a
    same = paired_comparison(a, a)
    assert (same.diff, same.ci_low, same.ci_high, same.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_paired_comparison_uses_common_items_only() -> None:
    a = {"x": 1.0, "y": 0.0, "z": 0.5}
    b = {"x": 1.0, "y": math.nan, "w": 1.0, "z": 0.75}
    cmp = paired_comparison(a, b)
    assert cmp.n == 2 and cmp.n_missing == 2
    assert cmp.diff == pytest.approx(0.125)
    assert cmp.p_value is None  # 0.5 and 0.75 are not binary


def _result(i: int, metrics: dict[str, float], weights: dict[str, float] | None = None) -> ItemResult:
    return ItemResult(id=f"i{i}", prompt="p", completions=["c"], extracted=[None], verdicts=[None],
                      metrics=metrics, metadata={"weights": weights} if weights else {})


def test_summarise_gives_every_field_per_metric() -> None:
    results = [_result(0, {"accuracy": 1.0, "score": 8.0}), _result(1, {"accuracy": 0.0}),
               _result(2, {"accuracy": 1.0, "score": math.nan}), _result(3, {"accuracy": 1.0,
                                                                             "score": 6.0})]
    summary = summarise(results, [Metric("accuracy"),
                                  Metric("score", higher_is_better=True, low=1, high=10),
                                  Metric("errors", higher_is_better=False)])
    assert summary["accuracy"]["mean"] == 0.75 and summary["accuracy"]["n"] == 4
    assert summary["score"] | {"ci_low": 0, "ci_high": 0} == {
        "mean": 7.0, "ci_low": 0, "ci_high": 0, "n": 2, "n_missing": 2, "higher_is_better": True}
    assert summary["errors"]["n_missing"] == 4 and summary["errors"]["higher_is_better"] is False
    assert summarise(results, [Metric("accuracy")]) == summarise(results, [Metric("accuracy")])


def test_summarise_honours_item_weights_and_compare_results() -> None:
    results = [_result(0, {"inst": 1.0}, {"inst": 1}), _result(1, {"inst": 0.0}, {"inst": 3})]
    assert summarise(results, [Metric("inst")])["inst"]["mean"] == 0.25
    better = [_result(0, {"inst": 1.0}), _result(1, {"inst": 1.0})]
    cmp = compare_results(results, better, "inst")
    assert cmp.diff == 0.5 and cmp.b_better == 1 and cmp.a_better == 0


def test_a_proportion_at_its_bound_gets_an_interval_that_is_not_a_point() -> None:
    from scipy.stats import binomtest

    from sftmix.eval.base import Metric
    from sftmix.eval.stats import metric_interval

    accuracy = Metric("accuracy")
    none = metric_interval([0.0] * 100, [1.0] * 100, accuracy)
    assert (none.mean, none.ci_low) == (0.0, 0.0) and 0.03 < none.ci_high < 0.04
    every = metric_interval([1.0] * 100, [1.0] * 100, accuracy)
    assert every.ci_high == 1.0 and 0.96 < every.ci_low < 0.97
    # Binary items get the Wilson interval, close to the exact one for a middling proportion.
    half = metric_interval([1.0] * 30 + [0.0] * 70, [1.0] * 100, accuracy)
    exact = binomtest(30, 100).proportion_ci(method="wilson")
    assert (half.ci_low, half.ci_high) == pytest.approx((exact.low, exact.high), abs=1e-9)
    # Items that all agree on a value inside the range: Wilson over the range, not a point.
    same = metric_interval([0.5] * 10, [1.0] * 10, accuracy)
    assert same.ci_low < 0.5 < same.ci_high
    # A 1-10 score whose items agree is scaled to its range.
    score = metric_interval([10.0] * 20, [1.0] * 20, Metric("score", low=1, high=10))
    assert score.ci_high == 10.0 and 1 < score.ci_low < 10
