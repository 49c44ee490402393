"""RQ3, amount or ratio: the specialist data (every ability but the general one) against the general.

a: all the general data + the specialists scaled by k; b: all the specialist data +
the general scaled by k; c: the general fixed at ``general_fraction`` + the
specialists scaled by k.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BeforeValidator, Field

from sftmix.config import StrictModel, parse_amount
from sftmix.study.config import Fraction_
from sftmix.study.designs import DESIGNS, AddProblem, Design

if TYPE_CHECKING:
    from sftmix.study.config import ModelConfig, StudyConfig
    from sftmix.study.plan import Planner


class RatioDesign(StrictModel):
    """Setups a, b and c at each k (see the module)."""

    setups: list[Literal["a", "b", "c"]] = Field(default_factory=lambda: ["a", "b", "c"], min_length=1)
    ks: list[Annotated[float, BeforeValidator(parse_amount), Field(gt=0, le=1)]] = Field(min_length=1)
    general_fraction: Fraction_ = 1 / 64


def expand(pl: Planner, d: RatioDesign, model: ModelConfig, seed: int, suffix: str) -> None:
    from sftmix.study.plan import Part, Recipe, fmt_amount

    general, spec = pl.study.general, pl.study.specialist
    assert general is not None
    for setup in d.setups:
        for k in d.ks:
            general_fraction, spec_fraction = {"a": (1.0, k), "b": (k, 1.0), "c": (d.general_fraction, k)}[setup]
            parts = [Part(general, general_fraction), *(Part(a, spec_fraction) for a in spec)]
            stages = pl.chain(model, seed, [Recipe.of(parts, seed)])
            pl.run(f"ratio/{setup}/{fmt_amount(k)}/{suffix}", "ratio", model, seed, stages,
                   {"setup": setup, "k": k})


def check(study: StudyConfig, d: RatioDesign, add: AddProblem) -> None:
    if len(study.abilities) < 2:
        add((), "needs at least two abilities")
    if study.general is None:
        add((), "needs a general ability (the study's 'general', by default the ability named 'general')")


DESIGNS.add("ratio", Design("ratio", RatioDesign, expand, check,
                            report="sftmix.report.figures:ratio_sections", rank=3))
