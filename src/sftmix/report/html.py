"""The report as one self-contained HTML page: inline CSS, figures as base64 PNG, no external resource.

The page opens offline from a file, by mail or from an archive: nothing is
fetched (no fonts, scripts or stylesheets from elsewhere).
"""

from __future__ import annotations

import base64
from html import escape

from sftmix.report.document import FINDINGS_TITLE, Report, Section
from sftmix.report.plotting import FigureOut
from sftmix.report.tables import Table, cell_text

CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .9em; color: #555; }
table { border-collapse: collapse; margin: 1em 0; font-size: .85em; }
th, td { border: 1px solid #ccc; padding: .25em .5em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.note { background: #fff8e1; border-left: 4px solid #f0c040; padding: .5em .8em; }
pre { background: #f7f7f7; padding: .8em; overflow-x: auto; font-size: .85em; }
nav a { margin-right: 1em; } .muted { color: #666; font-size: .9em; }
"""


def _table(t: Table) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in t.columns)
    body = []
    for row in t.rows:
        cells = []
        for c in row:
            cls = ' class="num"' if not isinstance(c, str) else ""
            cells.append(f"<td{cls}>{escape(cell_text(c))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    caption = f"<p class=\"muted\">{escape(t.caption)}</p>" if t.caption else ""
    return (f"<h3>{escape(t.title)}</h3>{caption}<table id=\"table-{escape(t.key)}\"><thead><tr>{head}"
            f"</tr></thead><tbody>{''.join(body)}</tbody></table>")


def _figure(f: FigureOut) -> str:
    if f.png is None:
        return f"<p class=\"note\" id=\"note-{escape(f.key)}\"><b>{escape(f.title)}</b>: {escape(f.note or '')}</p>"
    data = base64.b64encode(f.png).decode("ascii")
    return (f"<figure id=\"figure-{escape(f.key)}\"><img alt=\"{escape(f.title)}\" "
            f"src=\"data:image/png;base64,{data}\"><figcaption><b>{escape(f.title)}.</b> "
            f"{escape(f.caption)}</figcaption></figure>")


def _section(s: Section) -> str:
    parts = [f"<section id=\"{escape(s.key)}\"><h2>{escape(s.title)}</h2>"]
    if s.text:
        parts.append(f"<p>{escape(s.text)}</p>")
    if s.findings:
        items = "".join(f"<li>{escape(x)}</li>" for x in s.findings)
        parts.append(f"<h3>{FINDINGS_TITLE}</h3><ul class=\"findings\" id=\"findings-{escape(s.key)}\">{items}</ul>")
    parts += [_table(t) for t in s.tables]
    parts += [_figure(f) for f in s.figures]
    if s.code:
        parts.append(f"<h3>Study configuration</h3><pre>{escape(s.code)}</pre>")
    parts.append("</section>")
    return "\n".join(parts)


def render_html(report: Report) -> str:
    nav = " ".join(f"<a href=\"#{escape(s.key)}\">{escape(s.title)}</a>" for s in report.sections)
    summary = "".join(f"<li>{escape(line)}</li>" for line in report.summary)
    body = "\n".join(_section(s) for s in report.sections)
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(report.title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{escape(report.title)}</h1><p class=\"muted\">Generated {escape(report.generated)}.</p>"
            f"<nav>{nav}</nav><ul>{summary}</ul>\n{body}\n</body></html>\n")
