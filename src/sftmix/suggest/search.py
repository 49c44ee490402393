"""The search space, the recommendation for a weighting, and the runs worth running next.

Candidates are multi-task mixtures over a grid of fractions per ability and DMT
runs over a grid of k (with every source at its full amount, as in the
reference study). Each candidate's weighted score is ``sum w_a s_a / sum w_a``
in the abilities' own metric units, drawn from the response model's bootstrap
replicates; the recommendation is the candidate with the best mean, within the
token budget, with the 2.5-97.5 percentile interval of the replicates.

The next runs are those with the largest *expected gain*: the mean over
replicates of ``max(0, W(candidate) - best measured weighted score)`` -- the
expected improvement on what the runs already show. Its maximum is what the
optimiser compares with its threshold.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sftmix.results.weights import weighted
from sftmix.suggest.composition import Composition, features_of
from sftmix.suggest.model import Observation, ResponseModel

DEFAULT_FRACTIONS = (1 / 8, 1 / 4, 1 / 2, 1.0)
DEFAULT_KS = (0.0, 1 / 32, 1 / 8, 1 / 4, 1 / 2, 1.0)


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
                       epochs: float) -> float:
    """Training tokens of a composition trained from scratch (every stage once)."""
    return sum(c * tokens_per_example[a] * epochs for recipe in comp.recipes()
               for a, c in recipe.counts(sizes).items())


@dataclass
class Prediction:
    composition: Composition
    tokens: float
    mean: float
    low: float
    high: float
    abilities: dict[str, tuple[float, float, float]]  # ability -> (mean, low, high)
    gain: float = 0.0  # expected improvement over the best measured run
    measured: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"run": self.composition.name, "composition": self.composition.to_json(),
                "describe": self.composition.describe(), "tokens": self.tokens,
                "weighted": {"mean": self.mean, "low": self.low, "high": self.high},
                "abilities": {a: dict(zip(("mean", "low", "high"), v, strict=True))
                              for a, v in self.abilities.items()},
                "expected_gain": self.gain, "measured": self.measured}


@dataclass
class Suggestion:
    weights: dict[str, float]
    best_measured: tuple[str, float] | None
    recommended: Prediction | None
    next_runs: list[Prediction]
    predictions: list[Prediction] = field(default_factory=list)
    budget: float | None = None

    @property
    def max_gain(self) -> float:
        return max((p.gain for p in self.predictions if not p.measured), default=0.0)

    def to_json(self) -> dict[str, Any]:
        return {"weights": self.weights, "budget_tokens": self.budget,
                "best_measured": None if self.best_measured is None else
                {"run": self.best_measured[0], "weighted": self.best_measured[1]},
                "recommended": None if self.recommended is None else self.recommended.to_json(),
                "next_runs": [p.to_json() for p in self.next_runs],
                "max_expected_gain": self.max_gain}


def best_measured(observations: list[Observation], weights: dict[str, float]) -> tuple[str, float] | None:
    if not observations:
        return None
    scored = [(o.run, float(weighted(o.scores, weights))) for o in observations]
    return max(scored, key=lambda x: x[1])


def suggest(model: ResponseModel, space: Space, weights: dict[str, float], sizes: dict[str, int],
            tokens_per_example: dict[str, float], epochs: float, budget: float | None = None,
            n_next: int = 2, measured: set[Any] | None = None) -> Suggestion:
    """Predict every candidate; recommend the best within ``budget``; pick ``n_next`` runs by expected gain."""
    cands = space.candidates()
    feats = [features_of(c.recipes(), sizes) for c in cands]
    draws = model.draws(feats)
    w_draws = weighted(draws, weights)  # [replicates, candidates]
    seen = measured if measured is not None else {o.features.key() for o in model.observations}
    best = best_measured(model.observations, weights)
    preds = []
    for i, c in enumerate(cands):
        col = w_draws[:, i]
        gain = float(np.mean(np.maximum(0.0, col - best[1]))) if best else float(np.std(col))
        abil = {a: (float(np.mean(draws[a][:, i])), *map(float, np.percentile(draws[a][:, i], [2.5, 97.5])))
                for a in model.abilities}
        lo, hi = np.percentile(col, [2.5, 97.5])
        preds.append(Prediction(c, composition_tokens(c, sizes, tokens_per_example, epochs),
                                float(np.mean(col)), float(lo), float(hi), abil, gain,  # type: ignore[arg-type]
                                feats[i].key() in seen))
    affordable = [p for p in preds if budget is None or p.tokens <= budget]
    recommended = max(affordable, key=lambda p: p.mean, default=None)
    pool = sorted((p for p in affordable if not p.measured), key=lambda p: (-p.gain, p.tokens))
    return Suggestion(weights, best, recommended, pool[:n_next], preds, budget)
