"""The trade-off between abilities: every run as a point, the Pareto front, a weighted choice.

Scores are put on one scale, the *scaled score*: each metric on its declared
range (``sftmix.results.pool.metric_range``), 0 its worst end and 1 its best --
an accuracy or a pass rate is itself, an MT-Bench score s is (s - 1) / 9 --
flipped for metrics where lower is better; an ability with several suites
scores the mean of its suites. The scale does not depend on which runs are
compared, so adding a run changes no other run's score. A run's 95% interval
is carried through the same linear maps, and through means and weighted sums
as independent errors (different benchmarks, different items):
``h = sqrt(sum (w_i h_i)^2)``; every interval is cut to [0, 1], where the
scaled score lives.

The recommendation for a weighting of the abilities is the run with the best
weighted score, together with every run *not distinguishable* from it: a run
whose interval of the weighted score overlaps the best run's interval. Overlap
of two 95% intervals is a conservative rule -- it declares fewer differences
than a paired test on the same items would -- which is the side to err on
when the question is "is the best run really better than this one?".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from sftmix.report.plotting import COLORS, FigureOut, new_figure, skipped, to_png
from sftmix.report.tables import Estimate, Table
from sftmix.results.data import StudyResults
from sftmix.results.pool import metric_range, scaled


@dataclass
class Point:
    """One run in scaled ability space: score and lower / upper half-widths per ability."""

    run: str
    design: str
    score: dict[str, float]
    low: dict[str, float]
    high: dict[str, float]
    pareto: bool = False


@dataclass
class Tradeoff:
    abilities: list[str]
    points: list[Point]
    weights: dict[str, float]
    weighted: dict[str, Estimate] = field(default_factory=dict)
    best: str | None = None
    indistinguishable: list[str] = field(default_factory=list)  # besides the best
    excluded: list[str] = field(default_factory=list)  # runs missing a measure
    tokens: dict[str, float] = field(default_factory=dict)  # run -> its training tokens, where recorded

    @property
    def cheapest(self) -> str | None:
        """The run with the fewest training tokens among the best and those not distinguishable
        from it (None without a best, or without recorded tokens)."""
        candidates = [r for r in ([self.best] if self.best else []) + self.indistinguishable if r in self.tokens]
        return min(candidates, key=lambda r: self.tokens[r], default=None)


def _combine(halves: list[float], weights: list[float]) -> float:
    return math.sqrt(sum((w * h) ** 2 for w, h in zip(weights, halves, strict=True)))


Measure = tuple[str, str, str]  # (ability, suite, metric)
Rows = dict[str, dict[Measure, Any]]  # run -> measure -> its pooled row


def points(res: StudyResults) -> tuple[list[Point], list[str]]:
    """Every run with a score for every measure, in scaled ability space; plus the excluded runs."""
    measures = res.measures()
    table, designs = _rows(res, measures)
    complete = [r for r, ms in table.items() if len(ms) == len(measures)]
    excluded = [r for r in table if r not in complete]
    complete = _merge_same_models(table, designs, complete, measures)
    norm = _normalise(table, complete, measures)
    out = []
    for r in complete:
        score, low, high = {}, {}, {}
        for ability in res.abilities:
            ms = [m for m in measures if m[0] == ability]
            if not ms:
                continue
            eq = [1.0 / len(ms)] * len(ms)
            score[ability] = sum(norm[r][m][0] for m in ms) / len(ms)
            low[ability] = _combine([norm[r][m][1] for m in ms], eq)
            high[ability] = _combine([norm[r][m][2] for m in ms], eq)
        out.append(Point(r, designs[r], score, low, high))
    mark_pareto(out)
    return out, excluded


def _rows(res: StudyResults, measures: list[Measure]) -> tuple[Rows, dict[str, str]]:
    """Run -> its row for each headline measure, and run -> its design."""
    table: Rows = {}
    designs: dict[str, str] = {}
    for row in res.primary.itertuples(index=False):
        m = (row.ability, row.suite, row.metric)
        if m in measures:
            table.setdefault(row.run, {})[m] = row
            designs[row.run] = row.design
    return table, designs


def _merge_same_models(table: Rows, designs: dict[str, str], complete: list[str],
                       measures: list[Measure]) -> list[str]:
    """Runs of different designs that are the same trained model (merged by the planner, e.g.
    RQ2's full mixture and RQ4's multi-task) are one point, named by all of them."""
    same: dict[tuple[str, ...], list[str]] = {}
    for r in complete:
        same.setdefault(tuple(e for m in measures for e in table[r][m].evals), []).append(r)
    for names in same.values():
        if len(names) > 1:
            merged = " = ".join(names)
            table[merged] = table[names[0]]
            designs[merged] = designs[names[0]]
    return [" = ".join(names) for names in same.values()]


def _normalise(table: Rows, complete: list[str], measures: list[Measure]
               ) -> dict[str, dict[Measure, tuple[float, float, float]]]:
    """Run -> measure -> (scaled score, half-width below, above): each metric on its range."""
    norm: dict[str, dict[Measure, tuple[float, float, float]]] = {r: {} for r in complete}
    for m in measures:
        lo, hi = metric_range(m[1], m[2])
        span = (hi - lo) if math.isfinite(hi - lo) and hi > lo else 1.0
        for r in complete:
            row = table[r][m]
            v = float(row.value)
            below = 0.0 if pd.isna(row.ci_low) else max(0.0, v - float(row.ci_low)) / span
            above = 0.0 if pd.isna(row.ci_high) else max(0.0, float(row.ci_high) - v) / span
            if not row.higher_is_better:
                below, above = above, below
            norm[r][m] = (min(max(scaled(v, m[1], m[2], bool(row.higher_is_better)), 0.0), 1.0), below, above)
    return norm


def dominates(a: dict[str, float], b: dict[str, float]) -> bool:
    return all(a[k] >= b[k] for k in b) and any(a[k] > b[k] for k in b)


def mark_pareto(pts: list[Point]) -> None:
    """A run is on the front when no other run is at least as good everywhere and better somewhere."""
    for p in pts:
        p.pareto = not any(dominates(q.score, p.score) for q in pts if q is not p)


def recommend(res: StudyResults, weights: dict[str, float]) -> Tradeoff:
    pts, excluded = points(res)
    abilities = [a for a in res.abilities if pts and a in pts[0].score]
    total = sum(weights.get(a, 0.0) for a in abilities)
    tokens = {p.run: n for p in pts if (n := res.run_tokens(p.run.split(" = ")[0])) is not None}
    t = Tradeoff(abilities, pts, weights, excluded=excluded, tokens=tokens)
    if not pts or total <= 0:
        return t
    share = [weights.get(a, 0.0) / total for a in abilities]
    for p in pts:
        value = sum(s * p.score[a] for s, a in zip(share, abilities, strict=True))
        low = _combine([p.low[a] for a in abilities], share)
        high = _combine([p.high[a] for a in abilities], share)
        # Normalised scores lie in [0, 1]; so does their interval.
        t.weighted[p.run] = Estimate(value, max(0.0, value - low), min(1.0, value + high))
    order = sorted(pts, key=lambda p: -t.weighted[p.run].value)
    if t.weighted[order[0].run].value - t.weighted[order[-1].run].value <= 1e-12:
        # Every run scores the same (all at the floor, say): no run is better than another.
        t.indistinguishable = [p.run for p in order]
        return t
    best = t.weighted[order[0].run]
    t.best = order[0].run
    t.indistinguishable = [p.run for p in order[1:] if t.weighted[p.run].high >= best.low]  # type: ignore[operator]
    return t


def specialist_general(p: Point, specialist: list[str], general: str) -> tuple[float, float, float, float, float, float]:
    """(x, x_low, x_high, y, y_low, y_high): mean specialist score against the general score."""
    eq = [1.0 / len(specialist)] * len(specialist)
    x = sum(p.score[a] for a in specialist) / len(specialist)
    return (x, _combine([p.low[a] for a in specialist], eq), _combine([p.high[a] for a in specialist], eq),
            p.score[general], p.low[general], p.high[general])


def recommendation_table(t: Tradeoff) -> Table:
    weights = ", ".join(f"{a}={t.weights.get(a, 0.0):g}" for a in t.abilities)
    table = Table("recommendation", "Recommendation for the weighting " + weights,
                  ["rank", "run", "design", "weighted scaled score", *(f"{a} (scaled)" for a in t.abilities),
                   "training tokens", "Pareto front", "verdict"],
                  caption="Scaled scores: each metric on its range, 0 its worst end and 1 its best (an "
                  "accuracy is itself). A run is not distinguishable from the best when their 95% "
                  "intervals of the weighted scaled score overlap. Training tokens: the run's stages "
                  "trained from its base model, as estimated when the study ran.")
    order = sorted(t.points, key=lambda p: -t.weighted[p.run].value) if t.weighted else t.points
    for i, p in enumerate(order, start=1):
        if p.run == t.best:
            verdict = "best"
        elif p.run in t.indistinguishable:
            verdict = "not distinguishable from the best"
        else:
            verdict = "below the best"
        if t.indistinguishable and p.run == t.cheapest:
            verdict += ("; the cheapest of these" if p.run != t.best
                        else " and the cheapest of those not distinguishable from it")
        tokens = t.tokens.get(p.run)
        table.rows.append([i, p.run, p.design, t.weighted.get(p.run),
                           *(Estimate(p.score[a], max(0.0, p.score[a] - p.low[a]),
                                      min(1.0, p.score[a] + p.high[a])) for a in t.abilities),
                           None if tokens is None else round(tokens), p.pareto, verdict])
    return table


def _front_line(xs: list[float], ys: list[float]) -> tuple[list[float], list[float]]:
    """The 2-D Pareto front of the points as a staircase (x ascending, y descending)."""
    pts = sorted(zip(xs, ys, strict=True), key=lambda p: (-p[0], -p[1]))
    front: list[tuple[float, float]] = []
    for x, y in pts:
        if not front or y > front[-1][1]:
            front.append((x, y))
    front.reverse()
    fx, fy = [], []
    for i, (x, y) in enumerate(front):
        if i:
            fx.append(x)
            fy.append(front[i - 1][1])
        fx.append(x)
        fy.append(y)
    return fx, fy


def _short(run: str) -> str:
    """A point's label: each merged name without its model suffix (``mixed/1/m`` -> ``mixed/1``)."""
    return " = ".join(name.rsplit("/", 1)[0] if "/" in name else name for name in run.split(" = "))


