"""Every figure is drawn for the designs a study has, and skipped with a note for the others."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from sftmix.report import figures, strategy_figures
from sftmix.report.build import Report, build_report, write_report
from sftmix.report.plotting import fmt_amount
from sftmix.results.data import load_results
from tests.report.conftest import MT_CATEGORIES, make_study, study_dict

DRAWN = ("rq1_scaling", "rq2_mixed", "rq3_ratio", "rq4_strategies", "radar", "dmt_k", "tradeoff")


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])


def test_full_study_draws_every_figure(full_report: tuple[Report, Path, Path]) -> None:
    report, _, md = full_report
    for key in DRAWN:
        fig = report.figure(key)
        assert fig.produced, (key, fig.note)
        width, height = _png_size(fig.png or b"")
        assert width > 300 and height > 200
        assert (md.parent / "figures" / f"{key}.png").read_bytes() == fig.png
    assert not report.figure("tsne").produced
    assert "--tsne-queries 0" in (report.figure("tsne").note or "")


def test_figures_are_deterministic(full_study) -> None:
    res = load_results(full_study.dir)
    assert figures.ratio_figure(res).png == figures.ratio_figure(res).png


def test_partial_study_skips_absent_designs_with_a_note(tmp_path: Path, shared_data: Path) -> None:
    config = study_dict(shared_data, {"mixed": {"fractions": [1, "1/4"]}},
                        runs=[{"name": "curriculum", "stages": [
                            {"name": "warm", "data": [{"ability": "maths", "count": 100}]},
                            {"name": "main", "data": [{"ability": "general"}, {"ability": "code"}]}]}])
    study = make_study(tmp_path, config)
    report = build_report(load_results(study.dir), tsne_queries=0)
    produced = {f.key for f in report.figures if f.produced}
    assert produced == {"rq2_mixed", "tradeoff"}
    for key, design in (("rq1_scaling", "'scaling'"), ("rq3_ratio", "'ratio'"),
                        ("rq4_strategies", "'strategies'"), ("dmt_k", "DMT"), ("radar", "'strategies'")):
        assert design in (report.figure(key).note or ""), key
    assert "no 'scaling' design" in report.figure("rq2_mixed").caption
    html, md = write_report(report, tmp_path / "out")
    for key in ("rq1_scaling", "rq3_ratio", "dmt_k"):
        fig = report.figure(key)
        assert f"id=\"note-{key}\"" in html.read_text()
        assert f"> **{fig.title}**: {fig.note}" in md.read_text()
        assert not (tmp_path / "out" / "figures" / f"{key}.png").exists()
    assert [r[1] for r in report.table("runs").rows] == ["mixed", "mixed", "runs"]


def test_radar_reads_mtbench_categories(full_study) -> None:
    (frame,) = strategy_figures.category_metrics(load_results(full_study.dir)).values()
    assert sorted(set(frame["category"])) == sorted(MT_CATEGORIES)  # score_turn1/2 are not categories


def test_radar_needs_per_category_metrics(tmp_path: Path, shared_data: Path) -> None:
    study = make_study(tmp_path, study_dict(shared_data, {"strategies": {"sequential": None}}),
                       categories=False)
    res = load_results(study.dir)
    fig = strategy_figures.radar_figure(res)
    assert not fig.produced and "score_writing" in (fig.note or "")
    assert strategy_figures.strategy_bars(res).produced
    assert not figures.dmt_figure(res).produced


def test_user_named_abilities_get_their_panels(tmp_path: Path, shared_data: Path) -> None:
    abilities = {
        "arithmetic": {"data": {"path": str(shared_data / "gsm8k/train.jsonl"), "format": "gsm8k"},
                       "evals": ["gsm8k"]},
        "chat": {"data": {"path": str(shared_data / "general/alpaca_en_demo.json"), "format": "alpaca"},
                 "evals": ["ifeval"]},
    }
    study = make_study(tmp_path, study_dict(shared_data, {"scaling": {"fractions": [1, "1/2"]},
                                                          "mixed": {"fractions": [1, "1/2"]}},
                                            abilities=abilities))
    res = load_results(study.dir)
    rq1 = figures.scaling_figure(res)
    # Abilities are matched to the paper's by their benchmark, not their name: arithmetic,
    # measured by GSM8K, gets the paper's GSM8K curves; chat (IFEval) none.
    assert rq1.produced and {o.column for o in rq1.overlays} == {"gsm8k"}
    assert figures.mixed_figure(res).produced
    report = build_report(res, tsne_queries=0)
    assert report.table("recommendation").columns[4:6] == ["arithmetic (scaled)", "chat (scaled)"]
    assert report.figure("tradeoff").produced


def test_dmt_uses_mixed_sequential_for_k_zero(tmp_path: Path, shared_data: Path) -> None:
    study = make_study(tmp_path, study_dict(shared_data, {"strategies": {"dmt": {"ks": ["1/256", "1/4"]}}}))
    res = load_results(study.dir)
    rows = figures.dmt_rows(res)
    zero = rows[(rows["c_k"] == 0) & (rows["ability"] == "maths")]
    assert list(zero["c_strategy"]) == ["mixed-sequential"]
    assert zero["value"].iloc[0] == study.value("strategies/mixed-sequential/m/s0", "gsm8k")[0]


@pytest.mark.parametrize(("x", "text"), [(1.0, "1"), (0.25, "1/4"), (1 / 256, "1/256"), (0.0, "0"), (0.3, "3/10")])
def test_amount_labels(x: float, text: str) -> None:
    assert fmt_amount(x) == text


def test_study_without_results_still_reports(tmp_path: Path, shared_data: Path) -> None:
    from tests.report.conftest import ALL_DESIGNS

    study = make_study(tmp_path, study_dict(shared_data, ALL_DESIGNS), skip={"gsm8k", "humaneval", "mtbench"})
    report = build_report(load_results(study.dir), tsne_queries=0)
    assert not any(f.produced for f in report.figures)
    assert all(f.note for f in report.figures)
    assert report.summary[0].startswith("Study known: 0 runs with results")
    html, _ = write_report(report, tmp_path / "out")
    assert html.read_text().count('class="note"') == len(report.figures)
