"""The trade-off on a study with hand-set results: scaled scores, Pareto front, recommendation."""

from __future__ import annotations

from pathlib import Path

import pytest

from sftmix.errors import SftmixError
from sftmix.report.build import build_report
from sftmix.report.tradeoff import dominates, points, recommend, recommendation_table
from sftmix.results.data import StudyResults, load_results
from sftmix.results.weights import parse_weights
from tests.report.conftest import make_study, study_dict

# Four free-form runs; maths on GSM8K (0-1) and general on MT-Bench (1-10).
VALUES = {
    "r1": ((0.60, 0.55, 0.65), (2.0, 1.5, 2.5)),  # maths specialist
    "r2": ((0.10, 0.05, 0.15), (7.0, 6.5, 7.5)),  # general specialist
    "r3": ((0.55, 0.50, 0.60), (6.5, 6.0, 7.0)),  # both
    "r4": ((0.30, 0.25, 0.35), (3.0, 2.5, 3.5)),  # dominated by r3
}


@pytest.fixture(scope="module")
def hand(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> StudyResults:
    full = study_dict(shared_data, {})
    abilities = {a: full["abilities"][a] for a in ("maths", "general")}
    data = {"r1": [{"ability": "maths"}], "r2": [{"ability": "general"}],
            "r3": [{"ability": "maths"}, {"ability": "general"}], "r4": [{"ability": "maths", "fraction": "1/4"}]}
    runs = [{"name": n, "stages": [{"name": "s", "data": d}]} for n, d in data.items()]
    values = {}
    for name, (maths, general) in VALUES.items():
        values[(f"runs/{name}/m/s0", "gsm8k")] = maths
        values[(f"runs/{name}/m/s0", "mtbench")] = general
    study = make_study(tmp_path_factory.mktemp("hand"), study_dict(shared_data, {}, abilities=abilities, runs=runs),
                       values=values)
    return load_results(study.dir)


def test_scaled_points_and_front(hand: StudyResults) -> None:
    """GSM8K's accuracy is its own scaled score; MT-Bench's s is (s - 1) / 9, whatever the other runs scored."""
    pts, excluded = points(hand)
    assert excluded == []
    by = {p.run: p for p in pts}
    assert by["runs/r1/m"].score == pytest.approx({"maths": 0.6, "general": 1 / 9})
    assert by["runs/r3/m"].score == pytest.approx({"maths": 0.55, "general": 5.5 / 9})
    assert by["runs/r4/m"].score == pytest.approx({"maths": 0.3, "general": 2 / 9})
    assert by["runs/r3/m"].low == pytest.approx({"maths": 0.05, "general": 0.5 / 9})
    assert {p.run for p in pts if p.pareto} == {"runs/r1/m", "runs/r2/m", "runs/r3/m"}


def test_equal_weights_pick_the_balanced_run(hand: StudyResults) -> None:
    t = recommend(hand, {"maths": 1, "general": 1})
    assert t.best == "runs/r3/m"
    best = t.weighted["runs/r3/m"]
    value = (0.55 + 5.5 / 9) / 2
    half = ((0.5 * 0.05) ** 2 + (0.5 * 0.5 / 9) ** 2) ** 0.5
    assert (best.value, best.low, best.high) == pytest.approx((value, value - half, value + half))
    assert t.weighted["runs/r1/m"].value == pytest.approx((0.6 + 1 / 9) / 2)
    assert t.indistinguishable == []
    table = recommendation_table(t)
    assert [r[1] for r in table.rows] == ["runs/r3/m", "runs/r2/m", "runs/r1/m", "runs/r4/m"]
    assert table.column("verdict") == ["best", "below the best", "below the best", "below the best"]
    assert table.column("Pareto front") == [True, True, True, False]


def test_maths_priority_keeps_close_runs_together(hand: StudyResults) -> None:
    t = recommend(hand, parse_weights("maths=1,general=0", hand.abilities))
    assert t.best == "runs/r1/m"
    # r3 is 0.9 +- 0.1 against r1's 1.0 +- 0.1: the intervals overlap.
    assert t.indistinguishable == ["runs/r3/m"]
    table = recommendation_table(t)
    assert table.row(2)[1] == "runs/r3/m"
    # r1 trains on maths alone, r3 on maths and general: the best is also the cheaper.
    assert t.tokens["runs/r1/m"] < t.tokens["runs/r3/m"]
    assert table.column("verdict")[:2] == ["best and the cheapest of those not distinguishable from it",
                                           "not distinguishable from the best"]
    report = build_report(hand, parse_weights("maths=1,general=0", hand.abilities), tsne_queries=0)
    assert "runs/r1/m" in report.summary[1] and "runs/r3/m" in report.summary[1]


def test_dominance_needs_a_strict_gain() -> None:
    assert dominates({"a": 1, "b": 1}, {"a": 1, "b": 0.5})
    assert not dominates({"a": 1, "b": 1}, {"a": 1, "b": 1})


@pytest.mark.parametrize(("text", "message"), [
    ("maths=1,law=2", "one of the study's abilities"),
    ("maths", "'<ability>=<weight>'"),
    ("maths=-1", "must be a number >= 0"),
    ("maths=x", "must be a number >= 0"),
    ("maths=0,general=0", "at least one weight"),
])
def test_bad_weights_are_explained(text: str, message: str) -> None:
    with pytest.raises(SftmixError, match=message):
        parse_weights(text, ["maths", "general"])


def test_default_weights_are_equal() -> None:
    assert parse_weights(None, ["maths", "code"]) == {"maths": 1.0, "code": 1.0}
    assert parse_weights("code=2", ["maths", "code"]) == {"maths": 0.0, "code": 2.0}


def test_no_best_run_when_every_run_scores_the_floor(tmp_path: Path, shared_data: Path) -> None:
    full = study_dict(shared_data, {})
    abilities = {a: full["abilities"][a] for a in ("maths", "general")}
    runs = [{"name": n, "stages": [{"name": "s", "data": [{"ability": "maths", "fraction": f}]}]}
            for n, f in (("a", 1), ("b", "1/4"), ("c", "1/16"))]
    values = {}
    for name in "abc":
        values[(f"runs/{name}/m/s0", "gsm8k")] = (0.0, 0.0, 0.333)
        values[(f"runs/{name}/m/s0", "mtbench")] = (1.0, 1.0, 1.5)
    study = make_study(tmp_path, study_dict(shared_data, {}, abilities=abilities, runs=runs),
                       values=values)
    res = load_results(study.dir)
    t = recommend(res, {"maths": 1, "general": 1})
    assert t.best is None and len(t.indistinguishable) == 3
    for estimate in t.weighted.values():
        assert 0.0 <= estimate.low <= estimate.value <= estimate.high <= 1.0
    summary = " ".join(build_report(res, tsne_queries=0).summary)
    assert "No best run" in summary and "Best run" not in summary
