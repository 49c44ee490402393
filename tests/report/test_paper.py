"""The reference study's numbers: shipped unchanged, loaded exactly, drawn as published."""

from __future__ import annotations

import csv
from fractions import Fraction
from importlib import resources
from pathlib import Path

import pytest

from sftmix.errors import SftmixError
from sftmix.report.build import Report
from sftmix.report.paper import TABLES, model_label, paper_strategy, paper_table, series_label


def _csv(shared_data: Path, name: str) -> list[dict[str, str]]:
    with open(shared_data.parent / "paper" / f"{name}.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("name", TABLES)
def test_shipped_tables_are_the_published_files(shared_data: Path, name: str) -> None:
    shipped = resources.files("sftmix").joinpath(f"resources/paper/{name}.csv").read_bytes()
    assert shipped == (shared_data.parent / "paper" / f"{name}.csv").read_bytes()


@pytest.mark.parametrize("name", TABLES)
def test_loaded_values_match_the_csv(shared_data: Path, name: str) -> None:
    rows = _csv(shared_data, name)
    frame = paper_table(name)
    assert len(frame) == len(rows)
    for got, want in zip(frame.to_dict("records"), rows, strict=True):
        for col, text in want.items():
            if col in ("fraction", "k"):
                assert got[col] == float(Fraction(text))
            elif col in ("gsm8k", "humaneval", "mtbench"):
                assert got[col] == pytest.approx(float(text))
            else:
                assert got[col] == text


def test_unknown_table_lists_the_available_ones() -> None:
    with pytest.raises(SftmixError, match="available: rq1_single_source"):
        paper_table("rq9")


def test_labels_and_strategy_names() -> None:
    assert model_label("llama-13b") == "LLaMA-13B"
    assert series_label("llama-7b", "gsm8k") == "Dong et al. 2023 (LLaMA-7B), GSM8K acc. (%)"
    assert paper_strategy("mixed-sequential") == "mixed sequential"
    assert paper_strategy("dmt", 1 / 256) == "dmt k=1/256"
    assert paper_strategy("dmt", 1 / 16) is None


def _points(report: Report, key: str, label: str, column: str) -> dict[float, float]:
    (overlay,) = [o for o in report.figure(key).overlays if o.label == label and o.column == column]
    return dict(zip(overlay.x, overlay.y, strict=True))


def test_rq1_overlay_is_the_published_scaling(full_report: tuple[Report, Path, Path], shared_data: Path) -> None:
    report = full_report[0]
    for model in ("llama-7b", "llama-13b", "llama-33b"):
        for column in ("gsm8k", "humaneval", "mtbench"):
            want = {float(Fraction(r["fraction"])): float(r[column])
                    for r in _csv(shared_data, "rq1_single_source") if r["model"] == model}
            assert _points(report, "rq1_scaling", series_label(model), column) == want


def test_rq2_rq3_dmt_overlays_match_the_csv(full_report: tuple[Report, Path, Path], shared_data: Path) -> None:
    report = full_report[0]
    mixed = {float(Fraction(r["fraction"])): float(r["gsm8k"])
             for r in _csv(shared_data, "rq2_mixed_sources") if r["model"] == "llama-7b"}
    assert _points(report, "rq2_mixed", "Dong et al. 2023 (LLaMA-7B) mixed", "gsm8k") == mixed
    for setup in "abc":
        want = {float(Fraction(r["k"])): float(r["mtbench"])
                for r in _csv(shared_data, "rq3_ratio") if r["setup"] == setup}
        assert _points(report, "rq3_ratio", f"Dong et al. 2023 (LLaMA-7B) setup {setup}", "mtbench") == want
    # DMT: the study's k are 0, 1/256, 1/16, drawn at positions 0, 1, 2.
    rows = {Fraction(r["k"]): float(r["humaneval"]) for r in _csv(shared_data, "dmt_k_sweep")
            if r["model"] == "llama-13b"}
    want = {0.0: rows[Fraction(0)], 1.0: rows[Fraction(1, 256)], 2.0: rows[Fraction(1, 16)]}
    assert _points(report, "dmt_k", series_label("llama-13b"), "humaneval") == want


def test_strategy_bars_overlay_table_1(full_report: tuple[Report, Path, Path], shared_data: Path) -> None:
    report = full_report[0]
    published = {r["method"]: float(r["gsm8k"]) for r in _csv(shared_data, "rq4_strategies")
                 if r["model"] == "llama-7b"}
    (overlay,) = [o for o in report.figure("rq4_strategies").overlays if o.column == "gsm8k"]
    strategies = [r[0] for r in report.table("rq4_strategies").rows]
    drawn = dict(zip(strategies, overlay.y, strict=True))
    assert drawn["maths-only"] == published["math only"]
    assert drawn["multi-task"] == published["multi-task"]
    assert drawn["mixed-sequential"] == published["mixed sequential"]
    assert drawn["dmt k=1/256"] == published["dmt k=1/256"]
    assert drawn["dmt k=1/16"] != drawn["dmt k=1/16"]  # NaN: the paper has no such row


def test_paper_table_1_in_the_report(full_report: tuple[Report, Path, Path], shared_data: Path) -> None:
    table = full_report[0].table("paper_rq4")
    rows = _csv(shared_data, "rq4_strategies")
    assert len(table.rows) == len(rows)
    for got, want in zip(table.rows, rows, strict=True):
        assert got == [model_label(want["model"]), want["method"], float(want["gsm8k"]),
                       float(want["humaneval"]), float(want["mtbench"])]


def test_a_published_curve_is_drawn_only_on_the_metric_the_paper_measured(
        tmp_path: Path, shared_data: Path) -> None:
    from sftmix.report.figures import scaling_figure
    from sftmix.results.data import load_results
    from tests.report.conftest import make_study, study_dict

    config = study_dict(shared_data, {"scaling": {"fractions": [1, "1/4"]}})
    config["abilities"]["general"]["evals"] = ["ifeval"]
    fig = scaling_figure(load_results(make_study(tmp_path, config).dir))
    assert {o.column for o in fig.overlays} == {"gsm8k", "humaneval"}
    assert ("general is measured here with ifeval, in the reference study with MT-Bench (1-10)"
            in fig.caption)
