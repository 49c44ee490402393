"""Judging a way of choosing a composition against a dense grid of measured runs.

The suggest bench (``bench/suggest_bench.py``) trains every candidate of a
search space once (the *grid*), some of them at more seeds, and asks, per
scenario (a weighting with a token budget and floors,
:mod:`sftmix.suggest.constraints`), how close each method's answer comes to
the grid's best. This module is that judgement, on any :class:`Grid` -- the
bench's real one or a synthetic one in the tests:

* **what a method sees** is each run as measured once (the grid's first seed),
  as a user who trains a run once sees it; **what it is judged by** is the
  mean over the seeds the grid has of that run (one seed where it has only
  one), so that one run's luck neither makes nor breaks an answer;
* a method's *answer* is the best run it measured that meets the scenario's
  floors (a one-shot regression answers with its predicted best instead); an
  answer that breaks a floor in the judged scores is worth the scenario's
  worst run that meets them;
* *regret* is the grid's best judged weighted score minus the answer's;
* the baselines get the tokens the optimiser spent: **random search** draws
  candidates within the budget at random until those tokens are spent (shared
  stages counted once, as ``sftmix plan`` counts them), averaged over seeds;
  **one-shot regression** (RegMix's recipe: random runs, one regressor from
  the composition to each score, its predicted best) fits a ridge regression on
  the same random runs; **all the data** takes the better of multi-task with
  every source whole and DMT at k = 1, where they fit the budget;
* *coverage* is the share of the grid runs a fit never saw whose measured
  weighted score lies inside its predicted 95% interval for one run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sftmix.results.pool import Z95
from sftmix.results.weights import weighted
from sftmix.suggest.composition import DMT, MULTI_TASK, Composition, Features
from sftmix.suggest.constraints import Constraints
from sftmix.suggest.model import Observation, ResponseModel


@dataclass(frozen=True)
class GridRun:
    """One candidate as the grid measured it."""

    composition: Composition
    features: Features
    measured: dict[str, float]  # its first seed: what a method that trains it once sees
    measured_se: dict[str, float]
    scores: dict[str, float]  # the mean over the grid's seeds of it: what an answer is judged by
    se: dict[str, float]  # the pooled error of that mean (seed spread or evaluation error)
    stages: tuple[str, ...]  # its stages' keys: runs that share a stage pay for it once
    seeds: int = 1

    def observation(self, run: str | None = None, tokens: float | None = None) -> Observation:
        """The run as a method measures it."""
        return Observation(run or self.composition.name, self.features, dict(self.measured),
                           dict(self.measured_se), tokens)


@dataclass
class Grid:
    runs: dict[Composition, GridRun]
    stage_tokens: dict[str, float]  # stage key -> its training tokens

    def tokens(self, comps: list[Composition]) -> float:
        """Training tokens of the distinct stages of ``comps``."""
        keys = {k for c in comps for k in self.runs[c].stages}
        return float(sum(self.stage_tokens[k] for k in keys))

    def cost(self, comp: Composition) -> float:
        return self.tokens([comp])

    def fits(self, comp: Composition, cons: Constraints) -> bool:
        return cons.fits(self.cost(comp))

    def value(self, comp: Composition, weights: dict[str, float]) -> float:
        return float(weighted(self.runs[comp].scores, weights))

    def half_width(self, comp: Composition, weights: dict[str, float]) -> float:
        """The 95% half-width of a run's judged weighted score."""
        total = sum(weights.values())
        return Z95 * math.sqrt(sum((w / total * self.runs[comp].se[a]) ** 2 for a, w in weights.items()))

    def feasible(self, cons: Constraints) -> list[Composition]:
        """The candidates within the budget whose judged scores reach every floor."""
        return [c for c, r in self.runs.items() if self.fits(c, cons) and cons.meets(r.scores)]

    def best(self, weights: dict[str, float], cons: Constraints) -> Composition:
        ok = self.feasible(cons)
        if not ok:
            raise ValueError(f"no grid run meets the constraints ({cons.describe()})")
        return max(ok, key=lambda c: self.value(c, weights))

    def judged(self, comp: Composition | None, weights: dict[str, float], cons: Constraints) -> float:
        """The judged weighted score of an answer; one that breaks the constraints (or no answer) is
        worth the worst run that meets them."""
        if comp is not None and comp in self.feasible(cons):
            return self.value(comp, weights)
        return min(self.value(c, weights) for c in self.feasible(cons))


def answer(grid: Grid, comps: list[Composition], weights: dict[str, float],
           cons: Constraints) -> Composition | None:
    """The best of ``comps`` by their measured scores, among those that meet the constraints."""
    ok = [c for c in comps if grid.fits(c, cons) and cons.meets(grid.runs[c].measured)]
    return max(ok, key=lambda c: float(weighted(grid.runs[c].measured, weights)), default=None)


