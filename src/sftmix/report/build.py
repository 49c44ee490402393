"""Assemble a study's report -- sections of figures, tables and notes -- and write it out.

The report is built once as data (:class:`Report`) and rendered twice: a
self-contained HTML page and a Markdown summary with PNG files beside it. A
design the study does not have gives a note in its section, not an error.
Files are written atomically, the HTML page last, so an interrupted report
never leaves a half-written page behind.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from sftmix.artifacts import write_text_atomic
from sftmix.report import provenance, response, tables, tradeoff
from sftmix.report.document import Report, Section
from sftmix.report.plotting import FigureOut
from sftmix.results.data import StudyResults

log = logging.getLogger(__name__)


def _designs(res: StudyResults) -> list[str]:
    return list(dict.fromkeys(res.primary["design"]))


def design_sections(res: StudyResults, paper: bool) -> list[Section]:
    """Every registered design's sections (``sftmix.study.designs``), in their order: a design
    the study does not have gives its sections with a note instead of a figure."""
    from sftmix.registry import _Lazy
    from sftmix.study.designs import DESIGNS

    out: list[Section] = []
    for design in sorted((DESIGNS.get(n) for n in DESIGNS.names()), key=lambda d: (d.rank, d.name)):
        if design.report is not None:
            out += _Lazy(design.report).resolve()(res, paper)  # type: ignore[operator]
    return out


def build_report(res: StudyResults, weights: dict[str, float] | None = None, paper: bool = True,
                 tsne_queries: int = 100, tsne_run: str | None = None, seed: int = 0) -> Report:
    weights = weights or dict.fromkeys(res.abilities, 1.0)
    # First the step that can fail on user input (--tsne-run), before any time goes into drawing.
    if tsne_queries > 0:
        from sftmix.report.representation import study_tsne

        rep = study_tsne(res, tsne_queries, tsne_run, seed)
    else:
        rep = FigureOut("tsne", "Representations of training queries", note="Not computed (--tsne-queries 0).")
    t = tradeoff.recommend(res, weights)
    sections = [
        *design_sections(res, paper),
        Section("tradeoff", "Trade-off and recommendation", text=_tradeoff_text(t),
                figures=[tradeoff.tradeoff_figure(t, res.specialist, res.general)],
                tables=[tradeoff.recommendation_table(t)] if t.weighted else []),
        Section("response", "Response model and recommended composition",
                *response.response_section(res, weights)),
    ]
    sections.append(Section("representation", "Representations before and after fine-tuning", figures=[rep]))
    sections.append(Section("runs", "All runs", tables=[tables.runs_table(res)]))
    prov = [x for x in (provenance.manifests_table(res), provenance.environment_table(),
                        provenance.cost_table(res)) if x]
    sections.append(Section("provenance", "Study, data, software, hardware, time", tables=prov,
                            code=provenance.study_yaml(res)))
    runs = res.primary["run"].nunique()
    summary = [f"Study {res.study.name}: {runs} runs with results "
               f"({', '.join(_designs(res)) or 'none'}); abilities: {', '.join(res.abilities)}."]
    if t.best:
        best = t.weighted[t.best]
        summary.append(f"Best run for the weights {_weights(t)}: {t.best} (weighted scaled score "
                       f"{best.text()}); not distinguishable from it within the 95% intervals: "
                       f"{', '.join(t.indistinguishable) or 'none'}.")
        cost = _cost_text(t)
        if cost:
            summary.append(cost)
    elif len(t.points) > 1:
        summary.append(f"No best run for the weights {_weights(t)}: every run has the same "
                       "weighted score (on every headline metric they score alike), so none is "
                       "distinguishable from the others.")
    skipped = [f"{f.title}: {f.note}" for f in (x for s in sections for x in s.figures) if not f.produced]
    if skipped:
        summary.append("Not drawn: " + " ".join(skipped))
    return Report(f"sftmix report: {res.study.name}", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                  summary, sections)


def _weights(t: tradeoff.Tradeoff) -> str:
    return ", ".join(f"{a}={t.weights.get(a, 0.0):g}" for a in t.abilities)


def _cost_text(t: tradeoff.Tradeoff) -> str:
    """What the best run costs against the cheapest run not distinguishable from it."""
    if t.best is None or t.best not in t.tokens or t.cheapest is None:
        return ""
    best, cheap = t.tokens[t.best], t.tokens[t.cheapest]
    if t.cheapest == t.best:
        return (f"It is also the cheapest of the runs not distinguishable from it: "
                f"{round(best):,} training tokens.")
    return (f"It costs {round(best):,} training tokens; the cheapest run not distinguishable from it, "
            f"{t.cheapest}, costs {round(cheap):,} ({cheap / best:.2f} of the best's) for a weighted "
            f"scaled score of {t.weighted[t.cheapest].text()}.")


def _tradeoff_text(t: tradeoff.Tradeoff) -> str:
    text = ("Every run is a point of its ability scores, each on its metric's range (the scaled "
            "score: 0 the range's worst end, 1 its best; an accuracy is itself), so that one scale "
            "serves every ability and every section of this report. The Pareto front holds the "
            "runs no other run beats on every ability at once. The recommendation weighs the "
            f"abilities ({_weights(t)}) and lists, besides the best run, every run whose 95% "
            "interval of the weighted scaled score overlaps the best run's: those are not "
            "distinguishable from it with this study's evaluation sizes and seeds; of those, the "
            "cheapest in training tokens is named.")
    if t.excluded:
        text += f" Left out for missing a score: {', '.join(t.excluded)}."
    return text


def write_report(report: Report, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.md`` with ``figures/*.png`` and the self-contained ``report.html``."""
    from sftmix.report.html import render_html
    from sftmix.report.markdown import render_markdown

    out = Path(out_dir)
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    for fig in report.figures:
        target = fig_dir / f"{fig.key}.png"
        if fig.png is None:
            target.unlink(missing_ok=True)  # a figure of an earlier report that no longer applies
            continue
        tmp = target.with_name(target.name + ".partial")
        tmp.write_bytes(fig.png)
        tmp.replace(target)
    md, html = out / "report.md", out / "report.html"
    write_text_atomic(md, render_markdown(report, "figures"))
    write_text_atomic(html, render_html(report))
    log.info("wrote %s and %s", html, md)
    return html, md
