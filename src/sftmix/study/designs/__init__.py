"""Designs: the questions a study asks, each a registered entry -- schema, expansion, report.

A study's ``designs:`` block names designs; each is validated by its entry's
``schema``, expanded into runs by its ``expand`` function (through the planner,
so work two designs share is planned once), checked against the rest of the study
by ``check``, and drawn in the report by ``report`` (a lazy ``"module:function"``
returning the design's report sections). The reference study's four -- scaling
(RQ1), mixed (RQ2), ratio (RQ3), strategies (RQ4) -- are one module each in this
package; a module added here registers itself (the registry imports the package's
modules on first use), and a design registered anywhere else is as good.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BeforeValidator, create_model

from sftmix.config import StrictModel
from sftmix.registry import Registry

if TYPE_CHECKING:
    from sftmix.study.config import ModelConfig, StudyConfig
    from sftmix.study.plan import Planner

# (location inside the design's block, message)
AddProblem = Callable[[tuple[Any, ...], str], None]


@dataclass(frozen=True)
class Design:
    name: str
    schema: type[StrictModel]
    # expand(planner, the design's validated block, model, seed, run-name suffix)
    expand: Callable[[Planner, Any, ModelConfig, int, str], None]
    check: Callable[[StudyConfig, Any, AddProblem], None] | None = None
    report: str | None = None  # "module:function": (results, paper) -> list of report sections
    rank: int = 100  # where its sections come in the report


DESIGNS: Registry[Design] = Registry("design", discover="sftmix.study.designs")


def _off(value: Any) -> Any:
    return None if value is False else value


# A block that ``false`` (or ``null``) switches off.
Off = BeforeValidator(_off)


def validate_designs(value: Any) -> dict[str, StrictModel]:
    """``designs:`` as written -> each design's validated block (designs switched off left out).

    A problem inside a block is reported at its own field (``designs.scaling.fractions[2]``).
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"a mapping of design names to their settings; designs: {', '.join(DESIGNS.names())}")
    unknown = [name for name in value if name not in DESIGNS]
    if unknown:
        raise ValueError(f"unknown design {unknown[0]!r}; available: {', '.join(DESIGNS.names())}")
    # One model with a field per design, so that pydantic reports each problem at its place.
    fields: dict[str, Any] = {name: (Annotated[DESIGNS.get(name).schema | None, Off], None) for name in value}
    model = create_model("Designs", __base__=StrictModel, **fields)
    validated = model.model_validate({k: ({} if v is True else v) for k, v in value.items()})
    return {name: block for name in value if (block := getattr(validated, name)) is not None}


def check_designs(study: StudyConfig, add: Callable[[tuple[Any, ...], str], None]) -> None:
    for name, block in study.designs.items():
        design = DESIGNS.get(name)
        if design.check is not None:
            design.check(study, block, lambda loc, msg, name=name: add(("designs", name, *loc), msg))


