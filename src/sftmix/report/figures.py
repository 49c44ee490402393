"""The reference study's amount figures for any study: RQ1 scaling, RQ2 mixed, RQ3 ratio, DMT's k.

Each function takes the study's results and returns a :class:`FigureOut`: the
PNG, or a note when the study has no results for that design (a report of a
partial study is still a report). Abilities and suites come from the study,
so user-named abilities get their panels too; the reference study's numbers
are overlaid where an ability is measured by the paper's benchmark (GSM8K, HumanEval,
MT-Bench).
"""

from __future__ import annotations

import pandas as pd

from sftmix.report.document import Section
from sftmix.report.paper import paper_column, paper_table, series_label, unmatched_note
from sftmix.report.plotting import (
    COLORS,
    FigureOut,
    Overlay,
    PaperAxis,
    amount_axis,
    fmt_amount,
    legend,
    line_with_band,
    new_figure,
    skipped,
    to_png,
)
from sftmix.results.data import StudyResults

PAPER_MODEL = "llama-7b"


def _ylabel(part: pd.DataFrame) -> str:
    pairs = part[["suite", "metric"]].drop_duplicates()
    return " / ".join(f"{s} {m}" for s, m in pairs.itertuples(index=False))


def _paper_x(pa: PaperAxis | None) -> list[float]:
    """The x values of the paper series drawn on a panel, so that the axis labels them too."""
    if pa is None:
        return []
    return [x for o in pa.sink if o.column == pa.column for x in o.x]


def _note(res: StudyResults, paper: bool, d: pd.DataFrame, by: str = "ability") -> str:
    """The caption's word on panels where the paper measured the ability with another benchmark."""
    if not paper:
        return ""
    return unmatched_note(((a, part["suite"]) for a, part in d.groupby(by, sort=False)), res.general)


def _series(part: pd.DataFrame, by: list[str]) -> list[tuple[str, pd.DataFrame]]:
    """Sub-frames per combination of ``by`` with a short label (single values left out)."""
    varying = [c for c in by if part[c].nunique() > 1]
    out = []
    for key, sub in part.groupby(by, sort=False):
        values = dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True))
        label = ", ".join(str(values[c]) for c in varying) or str(values[by[0]])
        out.append((label, sub))
    return out


def scaling_figure(res: StudyResults, paper: bool = True) -> FigureOut:
    """RQ1: each ability trained alone, its score against the amount of its data."""
    key, title = "rq1_scaling", "RQ1: each ability trained alone, against its amount of data"
    d = res.design("scaling")
    d = d[d["ability"] == d.get("c_ability")] if not d.empty else d
    if d.empty:
        return skipped(key, title, "No results of the 'scaling' design (RQ1) in this study.")
    trained = [a for a in res.abilities if a in set(d["c_ability"])]
    fig, axes = new_figure(len(trained))
    overlays: list[Overlay] = []
    for ax, ability in zip(axes, trained, strict=True):
        part = d[d["c_ability"] == ability]
        for i, (label, s) in enumerate(_series(part, ["model", "suite"])):
            s = s.sort_values("c_fraction")
            line_with_band(ax, s["c_fraction"].tolist(), s, label=label, color=COLORS[i % 10])
        ax.set_ylabel(_ylabel(part), fontsize=8)
        ax.set_title(f"{ability} alone")
        pa = None
        column = paper_column(part["suite"])
        if paper and column:
            pa = PaperAxis(ax, column, overlays)
            table = paper_table("rq1_single_source")
            for j, (model, pm) in enumerate(table.groupby("model", sort=False)):
                pm = pm.sort_values("fraction")
                pa.plot(pm["fraction"].tolist(), pm[column].tolist(), str(model), j)
        amount_axis(ax, part["c_fraction"].tolist() + _paper_x(pa), f"fraction of the {ability} data")
        legend(ax, pa)
    return FigureOut(key, title, "Shaded: 95% intervals. Dashed grey, right axis: the published "
                     "numbers of the reference study, on their own scale." + _note(res, paper, d, "c_ability"),
                     to_png(fig), overlays=overlays)