def tradeoff_figure(t: Tradeoff, specialist: list[str], general: str | None) -> FigureOut:
    """Specialist against general (when the study has a general ability), and every pair of abilities."""
    key, title = "tradeoff", "Trade-off: every run in scaled ability space"
    if len(t.abilities) < 2 or len(t.points) < 2:
        return skipped(key, title, "The trade-off needs at least two abilities and two runs with a "
                       "score for every ability.")
    views: list[tuple[str, str, list[tuple[float, float, float, float, float, float]]]] = []
    spec = [a for a in specialist if a in t.abilities]
    if general is not None and general in t.abilities and spec:
        label = spec[0] if len(spec) == 1 else "specialist (mean of " + ", ".join(spec) + ")"
        views.append((label, general, [specialist_general(p, spec, general) for p in t.points]))
    for i, a in enumerate(t.abilities):
        for b in t.abilities[i + 1:]:
            if len(t.abilities) == 2 and views:
                break
            views.append((a, b, [(p.score[a], p.low[a], p.high[a], p.score[b], p.low[b], p.high[b])
                                 for p in t.points]))
    designs = list(dict.fromkeys(p.design for p in t.points))
    fig, axes = new_figure(len(views), width=4.6, height=4.2)
    for ax, (xa, ya, coords) in zip(axes, views, strict=True):
        for d_i, design in enumerate(designs):
            idx = [i for i, p in enumerate(t.points) if p.design == design]
            ax.errorbar([coords[i][0] for i in idx], [coords[i][3] for i in idx],
                        xerr=[[coords[i][1] for i in idx], [coords[i][2] for i in idx]],
                        yerr=[[coords[i][4] for i in idx], [coords[i][5] for i in idx]],
                        fmt="o", markersize=4, color=COLORS[d_i % 10], elinewidth=0.5, alpha=0.8,
                        label=design)
        fx, fy = _front_line([c[0] for c in coords], [c[3] for c in coords])
        ax.plot(fx, fy, color="black", linewidth=0.8, label="front of this view")
        for p, c in zip(t.points, coords, strict=True):
            if p.pareto:
                ax.scatter([c[0]], [c[3]], s=60, facecolors="none", edgecolors="black", linewidths=1.0)
                ax.annotate(_short(p.run), (c[0], c[3]), fontsize=5, xytext=(3, 3),
                            textcoords="offset points")
            if p.run == t.best:
                ax.scatter([c[0]], [c[3]], marker="*", s=140, color="gold", edgecolors="black",
                           zorder=5, label="best for the weights")
        ax.set_xlabel(f"{xa} (scaled)", fontsize=8)
        ax.set_ylabel(f"{ya} (scaled)", fontsize=8)
        ax.set_title(f"{ya} against {xa}", fontsize=9)
        ax.legend(fontsize=6, loc="best", framealpha=0.85)
    return FigureOut(key, title, "Each point is a run (seeds pooled), with 95% intervals. Circled: on "
                     "the Pareto front over all abilities; line: the front of the view; star: the best "
                     "run for the report's weights.", to_png(fig))
