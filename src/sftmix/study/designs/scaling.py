"""RQ1, scaling: each ability trained alone on each fraction of its data."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from sftmix.config import StrictModel
from sftmix.study.config import Fraction_
from sftmix.study.designs import DESIGNS, AddProblem, Design

if TYPE_CHECKING:
    from sftmix.study.config import ModelConfig, StudyConfig
    from sftmix.study.plan import Planner


class ScalingDesign(StrictModel):
    """Each ability alone at each fraction (``abilities``: a subset; default all)."""

    fractions: list[Fraction_] = Field(min_length=1)
    abilities: list[str] | None = None


def expand(pl: Planner, d: ScalingDesign, model: ModelConfig, seed: int, suffix: str) -> None:
    from sftmix.study.plan import Part, Recipe, fmt_amount

    for ability in d.abilities or list(pl.study.abilities):
        for f in d.fractions:
            stages = pl.chain(model, seed, [Recipe.of([Part(ability, f)], seed)])
            pl.run(f"scaling/{ability}/{fmt_amount(f)}/{suffix}", "scaling", model, seed, stages,
                   {"ability": ability, "fraction": f})


def check(study: StudyConfig, d: ScalingDesign, add: AddProblem) -> None:
    for i, a in enumerate(d.abilities or []):
        if a not in study.abilities:
            add(("abilities", i), study.unknown_ability(a))
    duplicate_fractions(d.fractions, add)


def duplicate_fractions(fractions: list[Any], add: AddProblem) -> None:
    if len(set(fractions)) != len(fractions):
        add(("fractions",), f"duplicate fractions in {fractions}")


DESIGNS.add("scaling", Design("scaling", ScalingDesign, expand, check,
                              report="sftmix.report.figures:scaling_sections", rank=1))