def mixed_figure(res: StudyResults, paper: bool = True) -> FigureOut:
    """RQ2: each ability's score in the mixture of all abilities against alone, per fraction."""
    key, title = "rq2_mixed", "RQ2: all abilities mixed at one fraction, against each trained alone"
    mixed = res.design("mixed")
    if mixed.empty:
        return skipped(key, title, "No results of the 'mixed' design (RQ2) in this study.")
    alone = res.design("scaling")
    if not alone.empty:
        alone = alone[alone["ability"] == alone["c_ability"]]
    abilities = [a for a in res.abilities if a in set(mixed["ability"])]
    fig, axes = new_figure(len(abilities))
    overlays: list[Overlay] = []
    for ax, ability in zip(axes, abilities, strict=True):
        part = mixed[mixed["ability"] == ability]
        for i, (label, s) in enumerate(_series(part, ["model", "suite"])):
            s = s.sort_values("c_fraction")
            line_with_band(ax, s["c_fraction"].tolist(), s, label=f"mixed: {label}", color=COLORS[i % 10])
            if not alone.empty:
                a = alone[(alone["ability"] == ability) & (alone["model"] == s["model"].iloc[0])
                          & (alone["suite"] == s["suite"].iloc[0])].sort_values("c_fraction")
                if not a.empty:
                    line_with_band(ax, a["c_fraction"].tolist(), a, label=f"alone: {label}",
                                   color=COLORS[i % 10], linestyle="-.")
        ax.set_ylabel(_ylabel(part), fontsize=8)
        ax.set_title(ability)
        pa = None
        column = paper_column(part["suite"])
        if paper and column:
            pa = PaperAxis(ax, column, overlays)
            for j, (name, what) in enumerate((("rq2_mixed_sources", "mixed"), ("rq1_single_source", "alone"))):
                t = paper_table(name)
                t = t[t["model"] == PAPER_MODEL].sort_values("fraction")
                pa.plot(t["fraction"].tolist(), t[column].tolist(), PAPER_MODEL, j,
                        label=f"{series_label(PAPER_MODEL)} {what}", marker="x" if j == 0 else "+")
        amount_axis(ax, part["c_fraction"].tolist() + _paper_x(pa), "fraction of each source")
        legend(ax, pa)
    note = "" if not alone.empty else " The study has no 'scaling' design, so only the mixed lines are drawn."
    return FigureOut(key, title, "Solid: in the mixture; dash-dot: trained alone (RQ1 runs). Shaded: "
                     "95% intervals. Dashed grey, right axis: the reference study (LLaMA-7B)." + note
                     + _note(res, paper, mixed),
                     to_png(fig), overlays=overlays)


def ratio_figure(res: StudyResults, paper: bool = True) -> FigureOut:
    """RQ3: score against k for setups a (general full), b (specialist full), c (general fixed)."""
    key, title = "rq3_ratio", "RQ3: amount or ratio? Setups a, b and c against k"
    d = res.design("ratio")
    if d.empty:
        return skipped(key, title, "No results of the 'ratio' design (RQ3) in this study.")
    abilities = [a for a in res.abilities if a in set(d["ability"])]
    fig, axes = new_figure(len(abilities))
    overlays: list[Overlay] = []
    ptable = paper_table("rq3_ratio")
    for ax, ability in zip(axes, abilities, strict=True):
        part = d[d["ability"] == ability]
        models = list(dict.fromkeys(part["model"]))
        for label, s in _series(part, ["c_setup", "model", "suite"]):
            s = s.sort_values("c_k")
            line_with_band(ax, s["c_k"].tolist(), s, label=f"setup {label}",
                           color=COLORS["abc".index(s["c_setup"].iloc[0])],
                           linestyle=("-", ":", "-.")[models.index(s["model"].iloc[0]) % 3])
        ax.set_ylabel(_ylabel(part), fontsize=8)
        ax.set_title(ability)
        pa = None
        column = paper_column(part["suite"])
        if paper and column:
            pa = PaperAxis(ax, column, overlays)
            for j, (setup, t) in enumerate(ptable.groupby("setup", sort=True)):
                t = t.sort_values("k")
                # Coloured like the study's own setup, dashed and fainter: the same setup, published.
                pa.plot(t["k"].tolist(), t[column].tolist(), PAPER_MODEL, j,
                        label=f"{series_label(PAPER_MODEL)} setup {setup}",
                        color=COLORS["abc".index(str(setup))], alpha=0.55)
        amount_axis(ax, part["c_k"].tolist() + _paper_x(pa), "k")
        legend(ax, pa, fontsize=6)
    return FigureOut(key, title, "a: full general data, specialist data scaled by k; b: full "
                     "specialist data, general scaled by k; c: general fixed at a small fraction, "
                     "specialist scaled by k. Shaded: 95% intervals. Dashed grey, right axis: the "
                     "reference study (LLaMA-7B)." + _note(res, paper, d), to_png(fig), overlays=overlays)


