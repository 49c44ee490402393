"""Findings stated seed by seed: paired differences, their agreement, and the seeds' spread in tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from sftmix.report.build import build_report, write_report
from sftmix.report.findings import scaling_findings, strategy_findings
from sftmix.report.tables import Estimate, strategy_table
from sftmix.results.data import load_results
from tests.report.conftest import make_study, study_dict

DESIGNS = {"scaling": {"fractions": [1, "1/8"], "abilities": ["maths", "general"]},
           "strategies": {"sequential": {"order": ["maths", "general"]}}}


def _study(tmp_path: Path, shared_data: Path):
    def v(x: float) -> tuple[float, float, float]:
        return x, max(x - 0.05, 0.0), min(x + 0.05, 1.0)

    values = {}
    # maths alone on all its data: two seeds learn it, one stays at the floor.
    for seed, (full, eighth) in enumerate(((0.70, 0.05), (0.60, 0.05), (0.05, 0.05))):
        values[(f"scaling/maths/1/m/s{seed}", "gsm8k")] = v(full)
        values[(f"scaling/maths/1/8/m/s{seed}", "gsm8k")] = v(eighth)
        values[(f"strategies/sequential/m/s{seed}", "gsm8k")] = v(0.01 * seed)
    for seed in range(3):
        values[(f"scaling/general/1/m/s{seed}", "mtbench")] = (6.0 + seed, 5.6 + seed, 6.4 + seed)
        values[(f"scaling/general/1/8/m/s{seed}", "mtbench")] = (3.0, 2.6, 3.4)
        values[(f"strategies/sequential/m/s{seed}", "mtbench")] = (6.5, 6.1, 6.9)
    return make_study(tmp_path, study_dict(shared_data, DESIGNS, seeds=[0, 1, 2]), values=values)


def test_findings_pair_runs_seed_by_seed(tmp_path: Path, shared_data: Path) -> None:
    res = load_results(_study(tmp_path, shared_data).dir)
    scaling = {c.subject: c for c in scaling_findings(res)}
    maths = scaling["maths alone, all its data against 1/8 of its data"]
    assert maths.differences == pytest.approx({0: 0.65, 1: 0.55, 2: 0.0})
    # The seed that never learnt is named, not averaged away.
    assert maths.agreement() == "higher at 2 of 3 seeds, equal at 1 of 3 seeds"
    assert "s2 0.05 vs 0.05" in maths.text()
    general = scaling["general alone, all its data against 1/8 of its data"]
    assert general.agreement() == "higher at all 3 seeds"

    strategies = {c.subject: c for c in strategy_findings(res)}
    seq = strategies["sequential, maths, against maths alone"]
    assert seq.agreement() == "lower at all 3 seeds"
    assert seq.difference == pytest.approx(((0.0 - 0.7) + (0.01 - 0.6) + (0.02 - 0.05)) / 3)
    general_seq = strategies["sequential, general, against general alone"]  # 6.5 against 6, 7, 8
    assert general_seq.differences == pytest.approx({0: 0.5, 1: -0.5, 2: -1.5})
    assert general_seq.agreement() == "higher at 1 of 3 seeds, lower at 2 of 3 seeds"


def test_report_states_findings_and_seed_spread(tmp_path: Path, shared_data: Path) -> None:
    res = load_results(_study(tmp_path, shared_data).dir)
    report = build_report(res, tsne_queries=0)
    rq1 = next(s for s in report.sections if s.key == "rq1")
    assert any(f.startswith("maths alone, all its data against 1/8") for f in rq1.findings)
    html, md = write_report(report, tmp_path / "report")
    text = md.read_text()
    assert "**Findings, seed by seed**" in text
    assert "- sequential, maths, against maths alone: 0.010 against 0.450" in text
    assert 'id="findings-rq4"' in html.read_text()

    # Each strategy's cell: the mean, its interval, and the lowest and highest seed.
    table = strategy_table(res)
    cell = table.row("maths-only")[1]
    assert isinstance(cell, Estimate) and cell.seeds == (0.70, 0.60, 0.05)
    assert cell.text().endswith("; 3 seeds 0.05–0.70")


def test_one_seed_says_it_is_one_draw(full_study) -> None:
    res = load_results(full_study.dir)
    found = scaling_findings(res)
    assert found and all("one seed only" in c.text() for c in found)
    assert all(len(c.seeds) == 1 for c in strategy_findings(res))
    assert "seeds" not in Estimate(0.5, 0.4, 0.6, (0.5,)).text()


def test_a_study_without_the_designs_has_no_findings(tmp_path: Path, shared_data: Path) -> None:
    # Mixed runs carry a fraction but no trained-alone ability; no strategy runs at all.
    res = load_results(make_study(tmp_path, study_dict(shared_data, {"mixed": {"fractions": [1, "1/4"]}})).dir)
    assert scaling_findings(res) == [] and strategy_findings(res) == []
    report = build_report(res, tsne_queries=0)
    assert all(not s.findings for s in report.sections)


def test_an_ability_with_two_suites_is_compared_on_its_first(tmp_path: Path, shared_data: Path) -> None:
    config = study_dict(shared_data, {"scaling": {"fractions": [1, "1/8"], "abilities": ["maths"]}},
                        seeds=[0, 1])
    config["abilities"]["maths"]["evals"] = ["gsm8k", "ifeval"]
    values = {(f"scaling/maths/{f}/m/s{seed}", suite): (v, v - 0.05, v + 0.05)
              for seed in (0, 1) for f, suite, v in (("1", "gsm8k", 0.7), ("1/8", "gsm8k", 0.1),
                                                      ("1", "ifeval", 0.2), ("1/8", "ifeval", 0.3))}
    res = load_results(make_study(tmp_path, config, values=values).dir)
    (maths,) = [c for c in scaling_findings(res) if c.subject.startswith("maths")]
    assert maths.differences == pytest.approx({0: 0.6, 1: 0.6})  # gsm8k's, not mixed with ifeval's
