"""The report as Markdown, with its figures as PNG files in a folder beside it."""

from __future__ import annotations

from sftmix.report.document import FINDINGS_TITLE, Report, Section
from sftmix.report.tables import Table, cell_text


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(t: Table) -> list[str]:
    lines = [f"**{t.title}**", ""]
    if t.caption:
        lines += [f"_{t.caption}_", ""]
    lines.append("| " + " | ".join(_escape(c) for c in t.columns) + " |")
    lines.append("|" + "|".join("---" for _ in t.columns) + "|")
    for row in t.rows:
        lines.append("| " + " | ".join(_escape(cell_text(c)) for c in row) + " |")
    return [*lines, ""]


def _section(s: Section, figure_dir: str) -> list[str]:
    lines = [f"## {s.title}", ""]
    if s.text:
        lines += [s.text, ""]
    if s.findings:
        lines += [f"**{FINDINGS_TITLE}**", "", *(f"- {x}" for x in s.findings), ""]
    for t in s.tables:
        lines += _table(t)
    for f in s.figures:
        if f.png is None:
            lines += [f"> **{f.title}**: {f.note}", ""]
        else:
            lines += [f"![{f.title}]({figure_dir}/{f.key}.png)", "", f"_{f.title}._ {f.caption}", ""]
    if s.code:
        lines += ["Study configuration:", "", "```yaml", s.code.rstrip("\n"), "```", ""]
    return lines


def render_markdown(report: Report, figure_dir: str = "figures") -> str:
    lines = [f"# {report.title}", "", f"Generated {report.generated}.", ""]
    lines += [f"- {line}" for line in report.summary]
    lines.append("")
    for s in report.sections:
        lines += _section(s, figure_dir)
    return "\n".join(lines).rstrip("\n") + "\n"
