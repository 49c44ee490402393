"""Every number of the report's tables is the number recorded in the results store."""

from __future__ import annotations

from pathlib import Path

from sftmix.report.build import Report
from sftmix.report.tables import Estimate, cell_text
from tests.report.conftest import KnownStudy

SUITES = {"maths: gsm8k accuracy": "gsm8k", "code: humaneval pass@1": "humaneval",
          "general: mtbench score": "mtbench"}


def _estimate(study: KnownStudy, run: str, suite: str) -> Estimate:
    return Estimate(*study.value(run, suite))


def test_strategy_table_numbers(full_study: KnownStudy, full_report: tuple[Report, Path, Path]) -> None:
    table = full_report[0].table("rq4_strategies")
    assert table.columns == ["strategy", *SUITES]
    expected_runs = {
        "maths-only": "strategies/maths-only/m/s0", "code-only": "strategies/code-only/m/s0",
        "general-only": "strategies/general-only/m/s0", "multi-task": "strategies/multi-task/m/s0",
        "sequential": "strategies/sequential/m/s0", "mixed-sequential": "strategies/mixed-sequential/m/s0",
        "dmt k=0": "strategies/dmt/0/m/s0", "dmt k=1/256": "strategies/dmt/1/256/m/s0",
        "dmt k=1/16": "strategies/dmt/1/16/m/s0",
    }
    assert [r[0] for r in table.rows] == list(expected_runs)
    for label, run in expected_runs.items():
        row = table.row(label)
        for col, suite in SUITES.items():
            assert row[table.columns.index(col)] == _estimate(full_study, run, suite), (label, col)
    # Merged work carries one result: DMT(0) is mixed sequential.
    assert table.row("dmt k=0")[1:] == table.row("mixed-sequential")[1:]


def test_runs_table_numbers(full_study: KnownStudy, full_report: tuple[Report, Path, Path]) -> None:
    table = full_report[0].table("runs")
    assert len(table.rows) == len(full_study.plan.runs) == 30
    for run in full_study.plan.runs:
        row = table.row(run.name.removesuffix("/s0"))
        assert row[1] == run.design and row[2] == 1
        for col, suite in SUITES.items():
            assert row[table.columns.index(col)] == _estimate(full_study, run.name, suite)


def test_cells_render_with_intervals() -> None:
    assert cell_text(Estimate(0.5, 0.4, 0.6)) == "0.500 [0.400, 0.600]"
    assert cell_text(Estimate(0.5)) == "0.500"
    assert cell_text(None) == "–"
    assert cell_text(True) == "yes"


def test_markdown_and_html_carry_the_table_numbers(full_study: KnownStudy,
                                                   full_report: tuple[Report, Path, Path]) -> None:
    _, html, md = full_report
    text, page = md.read_text(), html.read_text()
    value = _estimate(full_study, "strategies/multi-task/m/s0", "gsm8k").text()
    assert f"| multi-task | {value} |" in text
    assert f"<td>multi-task</td><td class=\"num\">{value}</td>" in page