def dmt_rows(res: StudyResults) -> pd.DataFrame:
    """DMT runs with their k; mixed sequential stands in for k = 0 when DMT(0) was not run."""
    d = res.design("strategies")
    if d.empty or "c_strategy" not in d:
        return d.iloc[0:0]
    dmt = d[d["c_strategy"] == "dmt"].copy()
    if dmt.empty:
        return dmt
    for model in dmt["model"].unique():
        has_zero = ((dmt["model"] == model) & (dmt["c_k"] == 0)).any()
        seq = d[(d["c_strategy"] == "mixed-sequential") & (d["model"] == model)].copy()
        if not has_zero and not seq.empty:
            seq["c_k"] = 0.0
            dmt = pd.concat([dmt, seq], ignore_index=True)
    return dmt.reset_index(drop=True)


def dmt_figure(res: StudyResults, paper: bool = True) -> FigureOut:
    """DMT: every ability's score against the replay fraction k (k = 0: mixed sequential)."""
    key, title = "dmt_k", "DMT: each ability against the stage-2 replay fraction k"
    d = dmt_rows(res)
    if d.empty:
        return skipped(key, title, "No DMT results (the 'strategies' design with 'dmt: {ks: ...}') "
                       "in this study.")
    ks = sorted(set(d["c_k"].astype(float)))
    pos = {k: i for i, k in enumerate(ks)}
    abilities = [a for a in res.abilities if a in set(d["ability"])]
    fig, axes = new_figure(len(abilities))
    overlays: list[Overlay] = []
    ptable = paper_table("dmt_k_sweep")
    for ax, ability in zip(axes, abilities, strict=True):
        part = d[d["ability"] == ability]
        for i, (label, s) in enumerate(_series(part, ["model", "suite"])):
            s = s.sort_values("c_k")
            line_with_band(ax, [pos[float(k)] for k in s["c_k"]], s, label=label, color=COLORS[i % 10])
        ax.set_xticks(range(len(ks)))
        ax.set_xticklabels([("0\n(mixed seq.)" if k == 0 else fmt_amount(k)) for k in ks], fontsize=8)
        ax.set_xlabel("k (share of the specialist data replayed in stage 2)")
        ax.set_ylabel(_ylabel(part), fontsize=8)
        role = "general" if ability == res.general else "specialist"
        ax.set_title(f"{ability} ({role})")
        pa = None
        column = paper_column(part["suite"])
        if paper and column:
            pa = PaperAxis(ax, column, overlays)
            for j, (model, t) in enumerate(ptable.groupby("model", sort=False)):
                t = t[t["k"].isin(ks)].sort_values("k")
                if not t.empty:
                    pa.plot([pos[float(k)] for k in t["k"]], t[column].tolist(), str(model), j)
        legend(ax, pa)
    return FigureOut(key, title, "k = 0 replays nothing: it is mixed sequential. Shaded: 95% "
                     "intervals. Dashed grey, right axis: the reference study, at the k values "
                     "this study shares with it." + _note(res, paper, d), to_png(fig), overlays=overlays)


# -- the sections of the designs (``sftmix.study.designs``: each names its function) -----------

def scaling_sections(res: StudyResults, paper: bool) -> list[Section]:
    from sftmix.report.findings import scaling_findings

    return [Section("rq1", "RQ1: each ability alone, by amount", figures=[scaling_figure(res, paper)],
                    findings=[c.text() for c in scaling_findings(res)])]


def mixed_sections(res: StudyResults, paper: bool) -> list[Section]:
    return [Section("rq2", "RQ2: mixing all abilities", figures=[mixed_figure(res, paper)])]


def ratio_sections(res: StudyResults, paper: bool) -> list[Section]:
    return [Section("rq3", "RQ3: amount or ratio", figures=[ratio_figure(res, paper)])]