def random_runs(grid: Grid, cons: Constraints, budget: float, rng: np.random.Generator) -> list[Composition]:
    """Candidates within the run budget in a random order, each kept while the tokens of all kept
    so far (shared stages once) stay within ``budget``."""
    pool = [c for c in grid.runs if grid.fits(c, cons)]
    chosen: list[Composition] = []
    for i in rng.permutation(len(pool)):
        if grid.tokens([*chosen, pool[i]]) <= budget:
            chosen.append(pool[i])
    return chosen


def regression_answer(grid: Grid, comps: list[Composition], weights: dict[str, float],
                      cons: Constraints) -> Composition | None:
    """RegMix's one shot: a ridge regression from each run's log amounts to each ability's measured
    score, fitted on ``comps``; its answer is the candidate with the best predicted weighted score
    among those within the budget whose predicted scores reach every floor."""
    from sklearn.linear_model import RidgeCV

    if len(comps) < 2:
        return answer(grid, comps, weights, cons)
    abilities = list(next(iter(grid.runs.values())).measured)
    x = np.array([grid.runs[c].features.position(abilities) for c in comps])
    cands = [c for c in grid.runs if grid.fits(c, cons)]
    xc = np.array([grid.runs[c].features.position(abilities) for c in cands])
    pred = {}
    for a in abilities:
        y = np.array([grid.runs[c].measured[a] for c in comps])
        pred[a] = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(x, y).predict(xc)
    ok = [i for i in range(len(cands)) if all(pred[a][i] >= f for a, f in cons.floors.items())]
    if not ok:
        return None
    return cands[max(ok, key=lambda i: float(weighted({a: pred[a][i] for a in abilities}, weights)))]


def all_data_answer(grid: Grid, weights: dict[str, float], cons: Constraints) -> Composition | None:
    """The better (measured) of multi-task with every source whole and DMT at k = 1, of those in the
    grid that fit the budget; None where neither does."""
    whole = [c for c in grid.runs if all(f == 1.0 for _, f in c.fractions)
             and (c.strategy == MULTI_TASK or (c.strategy == DMT and c.k == 1.0)) and grid.fits(c, cons)]
    if not whole:
        return None
    return max(whole, key=lambda c: float(weighted(grid.runs[c].measured, weights)))


def coverage(model: ResponseModel, grid: Grid, seen: set[Composition], weights: dict[str, float],
             seed: int = 0) -> tuple[float, int]:
    """Share of the grid runs not in ``seen`` whose measured weighted score lies in the model's
    95% interval for one run of it; and how many were checked."""
    unseen = [c for c in grid.runs if c not in seen]
    if not unseen:
        return math.nan, 0
    runs = model.predictive(model.draws([grid.runs[c].features for c in unseen]), seed)
    w = weighted(runs, weights)
    lo, hi = np.percentile(w, [2.5, 97.5], axis=0)
    got = np.array([float(weighted(grid.runs[c].measured, weights)) for c in unseen])
    return float(np.mean((got >= lo) & (got <= hi))), len(unseen)


@dataclass
class Baselines:
    """The baselines' answers in one scenario, at one token budget."""

    random_values: list[float] = field(default_factory=list)  # random search's judged answer, per seed
    regression_values: list[float] = field(default_factory=list)
    all_data: Composition | None = None
    all_data_value: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"random_mean": float(np.mean(self.random_values)), "random_sd": float(np.std(self.random_values)),
                "random_seeds": len(self.random_values),
                "regression_mean": float(np.mean(self.regression_values)),
                "regression_sd": float(np.std(self.regression_values)),
                "all_data": None if self.all_data is None else self.all_data.name,
                "all_data_value": self.all_data_value}


def baselines(grid: Grid, weights: dict[str, float], cons: Constraints, budget: float,
              seeds: int = 20) -> Baselines:
    """Random search and the one-shot regression over the same random runs (``seeds`` draws), and
    the all-data heuristic, judged on the grid."""
    out = Baselines()
    for s in range(seeds):
        drawn = random_runs(grid, cons, budget, np.random.default_rng(s))
        out.random_values.append(grid.judged(answer(grid, drawn, weights, cons), weights, cons))
        out.regression_values.append(grid.judged(regression_answer(grid, drawn, weights, cons), weights, cons))
    out.all_data = all_data_answer(grid, weights, cons)
    if out.all_data is not None:
        out.all_data_value = grid.judged(out.all_data, weights, cons)
    return out


def deciding(grid: Grid, weights: dict[str, float], cons: Constraints, n: int) -> list[Composition]:
    """The ``n`` runs with the best judged scores among those that meet the constraints: those whose
    order decides the scenario, and so those worth more seeds."""
    return sorted(grid.feasible(cons), key=lambda c: -grid.value(c, weights))[:n]
