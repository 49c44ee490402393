"""RQ4's figures: grouped bars of every strategy per ability, and per-category radars.

The radar reads per-category metrics named ``<headline>_<category>`` or
``<headline>/<category>`` (MT-Bench records ``score_writing``, ``score_roleplay``,
...; its per-turn ``score_turn1`` / ``score_turn2`` are not categories); any
suite that records such metrics gets one, so a user's own categorised
benchmark is drawn too.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from sftmix.report.document import Section
from sftmix.report.paper import (
    COLUMN_LABEL,
    alone_columns,
    paper_column,
    paper_strategy,
    paper_table,
    series_label,
    unmatched_note,
)
from sftmix.report.plotting import (
    COLORS,
    PAPER_STYLE,
    FigureOut,
    Overlay,
    interval,
    new_figure,
    skipped,
    to_png,
)
from sftmix.report.tables import strategy_label, strategy_order
from sftmix.results.data import StudyResults

PAPER_MODEL = "llama-7b"


def _keys(res: StudyResults, d: pd.DataFrame) -> list[tuple[str, float | None]]:
    ks = d["c_k"] if "c_k" in d else pd.Series([None] * len(d), index=d.index)
    return strategy_order(res, [(s, None if s != "dmt" else k) for s, k in zip(d["c_strategy"], ks, strict=True)])


def _select(d: pd.DataFrame, strategy: str, k: float | None) -> pd.DataFrame:
    sel = d["c_strategy"] == strategy
    if strategy == "dmt":
        sel &= d["c_k"] == k
    return d[sel]


def strategy_bars(res: StudyResults, paper: bool = True) -> FigureOut:
    """RQ4: a panel per ability; a group of bars per strategy, a bar per model."""
    key, title = "rq4_strategies", "RQ4: training strategies, per ability"
    d = res.design("strategies")
    if d.empty:
        return skipped(key, title, "No results of the 'strategies' design (RQ4) in this study.")
    keys = _keys(res, d)
    models = list(dict.fromkeys(d["model"]))
    measures = res.measures()
    measures = [m for m in measures if ((d["ability"] == m[0]) & (d["suite"] == m[1])).any()]
    fig, axes = new_figure(len(measures), width=max(4.2, 0.55 * len(keys) + 1.5), max_cols=1 if len(keys) > 8 else 3)
    ptable = paper_table("rq4_strategies")
    ptable = ptable[ptable["model"] == PAPER_MODEL]
    alone = alone_columns(((a, s) for a, s, _ in measures), res.general)
    overlays: list[Overlay] = []
    for ax, (ability, suite, metric) in zip(axes, measures, strict=True):
        part = d[(d["ability"] == ability) & (d["suite"] == suite) & (d["metric"] == metric)]
        column = paper_column([suite]) if paper else None
        slots = len(models) + (1 if column else 0)
        width = 0.8 / slots
        x = np.arange(len(keys))
        for i, model in enumerate(models):
            rows = [_select(part[part["model"] == model], s, k) for s, k in keys]
            vals = np.array([r["value"].iloc[0] if not r.empty else np.nan for r in rows], dtype=float)
            frame = pd.DataFrame({"value": vals,
                                  "ci_low": [r["ci_low"].iloc[0] if not r.empty else np.nan for r in rows],
                                  "ci_high": [r["ci_high"].iloc[0] if not r.empty else np.nan for r in rows]})
            err = interval(frame)
            ax.bar(x + (i - (slots - 1) / 2) * width, vals, width, yerr=err, capsize=2,
                   color=COLORS[i % 10], label=model, error_kw={"linewidth": 0.8})
        if column:
            twin = ax.twinx()
            ys = []
            for s, k in keys:
                name = paper_strategy(s, k, alone)
                hit = ptable[ptable["method"] == name] if name else ptable.iloc[0:0]
                ys.append(float(hit[column].iloc[0]) if not hit.empty else np.nan)
            overlays.append(Overlay(series_label(PAPER_MODEL), column, tuple(float(v) for v in x), tuple(ys)))
            twin.bar(x + (len(models) - (slots - 1) / 2) * width, ys, width, fill=False, edgecolor="#555555", linestyle=PAPER_STYLE["linestyle"],
                     linewidth=1.0, label=series_label(PAPER_MODEL))
            twin.set_ylabel(f"paper: {COLUMN_LABEL[column]}", fontsize=8, color="#555555")
            twin.tick_params(axis="y", labelsize=7, colors="#555555")
            handles, labels = ax.get_legend_handles_labels()
            h2, l2 = twin.get_legend_handles_labels()
            ax.legend(handles + h2, labels + l2, fontsize=7, loc="upper left", framealpha=0.85)
        else:
            ax.legend(fontsize=7, loc="upper left")
        # Scores start at 0: an all-zero panel must not show a negative axis.
        _, top = ax.get_ylim()
        ax.set_ylim(0, top if top > 0 else 1)
        ax.set_xticks(x)
        ax.set_xticklabels([strategy_label(s, k) for s, k in keys], rotation=35, ha="right", fontsize=8)
        ax.set_ylabel(f"{suite} {metric}", fontsize=8)
        ax.set_title(ability)
    by_ability: dict[str, list[str]] = {}
    for ability, suite, _ in measures:
        by_ability.setdefault(ability, []).append(suite)
    note = unmatched_note(by_ability.items(), res.general) if paper else ""
    return FigureOut(key, title, "Error bars: 95% intervals. Hollow dashed bars, right axis: the "
                     "reference study's Table 1 (LLaMA-7B), where it has the strategy." + note,
                     to_png(fig), overlays=overlays)


def category_metrics(res: StudyResults) -> dict[str, pd.DataFrame]:
    """Per suite, the strategies' per-category rows, with a ``category`` column."""
    d = res.metrics[res.metrics["design"] == "strategies"]
    out: dict[str, pd.DataFrame] = {}
    for suite, part in d.groupby("suite", sort=False):
        heads = [re.escape(str(h)) for h in part[part["primary"]]["metric"].unique()]
        if not heads:
            continue
        pattern = re.compile(rf"^(?:{'|'.join(heads)})[/_](?!turn\d+$)(.+)$")
        cats = part[part["metric"].astype(str).str.match(pattern)].copy()
        if cats["metric"].nunique() >= 3:
            cats["category"] = cats["metric"].astype(str).str.replace(pattern, r"\1", regex=True)
            out[str(suite)] = cats
    return out


