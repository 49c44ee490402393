"""What a run trained on, in the terms the response model speaks: examples per ability and stage.

A *composition* is a point of the search space: a training strategy of
:mod:`sftmix.train.strategies` (its options, DMT's ``k``) with each ability's
source taken at a fraction. Its stages are the strategy's steps with those
fractions applied, so a strategy is described once: here it becomes recipes
(:meth:`Composition.recipes`, for predictions and token counts) and a free-form
run of the study file (:meth:`Composition.run_config`), which the study
machinery plans, trains, resumes and records.

*Features* describe any completed run, of any design, by the examples of each
ability in its final stage (``last``, replayed data included) and in the stages
before it (``prior``): what the study recorded that its stages trained on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from sftmix.study.config import RunConfig
from sftmix.study.plan import Recipe, recipes_of
from sftmix.study.schedule import stage_configs
from sftmix.train.strategies import STRATEGIES, Step

MULTI_TASK = "multi_task"
DMT = "dmt"


@dataclass(frozen=True)
class Features:
    """Examples of each ability in the final stage and in the stages before it."""

    last: dict[str, float]
    prior: dict[str, float]

    def total_last(self) -> float:
        return sum(self.last.values())

    def position(self, abilities: list[str]) -> list[float]:
        """Coordinates for distances between runs: log2(1 + examples) of each ability, last and before."""
        return ([math.log2(1.0 + self.last.get(a, 0.0)) for a in abilities]
                + [math.log2(1.0 + self.prior.get(a, 0.0)) for a in abilities])

    def key(self) -> tuple[Any, ...]:
        return (tuple(sorted((a, round(v)) for a, v in self.last.items())),
                tuple(sorted((a, round(v)) for a, v in self.prior.items())))


@dataclass(frozen=True)
class Composition:
    """A candidate: the strategy, the fraction of each ability's source, and DMT's k.

    ``general`` is the study's general ability (what a strategy such as DMT trains last).
    """

    strategy: str
    fractions: tuple[tuple[str, float], ...]
    k: float | None = None
    general: str | None = None
    label: str = field(default="", compare=False)

    @staticmethod
    def multi_task(fractions: dict[str, float], general: str | None = None) -> Composition:
        return Composition(MULTI_TASK, tuple(sorted(fractions.items())), general=general)

    @staticmethod
    def dmt(fractions: dict[str, float], k: float, general: str) -> Composition:
        return Composition(DMT, tuple(sorted(fractions.items())), k, general)

    @property
    def amounts(self) -> dict[str, float]:
        return dict(self.fractions)

    @property
    def name(self) -> str:
        """A run name: ``mt-code1_2-general1-maths1_8``, ``dmt-k1_32-code1-general1-maths1``."""
        parts = [f"{a}{fmt_fraction(f, '_')}" for a, f in self.fractions]
        if self.strategy == MULTI_TASK:
            head = "mt"
        elif self.k is not None:
            head = f"{self.strategy}-k{fmt_fraction(self.k, '_')}"
        else:
            head = self.strategy
        return "-".join([head, *parts])

    def describe(self) -> str:
        amounts = ", ".join(f"{a} {fmt_fraction(f)}" for a, f in self.fractions)
        if self.strategy == MULTI_TASK:
            return f"multi-task: {amounts}"
        if self.strategy == DMT:
            return f"DMT k={fmt_fraction(self.k or 0.0)}: {amounts}"
        return f"{self.strategy}: {amounts}"

    def steps(self) -> list[Step]:
        """The strategy's steps over the abilities this composition takes any data of."""
        strategy = STRATEGIES.get(self.strategy)
        options = strategy.options.model_validate({} if self.k is None else {"k": self.k})
        abilities = [a for a, f in self.fractions if f > 0 or a == self.general]
        return strategy.steps(abilities, self.general, options)

    def recipes(self, seed: int = 0) -> list[Recipe]:
        return recipes_of(self.steps(), seed, self.amounts)

    def run_config(self, prefix: str = "opt-") -> RunConfig:
        """The free-form run of a study file that trains this composition."""
        return RunConfig(name=prefix + self.name, stages=stage_configs(self.steps(), self.amounts))

    def to_json(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "fractions": dict(self.fractions), "k": self.k,
                "general": self.general}

    @staticmethod
    def from_json(d: dict[str, Any]) -> Composition:
        return Composition(d["strategy"], tuple(sorted((str(a), float(f)) for a, f in d["fractions"].items())),
                           None if d.get("k") is None else float(d["k"]), d.get("general"))


def fmt_fraction(x: float, slash: str = "/") -> str:
    """1 -> '1', 0.125 -> '1/8', 0.3 -> '0.3' (with ``slash='_'`` for names)."""
    if x == 0 or x >= 1:
        return f"{x:g}"
    frac = Fraction(x).limit_denominator(4096)
    if abs(float(frac) - x) < 1e-12:
        return f"{frac.numerator}{slash}{frac.denominator}"
    return f"{x:g}".replace(".", "p") if slash == "_" else f"{x:g}"


def features_of_stages(stages: list[dict[str, int]], abilities: list[str]) -> Features:
    """The features of a chain of stages, given each stage's examples per ability."""
    last = dict.fromkeys(abilities, 0.0)
    prior = dict.fromkeys(abilities, 0.0)
    for i, counts in enumerate(stages):
        target = last if i == len(stages) - 1 else prior
        for ability, c in counts.items():
            target[ability] = target.get(ability, 0.0) + c
    return Features(last, prior)


def features_of(recipes: list[Recipe], sizes: dict[str, int]) -> Features:
    """The features of a chain of recipes, given each ability's source size."""
    return features_of_stages([r.counts(sizes) for r in recipes], list(sizes))
