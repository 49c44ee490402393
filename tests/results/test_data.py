"""Reading a study directory: tidy rows, seeds pooled into one interval, clear errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sftmix.errors import SftmixError
from sftmix.results.data import load_results
from sftmix.results.pool import Z95, metric_range, run_group
from tests.report.conftest import make_study, study_dict


def test_run_group_drops_the_seed() -> None:
    assert run_group("mixed/1/16/m/s0") == "mixed/1/16/m"
    assert run_group("runs/r1/m/s12") == "runs/r1/m"


def test_seeds_pool_into_mean_and_interval(tmp_path: Path, shared_data: Path) -> None:
    values = {("mixed/1/m/s0", "gsm8k"): (0.40, 0.35, 0.45), ("mixed/1/m/s1", "gsm8k"): (0.50, 0.45, 0.55),
              ("mixed/1/m/s2", "gsm8k"): (0.60, 0.55, 0.65)}
    study = make_study(tmp_path, study_dict(shared_data, {"mixed": {"fractions": [1]}}, seeds=[0, 1, 2]),
                       values=values)
    res = load_results(study.dir)
    assert len(res.rows[res.rows["suite"] == "gsm8k"]) == 3
    (row,) = res.primary[res.primary["suite"] == "gsm8k"].to_dict("records")
    assert row["run"] == "mixed/1/m" and row["seeds"] == [0, 1, 2] and row["n_seeds"] == 3
    assert row["seed_values"] == pytest.approx([0.40, 0.50, 0.60])  # each seed's value, in seed order
    assert row["value"] == pytest.approx(0.5)
    between = 0.1 / math.sqrt(3)  # sd of (0.4, 0.5, 0.6) over sqrt(3)
    within = math.sqrt(3 * (0.05 / Z95) ** 2) / 3
    assert between > within
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((0.5 - Z95 * between, 0.5 + Z95 * between))
    assert row["c_fraction"] == 1.0


def test_one_seed_keeps_its_own_interval(full_study) -> None:
    res = load_results(full_study.dir)
    row = res.primary[(res.primary["run"] == "mixed/1/4/m") & (res.primary["suite"] == "humaneval")].iloc[0]
    assert (row["value"], row["ci_low"], row["ci_high"]) == full_study.value("mixed/1/4/m/s0", "humaneval")
    assert res.measures() == [("maths", "gsm8k", "accuracy"), ("code", "humaneval", "pass@1"),
                              ("general", "mtbench", "score")]


def test_not_a_study_directory(tmp_path: Path) -> None:
    with pytest.raises(SftmixError, match="not a study directory"):
        load_results(tmp_path)
    (tmp_path / "study.yaml").write_text("name: x\n")
    with pytest.raises(SftmixError, match="no results store"):
        load_results(tmp_path)


def test_pooled_intervals_stay_in_the_metrics_range(tmp_path: Path, shared_data: Path) -> None:
    # Two seeds at the floor and one above: mean +- 1.96 se would reach below the floor.
    values = {}
    for seed, (maths, general) in enumerate((((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
                                             ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
                                             ((0.5, 0.2, 0.8), (4.0, 3.0, 5.0)))):
        values[(f"mixed/1/m/s{seed}", "gsm8k")] = maths
        values[(f"mixed/1/m/s{seed}", "mtbench")] = general
    study = make_study(tmp_path, study_dict(shared_data, {"mixed": {"fractions": [1]}}, seeds=[0, 1, 2]),
                       values=values)
    p = load_results(study.dir).primary.set_index("suite")
    assert p.loc["gsm8k", "value"] == pytest.approx(0.5 / 3) and p.loc["gsm8k", "ci_low"] == 0.0
    assert p.loc["mtbench", "value"] == pytest.approx(2.0) and p.loc["mtbench", "ci_low"] == 1.0
    assert 0.0 < p.loc["gsm8k", "ci_high"] <= 1.0 and 2.0 < p.loc["mtbench", "ci_high"] <= 10.0
    assert metric_range("mtbench", "score") == (1.0, 10.0)
    assert metric_range("gsm8k", "exact_match_flexible") == (0.0, 1.0)


def test_a_study_still_running_loads(tmp_path: Path, shared_data: Path) -> None:
    # A stage not yet trained has no info in the store (NULL): pandas 3 reads such a column as
    # strings with NaN for the missing ones, which must read as "no info", not as JSON.
    import sqlite3

    study = make_study(tmp_path, study_dict(shared_data, {"mixed": {"fractions": [1, 1 / 2]}}))
    with sqlite3.connect(study.dir / "results.sqlite") as conn:
        (key,) = conn.execute("SELECT key FROM stages LIMIT 1").fetchone()
        conn.execute("UPDATE stages SET info = ? WHERE key != ?", ('{"steps": 10}', key))
        conn.execute("UPDATE stages SET status = 'pending', info = NULL WHERE key = ?", (key,))
    res = load_results(study.dir)
    info = dict(zip(res.stages["key"], res.stages["info"], strict=True))
    assert info.pop(key) == {}
    assert info and all(v == {"steps": 10} for v in info.values())  # the trained stages keep theirs
