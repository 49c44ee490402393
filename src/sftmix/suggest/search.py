"""The search space, the recommendation for a weighting, and the runs worth running next.

Candidates are multi-task mixtures over a grid of fractions per ability and DMT
runs over a grid of k (with every source at its full amount, as in the
reference study). Each candidate's weighted score is ``sum w_a s_a / sum w_a``
in scaled scores (each metric on its range), drawn from the response model's bootstrap
replicates; the recommendation is the candidate with the best mean, within the
token budget, with the 2.5-97.5 percentile interval of the replicates.

Constraints (:mod:`sftmix.suggest.constraints`) narrow the recommendation: a
token budget on the composition's own training and floors on abilities (a
candidate qualifies when its predicted mean reaches every floor).

The next runs are those with the largest *expected gain*: the mean over
replicates of ``max(0, W(candidate) - best measured weighted score)``, counted
only in the replicates in which the candidate reaches every floor -- the
expected improvement on what the runs already show. Its maximum over the
candidates within the budget is what the optimiser compares with its threshold;
a candidate whose expected gain is below :data:`MIN_GAIN` is never proposed.

Two kinds of interval: ``expected`` is the 95% interval of a candidate's expected
score (the model's replicates); ``low``/``high`` add what one run of it would
measure besides (``ResponseModel.predictive``) and are the intervals printed.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sftmix.results.pool import Z95
from sftmix.results.weights import weighted
from sftmix.study.cost import SourceStats, stage_tokens
from sftmix.suggest.composition import Composition, features_of
from sftmix.suggest.constraints import Constraints
from sftmix.suggest.model import Observation, ResponseModel
from sftmix.train.config import TrainSettings

DEFAULT_FRACTIONS = (1 / 8, 1 / 4, 1 / 2, 1.0)
DEFAULT_KS = (0.0, 1 / 32, 1 / 8, 1 / 4, 1 / 2, 1.0)
# A run is proposed only when its expected gain in weighted score reaches this (printed as 0.0001):
# a run whose expected gain rounds to zero is not worth its tokens.
MIN_GAIN = 1e-4


@dataclass
class Space:
    """The candidates: multi-task mixtures over a grid of fractions per ability, and -- where the
    study has a general ability besides others -- DMT over a grid of k with all the data."""

    abilities: list[str]
    fractions: tuple[float, ...] = DEFAULT_FRACTIONS
    ks: tuple[float, ...] = DEFAULT_KS
    general: str | None = None

    def candidates(self) -> list[Composition]:
        out = [Composition.multi_task(dict(zip(self.abilities, f, strict=True)), self.general)
               for f in itertools.product(self.fractions, repeat=len(self.abilities))]
        if self.general is not None and len(self.abilities) > 1:
            out += [Composition.dmt(dict.fromkeys(self.abilities, 1.0), k, self.general) for k in self.ks]
        return out

    def to_json(self) -> dict[str, Any]:
        return {"abilities": self.abilities, "fractions": list(self.fractions), "ks": list(self.ks),
                "general": self.general}


def composition_tokens(comp: Composition, sizes: dict[str, int], tokens_per_example: dict[str, float],
                       epochs: float, training: TrainSettings | None = None) -> float:
    """Training tokens of a composition trained from scratch (every stage once), as ``sftmix plan``
    counts them (``max_steps`` respected) when the study's ``training`` settings are given."""
    if training is not None:
        stats = {a: SourceStats(sizes[a], tokens_per_example[a]) for a in sizes}
        return sum(stage_tokens(recipe, training, stats) for recipe in comp.recipes())
    return sum(c * tokens_per_example[a] * epochs for recipe in comp.recipes()
               for a, c in recipe.counts(sizes).items())


@dataclass
class Prediction:
    composition: Composition
    tokens: float
    mean: float  # the expected weighted score (mean over the model's replicates)
    low: float  # 95% interval of what one run of it would measure (the expected score and a run's noise)
    high: float
    abilities: dict[str, tuple[float, float, float]]  # ability -> (mean, low, high), as above
    gain: float = 0.0  # expected improvement over the best measured run that meets the constraints
    measured: bool = False
    expected: tuple[float, float] = (math.nan, math.nan)  # 95% interval of the expected score alone
    p_floors: float = 1.0  # share of the replicates in which it reaches every floor
    feasible: bool = True  # within the budget, and its predicted mean reaches every floor
    p_beats: float = 0.0  # share of the replicates in which it beats the best measured run

    def to_json(self) -> dict[str, Any]:
        return {"run": self.composition.name, "composition": self.composition.to_json(),
                "describe": self.composition.describe(), "tokens": self.tokens,
                "weighted": {"mean": self.mean, "low": self.low, "high": self.high,
                             "expected_low": self.expected[0], "expected_high": self.expected[1]},
                "abilities": {a: dict(zip(("mean", "low", "high"), v, strict=True))
                              for a, v in self.abilities.items()},
                "expected_gain": self.gain, "measured": self.measured, "p_floors": self.p_floors,
                "feasible": self.feasible, "p_beats_best": self.p_beats}


