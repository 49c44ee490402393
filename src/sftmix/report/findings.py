"""The study's comparisons stated seed by seed: what each finding rests on.

A mean over seeds can hide a split: two seeds far above, one at the floor. A
finding here is a comparison of two runs on one ability's headline metric,
*paired by seed* (the same seed fixes the same data order and initial weights
in both), with every seed's difference and how many of them agree:

* the scaling design: each ability trained alone on its largest amount against
  its smallest;
* the strategies: every strategy against each ability trained alone on all its
  data (the ``<ability>-only`` baseline), on that ability.

With one seed the sentence says so: one seed is one draw, and nothing in it
tells how far the next draw would land.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from sftmix.report.plotting import fmt_amount
from sftmix.report.tables import strategy_label
from sftmix.results.data import StudyResults


@dataclass(frozen=True)
class Comparison:
    """Run ``a`` against run ``b`` on one metric, seed by seed (the seeds both have)."""

    subject: str  # what is compared, in words: "maths alone, 1 against 1/8"
    a: dict[int, float]
    b: dict[int, float]

    @property
    def seeds(self) -> list[int]:
        return sorted(set(self.a) & set(self.b))

    @property
    def differences(self) -> dict[int, float]:
        return {s: self.a[s] - self.b[s] for s in self.seeds}

    @property
    def difference(self) -> float:
        d = self.differences
        return sum(d.values()) / len(d)

    def agreement(self) -> str:
        """How the seeds' differences agree: ``higher at all 3 seeds``, ``lower at 2 of 3 seeds``."""
        d = list(self.differences.values())
        n = len(d)
        if n == 1:
            return "one seed only, so how far another seed would land is unknown"
        up, down = sum(x > 0 for x in d), sum(x < 0 for x in d)
        if up == n:
            return f"higher at all {n} seeds"
        if down == n:
            return f"lower at all {n} seeds"
        if up == down == 0:
            return f"equal at all {n} seeds"
        words = [f"{c} at {k} of {n} seeds" for c, k in (("higher", up), ("lower", down), ("equal", n - up - down))
                 if k]
        return ", ".join(words)

    def _mean(self, values: dict[int, float]) -> float:
        return sum(values[s] for s in self.seeds) / len(self.seeds)

    def text(self) -> str:
        per_seed = ", ".join(f"s{s} {self.a[s]:.2f} vs {self.b[s]:.2f}" for s in self.seeds)
        return (f"{self.subject}: {self._mean(self.a):.3f} against {self._mean(self.b):.3f}, "
                f"{self.difference:+.3f}; {self.agreement()} ({per_seed}).")


def _amount(fraction: float) -> str:
    return "all its data" if fraction == 1 else f"{fmt_amount(fraction)} of its data"


def _per_seed(rows: pd.DataFrame) -> dict[int, float]:
    return {int(s): float(v) for s, v in zip(rows["seed"], rows["value"], strict=True)}


def _headline(res: StudyResults) -> pd.DataFrame:
    """Per-seed rows of every ability's headline metric (its first suite's primary metric)."""
    rows = res.rows.loc[res.rows["primary"].astype(bool)]
    first: dict[str, tuple[str, str]] = {}
    for ability, suite, metric in res.measures():
        first.setdefault(ability, (suite, metric))  # one value per seed: an ability's first suite
    keep = pd.Series(False, index=rows.index)
    for ability, (suite, metric) in first.items():
        keep |= (rows["ability"] == ability) & (rows["suite"] == suite) & (rows["metric"] == metric)
    return rows[keep]


def scaling_findings(res: StudyResults) -> list[Comparison]:
    """Each ability alone: its largest amount against its smallest, on its own metric."""
    rows = _headline(res)
    if not {"c_ability", "c_fraction"} <= set(rows.columns):
        return []  # no scaling runs
    rows = rows[rows["design"] == "scaling"]
    several = rows["model"].nunique() > 1
    out = []
    for (model, ability), part in rows.groupby(["model", "c_ability"], sort=False):
        own = part[part["ability"] == ability]
        fractions = sorted(set(own["c_fraction"].astype(float)))
        if len(fractions) < 2:
            continue
        big, small = fractions[-1], fractions[0]
        subject = f"{ability} alone, {_amount(big)} against {_amount(small)}"
        out.append(Comparison(f"{model}: {subject}" if several else subject,
                              _per_seed(own[own["c_fraction"].astype(float) == big]),
                              _per_seed(own[own["c_fraction"].astype(float) == small])))
    return out


def strategy_findings(res: StudyResults) -> list[Comparison]:
    """Every strategy against each ability trained alone on all its data, on that ability."""
    rows = _headline(res)
    if "c_strategy" not in rows.columns:
        return []  # no strategy runs
    rows = rows[rows["design"] == "strategies"]
    several = rows["model"].nunique() > 1
    out = []
    for model, part in rows.groupby("model", sort=False):
        k = part["c_k"] if "c_k" in part else pd.Series(None, index=part.index)
        labels = [strategy_label(s, x) for s, x in zip(part["c_strategy"], k, strict=True)]
        part = part.assign(label=labels)
        baselines = {a: part[(part["label"] == f"{a}-only") & (part["ability"] == a)] for a in res.abilities}
        for label in dict.fromkeys(labels):
            if label.endswith("-only"):
                continue
            for ability, base in baselines.items():
                mine = part[(part["label"] == label) & (part["ability"] == ability)]
                if base.empty or mine.empty:
                    continue
                subject = f"{label}, {ability}, against {ability} alone"
                comparison = Comparison(f"{model}: {subject}" if several else subject,
                                        _per_seed(mine), _per_seed(base))
                if comparison.seeds:
                    out.append(comparison)
    return out
