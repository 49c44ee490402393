"""The report's tables as data: cells keep their numbers, the HTML and Markdown writers format them.

A cell is text, a number, or an :class:`Estimate` (a value with its 95%
interval), so that tests and other tools read the numbers, not their rendering.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from sftmix.report.paper import COLUMN_LABEL, model_label, paper_table
from sftmix.report.plotting import fmt_amount
from sftmix.results.data import StudyResults

Cell = Any  # str | int | float | Estimate | None


@dataclass(frozen=True)
class Estimate:
    """A value with its 95% interval and, for a mean over several seeds, the seeds' own values:
    the interval says how sure the mean is, the seeds how far one run can land from it."""

    value: float
    low: float | None = None
    high: float | None = None
    seeds: tuple[float, ...] = ()

    def text(self, digits: int = 3) -> str:
        v = f"{self.value:.{digits}f}"
        if self.low is not None and self.high is not None:
            v += f" [{self.low:.{digits}f}, {self.high:.{digits}f}]"
        if len(self.seeds) > 1:
            v += f"; {len(self.seeds)} seeds {min(self.seeds):.2f}–{max(self.seeds):.2f}"
        return v


@dataclass
class Table:
    key: str
    title: str
    columns: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    caption: str = ""

    def column(self, name: str) -> list[Cell]:
        i = self.columns.index(name)
        return [r[i] for r in self.rows]

    def row(self, first: str) -> list[Cell]:
        """The row whose first cell is ``first``."""
        for r in self.rows:
            if r[0] == first:
                return r
        raise KeyError(first)


def cell_text(cell: Cell, digits: int = 3) -> str:
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return "–"
    if isinstance(cell, Estimate):
        return cell.text(digits)
    if isinstance(cell, bool):
        return "yes" if cell else "no"
    if isinstance(cell, int):
        return f"{cell:,}"  # counts: 1,745,754
    if isinstance(cell, float):
        return f"{cell:.{digits}f}"
    return str(cell)


def estimate(row: pd.Series) -> Estimate:
    def opt(x: Any) -> float | None:
        return None if x is None or pd.isna(x) else float(x)
    seeds = row.get("seed_values")
    several = isinstance(seeds, list | tuple) and len(seeds) > 1  # one seed's value is the value
    return Estimate(float(row["value"]), opt(row["ci_low"]), opt(row["ci_high"]),
                    tuple(seeds) if several else ())


def measure_name(ability: str, suite: str, metric: str) -> str:
    return f"{ability}: {suite} {metric}"


def strategy_label(strategy: str, k: Any = None) -> str:
    if strategy == "dmt" and k is not None and not pd.isna(k):
        return f"dmt k={fmt_amount(float(k))}"
    return strategy


def strategy_order(res: StudyResults, labels: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Baselines in ability order, then multi-task, sequential, mixed sequential, DMT by k."""
    fixed = [f"{a}-only" for a in res.abilities] + ["multi-task", "sequential", "mixed-sequential"]

    def rank(item: tuple[str, Any]) -> tuple[int, float]:
        strategy, k = item
        if strategy in fixed:
            return fixed.index(strategy), 0.0
        return len(fixed), float(k) if k is not None and not pd.isna(k) else -1.0
    return sorted(set(labels), key=rank)


def strategy_table(res: StudyResults) -> Table | None:
    """RQ4: every strategy's headline score per ability, with its 95% interval."""
    d = res.design("strategies")
    if d.empty:
        return None
    measures = res.measures()
    models = list(dict.fromkeys(d["model"]))
    columns = ["strategy", *(["model"] if len(models) > 1 else []),
               *(measure_name(*m) for m in measures)]
    table = Table("rq4_strategies", "Each strategy's headline scores", columns,
                  caption="Headline metric of each ability's suite, mean over seeds with its 95% "
                          "interval and, with several seeds, the lowest and highest seed.")
    ks = d["c_k"] if "c_k" in d else pd.Series([None] * len(d))
    keys = strategy_order(res, [(s, None if s != "dmt" else k) for s, k in zip(d["c_strategy"], ks, strict=True)])
    for model in models:
        for strategy, k in keys:
            sel = (d["model"] == model) & (d["c_strategy"] == strategy)
            if strategy == "dmt":
                sel &= d["c_k"] == k
            part = d[sel]
            if part.empty:
                continue
            row: list[Cell] = [strategy_label(strategy, k), *([model] if len(models) > 1 else [])]
            for ability, suite, metric in measures:
                hit = part[(part["ability"] == ability) & (part["suite"] == suite) & (part["metric"] == metric)]
                row.append(estimate(hit.iloc[0]) if not hit.empty else None)
            table.rows.append(row)
    return table


def paper_strategy_table() -> Table:
    """The reference study's Table 1, as published."""
    t = paper_table("rq4_strategies")
    cols = ["gsm8k", "humaneval", "mtbench"]
    table = Table("paper_rq4", "Dong et al. 2023, Table 1 (published)",
                  ["model", "method", *(COLUMN_LABEL[c] for c in cols)],
                  caption="GSM8K and HumanEval in %, MT-Bench 1-10; no intervals or seeds were published.")
    for r in t.itertuples(index=False):
        table.rows.append([model_label(r.model), r.method, *(float(getattr(r, c)) for c in cols)])
    return table


def runs_table(res: StudyResults) -> Table:
    """Every run (seeds pooled) with the headline score of each ability."""
    measures = res.measures()
    p = res.primary
    table = Table("runs", "All runs", ["run", "design", "seeds", *(measure_name(*m) for m in measures)],
                  caption="Headline metrics, mean over seeds with the 95% interval and, with "
                          "several seeds, the lowest and highest seed.")
    for run, part in p.groupby("run", sort=False):
        row: list[Cell] = [run, part["design"].iloc[0], len(part["seeds"].iloc[0])]
        for ability, suite, metric in measures:
            hit = part[(part["ability"] == ability) & (part["suite"] == suite) & (part["metric"] == metric)]
            row.append(estimate(hit.iloc[0]) if not hit.empty else None)
        table.rows.append(row)
    return table
