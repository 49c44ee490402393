"""What a run trained on, in the terms the response model speaks: examples per ability and stage.

A *composition* is a point of the search space: a multi-task mixture (one stage,
a fraction of each ability's source) or DMT (stage 1: the specialist abilities
at their fractions; stage 2: the general ability at its fraction plus a
fraction ``k`` of stage 1's data). It becomes a free-form run of the study file
(``runs:``), so the study machinery plans, trains, resumes and records it.

*Features* describe any completed run, of any design, by the examples of each
ability in its final stage (``last``, replayed data included) and in the stages
before it (``prior``): that is what the planner's recipes say it trained on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from sftmix.data.sampling import amount_count
from sftmix.study.config import GENERAL, DataEntry, ReplayConfig, RunConfig, StageConfig
from sftmix.study.plan import Recipe

MULTI_TASK = "multi-task"
DMT = "dmt"


@dataclass(frozen=True)
class Features:
    """Examples of each ability in the final stage and in the stages before it."""

    last: dict[str, float]
    prior: dict[str, float]

    def total_last(self) -> float:
        return sum(self.last.values())

    def key(self) -> tuple[Any, ...]:
        return (tuple(sorted((a, round(v)) for a, v in self.last.items())),
                tuple(sorted((a, round(v)) for a, v in self.prior.items())))


@dataclass(frozen=True)
class Composition:
    """A candidate: the strategy, the fraction of each ability's source, and DMT's k."""

    strategy: str
    fractions: tuple[tuple[str, float], ...]
    k: float | None = None
    label: str = field(default="", compare=False)

    @staticmethod
    def multi_task(fractions: dict[str, float]) -> Composition:
        return Composition(MULTI_TASK, tuple(sorted(fractions.items())))

    @staticmethod
    def dmt(fractions: dict[str, float], k: float) -> Composition:
        return Composition(DMT, tuple(sorted(fractions.items())), k)

    @property
    def amounts(self) -> dict[str, float]:
        return dict(self.fractions)

    @property
    def name(self) -> str:
        """A run name: ``mt-code1_2-general1-maths1_8``, ``dmt-k1_32-code1-general1-maths1``."""
        parts = [f"{a}{fmt_fraction(f, '_')}" for a, f in self.fractions]
        head = "mt" if self.strategy == MULTI_TASK else f"dmt-k{fmt_fraction(self.k or 0.0, '_')}"
        return "-".join([head, *parts])

    def describe(self) -> str:
        amounts = ", ".join(f"{a} {fmt_fraction(f)}" for a, f in self.fractions)
        if self.strategy == MULTI_TASK:
            return f"multi-task: {amounts}"
        return f"DMT k={fmt_fraction(self.k or 0.0)}: {amounts}"

    def recipes(self, seed: int = 0) -> list[Recipe]:
        from sftmix.study.plan import Part

        amounts = self.amounts
        if self.strategy == MULTI_TASK:
            return [Recipe.of([Part(a, f) for a, f in amounts.items() if f > 0], seed)]
        specialist = Recipe.of([Part(a, f) for a, f in amounts.items() if a != GENERAL and f > 0], seed)
        general = Recipe.of([Part(GENERAL, amounts.get(GENERAL, 1.0))], seed, (specialist, self.k or 0.0))
        return [specialist, general]

    def run_config(self, prefix: str = "opt-") -> RunConfig:
        """The free-form run of a study file that trains this composition."""
        amounts = self.amounts
        if self.strategy == MULTI_TASK:
            data = [DataEntry(ability=a, fraction=f) for a, f in amounts.items() if f > 0]
            return RunConfig(name=prefix + self.name, stages=[StageConfig(name="mix", data=data)])
        spec = [DataEntry(ability=a, fraction=f) for a, f in amounts.items() if a != GENERAL and f > 0]
        general = [DataEntry(ability=GENERAL, fraction=amounts.get(GENERAL, 1.0))]
        return RunConfig(name=prefix + self.name, stages=[
            StageConfig(name="specialist", data=spec),
            StageConfig(name="general", data=general,
                        replay=ReplayConfig(stage="specialist", fraction=self.k or 0.0)),
        ])

    def to_json(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "fractions": dict(self.fractions), "k": self.k}

    @staticmethod
    def from_json(d: dict[str, Any]) -> Composition:
        return Composition(d["strategy"], tuple(sorted((str(a), float(f)) for a, f in d["fractions"].items())),
                           None if d.get("k") is None else float(d["k"]))


def fmt_fraction(x: float, slash: str = "/") -> str:
    """1 -> '1', 0.125 -> '1/8', 0.3 -> '0.3' (with ``slash='_'`` for names)."""
    if x == 0 or x >= 1:
        return f"{x:g}"
    frac = Fraction(x).limit_denominator(4096)
    if abs(float(frac) - x) < 1e-12:
        return f"{frac.numerator}{slash}{frac.denominator}"
    return f"{x:g}".replace(".", "p") if slash == "_" else f"{x:g}"


def recipe_counts(recipe: Recipe, sizes: dict[str, int]) -> dict[str, float]:
    """Examples of each ability a recipe holds (its replay included)."""
    counts: dict[str, float] = {}
    for part in recipe.parts:
        n = sizes[part.ability]
        counts[part.ability] = counts.get(part.ability, 0.0) + amount_count(n, part.amount, part.kind)  # type: ignore[arg-type]
    if recipe.replay is not None:
        replayed, k = recipe.replay
        for ability, c in recipe_counts(replayed, sizes).items():
            counts[ability] = counts.get(ability, 0.0) + (amount_count(int(c), k) if c else 0)
    return counts


def features_of(recipes: list[Recipe], sizes: dict[str, int]) -> Features:
    """The features of a chain of stages (the last recipe is the final stage)."""
    abilities = list(sizes)
    last = dict.fromkeys(abilities, 0.0)
    prior = dict.fromkeys(abilities, 0.0)
    for i, recipe in enumerate(recipes):
        target = last if i == len(recipes) - 1 else prior
        for ability, c in recipe_counts(recipe, sizes).items():
            target[ability] = target.get(ability, 0.0) + c
    return Features(last, prior)
