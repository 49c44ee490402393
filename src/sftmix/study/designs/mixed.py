"""RQ2, mixing: all abilities together, each at the same fraction of its data."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from sftmix.config import StrictModel
from sftmix.study.config import Fraction_
from sftmix.study.designs import DESIGNS, AddProblem, Design
from sftmix.study.designs.scaling import duplicate_fractions

if TYPE_CHECKING:
    from sftmix.study.config import ModelConfig, StudyConfig
    from sftmix.study.plan import Planner


class MixedDesign(StrictModel):
    """All abilities mixed, each at the same fraction."""

    fractions: list[Fraction_] = Field(min_length=1)


def expand(pl: Planner, d: MixedDesign, model: ModelConfig, seed: int, suffix: str) -> None:
    from sftmix.study.plan import Part, Recipe, fmt_amount

    for f in d.fractions:
        parts = [Part(a, f) for a in pl.study.abilities]
        stages = pl.chain(model, seed, [Recipe.of(parts, seed)])
        pl.run(f"mixed/{fmt_amount(f)}/{suffix}", "mixed", model, seed, stages, {"fraction": f})


def check(study: StudyConfig, d: MixedDesign, add: AddProblem) -> None:
    if len(study.abilities) < 2:
        add((), "needs at least two abilities")
    duplicate_fractions(d.fractions, add)


DESIGNS.add("mixed", Design("mixed", MixedDesign, expand, check,
                            report="sftmix.report.figures:mixed_sections", rank=2))
