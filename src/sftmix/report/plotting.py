"""Shared plotting pieces: the figure record, deterministic PNGs, amount axes, paper overlays.

Figures use matplotlib's Agg backend and are written without the timestamp or
software metadata PNG files usually carry, so that the same results give the
same bytes. The reference study's numbers sit on a secondary y-axis in their
own scale (GSM8K in %, MT-Bench 1-10) while the study's own metrics keep
theirs (accuracy 0-1): one axis per scale is the honest way to put both on one
panel. Paper series are always dashed, grey-toned and labelled with the source.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sftmix.report.paper import COLUMN_LABEL, series_label

COLORS = plt.get_cmap("tab10").colors
PAPER_GREYS = ("#555555", "#888888", "#aaaaaa")
PAPER_STYLE: dict[str, Any] = {"linestyle": "--", "linewidth": 1.2, "marker": "x", "markersize": 4}


@dataclass(frozen=True)
class Overlay:
    label: str
    column: str
    x: tuple[float, ...]
    y: tuple[float, ...]


@dataclass
class FigureOut:
    """One figure of the report: its PNG, or a note saying why it was skipped."""

    key: str
    title: str
    caption: str = ""
    png: bytes | None = None
    note: str | None = None
    # The reference study's series drawn on it: (label, paper column, x, y), for checking.
    overlays: list[Overlay] = field(default_factory=list)

    @property
    def produced(self) -> bool:
        return self.png is not None


def skipped(key: str, title: str, note: str) -> FigureOut:
    return FigureOut(key, title, note=note)


def new_figure(panels: int, width: float = 4.2, height: float = 3.4,
               max_cols: int = 3) -> tuple[Figure, list[Axes]]:
    cols = min(panels, max_cols)
    rows = (panels + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[panels:]:
        ax.set_visible(False)
    return fig, flat[:panels]


def to_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def fmt_amount(x: float) -> str:
    """0.015625 -> '1/64'; 1 -> '1'; 0.3 -> '0.3'."""
    if x == 0 or x >= 1:
        return f"{x:g}"
    frac = Fraction(x).limit_denominator(4096)
    return f"{frac.numerator}/{frac.denominator}" if abs(float(frac) - x) < 1e-12 else f"{x:.3g}"


def amount_axis(ax: Axes, values: Sequence[float], label: str) -> None:
    """A log2 x-axis with the amounts written as fractions."""
    ticks = sorted({float(v) for v in values if v > 0})
    ax.set_xscale("log", base=2)
    ax.set_xticks(ticks)
    ax.set_xticklabels([fmt_amount(t) for t in ticks], fontsize=8)
    ax.minorticks_off()
    ax.set_xlabel(label)


def interval(frame: pd.DataFrame) -> np.ndarray | None:
    """Error bar lengths (2 x n) from ci_low / ci_high; None when no row has an interval."""
    low = frame["ci_low"].astype(float).to_numpy()
    high = frame["ci_high"].astype(float).to_numpy()
    value = frame["value"].astype(float).to_numpy()
    if np.all(np.isnan(low)) and np.all(np.isnan(high)):
        return None
    return np.vstack([np.nan_to_num(value - low), np.nan_to_num(high - value)])


def line_with_band(ax: Axes, x: Sequence[float], frame: pd.DataFrame, **style: Any) -> None:
    """A line with its 95% interval as a shaded band (error bars where there is one point)."""
    y = frame["value"].astype(float).to_numpy()
    (line,) = ax.plot(x, y, marker="o", markersize=4, **style)
    err = interval(frame)
    if err is None:
        return
    if len(x) == 1:
        ax.errorbar(x, y, yerr=err, fmt="none", color=line.get_color(), capsize=3)
    else:
        ax.fill_between(x, y - err[0], y + err[1], color=line.get_color(), alpha=0.18, linewidth=0)


class PaperAxis:
    """A secondary y-axis, created on first use, for one paper column's scale."""

    def __init__(self, ax: Axes, column: str, sink: list[Overlay]) -> None:
        self.ax, self.column, self.sink = ax, column, sink
        self.twin: Axes | None = None

    def plot(self, x: Sequence[float], y: Sequence[float], model: str, index: int = 0,
             label: str | None = None, **style: Any) -> None:
        if self.twin is None:
            self.twin = self.ax.twinx()
            self.twin.set_ylabel(f"paper: {COLUMN_LABEL[self.column]}", fontsize=8, color="#555555")
            self.twin.tick_params(axis="y", labelsize=7, colors="#555555")
        kwargs = {**PAPER_STYLE, "color": PAPER_GREYS[index % len(PAPER_GREYS)], **style}
        label = label or series_label(model)
        self.twin.plot(list(x), list(y), label=label, **kwargs)
        self.sink.append(Overlay(label, self.column, tuple(map(float, x)), tuple(map(float, y))))


def legend(ax: Axes, paper: PaperAxis | None = None, fontsize: int = 7) -> None:
    """One legend for the panel's own series and its paper series."""
    handles, labels = ax.get_legend_handles_labels()
    if paper is not None and paper.twin is not None:
        h2, l2 = paper.twin.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    if handles:
        ax.legend(handles, labels, fontsize=fontsize, loc="best", framealpha=0.85)


def metric_label(suite: str, metric: str) -> str:
    return f"{suite} {metric}"
