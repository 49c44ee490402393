"""A report as data: sections of figures, tables, text and code, rendered by ``html`` and ``markdown``."""

from __future__ import annotations

from dataclasses import dataclass, field

from sftmix.report.plotting import FigureOut
from sftmix.report.tables import Table

FINDINGS_TITLE = "Findings, seed by seed"


@dataclass
class Section:
    key: str
    title: str
    text: str = ""
    figures: list[FigureOut] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    # The comparisons the section's figures show, one sentence each with every seed's evidence
    # (sftmix.report.findings).
    findings: list[str] = field(default_factory=list)
    code: str | None = None  # preformatted text (the study config)


@dataclass
class Report:
    title: str
    generated: str
    summary: list[str]
    sections: list[Section]

    @property
    def figures(self) -> list[FigureOut]:
        return [f for s in self.sections for f in s.figures]

    @property
    def tables(self) -> list[Table]:
        return [t for s in self.sections for t in s.tables]

    def figure(self, key: str) -> FigureOut:
        return next(f for f in self.figures if f.key == key)

    def table(self, key: str) -> Table:
        return next(t for t in self.tables if t.key == key)