def radar_figure(res: StudyResults) -> FigureOut:
    """Per-category scores of every strategy (MT-Bench's eight categories, or any suite's)."""
    key, title = "radar", "Per-category scores of each strategy"
    if res.design("strategies").empty:
        return skipped(key, title, "No results of the 'strategies' design (RQ4) in this study.")
    suites = category_metrics(res)
    if not suites:
        return skipped(key, title, "No per-category metrics were recorded (metric names such as "
                       "'score_writing', which MT-Bench records); nothing to draw.")
    panels = [(s, m) for s, frame in suites.items() for m in dict.fromkeys(frame["model"])]
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(6.4 * min(len(panels), 2), 4.8 * ((len(panels) + 1) // 2)))
    for n, (suite, model) in enumerate(panels):
        frame = suites[suite]
        frame = frame[frame["model"] == model]
        cats = list(dict.fromkeys(frame["metric"]))
        angles = np.linspace(0, 2 * np.pi, len(cats), endpoint=False).tolist()
        ax = fig.add_subplot((len(panels) + 1) // 2, min(len(panels), 2), n + 1, projection="polar")
        for i, (s, k) in enumerate(_keys(res, frame)):
            rows = _select(frame, s, k).set_index("metric")
            vals = [float(rows.loc[c, "value"]) if c in rows.index else np.nan for c in cats]
            ax.plot([*angles, angles[0]], [*vals, vals[0]], color=COLORS[i % 10], linewidth=1.2,
                    label=strategy_label(s, k))
        ax.set_xticks(angles)
        names = dict(zip(frame["metric"], frame["category"], strict=True))
        ax.set_xticklabels([names[c] for c in cats], fontsize=8)
        top = float(np.nanmax(frame["value"].astype(float)))
        ax.set_ylim(0, top * 1.05 if top > 0 else 1)
        ax.tick_params(axis="y", labelsize=6)
        ax.set_title(f"{suite} ({model})", fontsize=10)
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.08, 1.05))
    return FigureOut(key, title, "Mean per-category score of each strategy's final model.", to_png(fig))


def strategies_sections(res: StudyResults, paper: bool) -> list[Section]:
    """RQ4's section (tables, bars per ability, the MT-Bench radar) and DMT's choice of k."""
    from sftmix.report.figures import dmt_figure
    from sftmix.report.findings import strategy_findings
    from sftmix.report.tables import paper_strategy_table, strategy_table

    rq4 = [x for x in (strategy_table(res), paper_strategy_table() if paper else None) if x]
    return [Section("rq4", "RQ4: training strategies", tables=rq4,
                    figures=[strategy_bars(res, paper), radar_figure(res)],
                    findings=[c.text() for c in strategy_findings(res)]),
            Section("dmt", "DMT: choosing k", figures=[dmt_figure(res, paper)])]