@dataclass
class Suggestion:
    weights: dict[str, float]
    best_measured: tuple[str, float] | None
    recommended: Prediction | None
    next_runs: list[Prediction]
    predictions: list[Prediction] = field(default_factory=list)
    budget: float | None = None
    constraints: Constraints = field(default_factory=Constraints)
    cheapest_equivalent: Prediction | None = None  # the cheapest candidate the model cannot tell from it
    warnings: list[str] = field(default_factory=list)

    @property
    def max_gain(self) -> float:
        """The largest expected gain of a run not yet measured that fits the budget."""
        return max((p.gain for p in self.predictions if not p.measured and self.constraints.fits(p.tokens)),
                   default=0.0)

    def to_json(self) -> dict[str, Any]:
        return {"weights": self.weights, "budget_tokens": self.constraints.budget,
                "constraints": self.constraints.to_json(),
                "best_measured": None if self.best_measured is None else
                {"run": self.best_measured[0], "weighted": self.best_measured[1]},
                "recommended": None if self.recommended is None else self.recommended.to_json(),
                "cheapest_equivalent": None if self.cheapest_equivalent is None
                else self.cheapest_equivalent.to_json(),
                "next_runs": [p.to_json() for p in self.next_runs],
                "max_expected_gain": self.max_gain, "warnings": self.warnings}


def best_measured(observations: list[Observation], weights: dict[str, float],
                  constraints: Constraints | None = None) -> tuple[str, float] | None:
    """The measured run with the best weighted score among those that meet ``constraints``."""
    c = constraints or Constraints()
    scored = [(o.run, float(weighted(o.scores, weights))) for o in observations
              if c.meets(o.scores) and (o.tokens is None or c.fits(o.tokens))]
    return max(scored, key=lambda x: x[1], default=None)


def suggest(model: ResponseModel, space: Space, weights: dict[str, float], sizes: dict[str, int],
            tokens_per_example: dict[str, float], epochs: float, budget: float | None = None,
            n_next: int = 2, measured: set[Any] | None = None, *, constraints: Constraints | None = None,
            training: TrainSettings | None = None) -> Suggestion:
    """Predict every candidate; recommend the best that meets the constraints; pick ``n_next`` runs
    by expected gain (never one whose expected gain is below :data:`MIN_GAIN`).

    ``budget`` is the older spelling of ``constraints.budget``.
    """
    cons = constraints or Constraints()
    if budget is not None and cons.budget is None:
        cons = Constraints(budget, dict(cons.floors))
    cands = space.candidates()
    feats = [features_of(c.recipes(), sizes) for c in cands]
    draws = model.draws(feats)
    runs = model.predictive(draws)
    w_draws, w_runs = weighted(draws, weights), weighted(runs, weights)  # [replicates, candidates]
    ok = np.ones(w_draws.shape, bool)  # the replicates in which each candidate reaches every floor
    for a, floor in cons.floors.items():
        ok &= draws[a] >= floor
    seen = measured if measured is not None else {o.features.key() for o in model.observations}
    best = best_measured(model.observations, weights, cons)
    # With no measured run meeting the constraints, any run that does improves on the worst measured.
    ref = best[1] if best else min((float(weighted(o.scores, weights)) for o in model.observations), default=0.0)
    preds = []
    for i, c in enumerate(cands):
        col = w_draws[:, i]
        abil = {a: (float(np.mean(draws[a][:, i])), *map(float, np.percentile(runs[a][:, i], [2.5, 97.5])))
                for a in model.abilities}
        lo, hi = np.percentile(w_runs[:, i], [2.5, 97.5])
        tokens = composition_tokens(c, sizes, tokens_per_example, epochs, training)
        preds.append(Prediction(
            c, tokens, float(np.mean(col)), float(lo), float(hi), abil,
            gain=float(np.mean(np.maximum(0.0, col - ref) * ok[:, i])), measured=feats[i].key() in seen,
            expected=tuple(map(float, np.percentile(col, [2.5, 97.5]))),  # type: ignore[arg-type]
            p_floors=float(np.mean(ok[:, i])),
            feasible=cons.fits(tokens) and all(abil[a][0] >= f for a, f in cons.floors.items()),
            p_beats=float(np.mean((col > ref) & ok[:, i]))))
    feasible = [p for p in preds if p.feasible]
    recommended = max(feasible, key=lambda p: p.mean, default=None)
    pool = sorted((p for p in preds if cons.fits(p.tokens) and not p.measured and p.gain >= MIN_GAIN),
                  key=lambda p: (-p.gain, p.tokens))
    cheapest = None
    if recommended is not None:
        # Indistinguishable: the replicates do not order the two reliably, or their expected scores
        # differ by less than one run's measurement error (a run of each could not tell them apart).
        r = cands.index(recommended.composition)
        noise = Z95 * math.sqrt(sum((w / sum(weights.values()) * model.models[a].noise) ** 2
                                    for a, w in weights.items() if w and model.models[a].kind == "law"))
        same = [p for j, p in enumerate(preds) if p.feasible and (
            np.percentile(w_draws[:, r] - w_draws[:, j], 2.5) <= 0.0 or recommended.mean - p.mean <= noise)]
        cheapest = min(same, key=lambda p: (p.tokens, -p.mean))
    return Suggestion(weights, best, recommended, pool[:n_next], preds, cons.budget, cons, cheapest,
                      list(model.warnings))
