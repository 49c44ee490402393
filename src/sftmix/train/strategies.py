"""The training strategies, written once: each is a list of steps over ability names.

A strategy turns the abilities it is given (and its options) into steps; each
step is one full SFT stage that starts from the previous one's weights. A step
takes whole abilities at a fraction, and may replay a nested fraction ``k`` of
the previous step's data. ``sftmix train`` (:mod:`sftmix.train.schedule`) turns
steps into stages over data files; a study (:mod:`sftmix.study.plan`) into
recipes of its abilities' sources. The reference study's four:

* ``multi_task`` -- one stage on the union of all abilities;
* ``sequential`` -- one stage per ability in ``order`` (default code, maths, general);
* ``mixed_sequential`` -- the specialist abilities (all but ``general``) together,
  then the general one;
* ``dmt`` -- dual-stage mixed fine-tuning: stage 1 as mixed sequential, stage 2 the
  general ability plus a nested, seeded fraction ``k`` of stage 1's data
  (k = 0 gives exactly mixed sequential's stage 2).

A new strategy is a function and one ``STRATEGIES.add`` line here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from sftmix.config import StrictModel, parse_amount
from sftmix.errors import ConfigError
from sftmix.registry import Registry

GENERAL = "general"


@dataclass(frozen=True)
class Take:
    """Part of a step's data: the abilities' data pooled, at ``fraction``."""

    abilities: tuple[str, ...]
    fraction: float = 1.0


@dataclass(frozen=True)
class Step:
    name: str
    data: tuple[Take, ...]
    replay: float | None = None  # a nested fraction of the previous step's data

    @property
    def abilities(self) -> list[str]:
        return [a for take in self.data for a in take.abilities]


@dataclass(frozen=True)
class Strategy:
    options: type[StrictModel]
    steps: Callable[[Sequence[str], Any], list[Step]]


STRATEGIES: Registry[Strategy] = Registry("training strategy")


class NoOptions(StrictModel):
    pass


class SequentialOptions(StrictModel):
    order: list[str] = Field(default_factory=lambda: ["code", "maths", "general"], min_length=1)


class MixedSequentialOptions(StrictModel):
    general: str = GENERAL


class DmtOptions(StrictModel):
    k: Annotated[float, BeforeValidator(parse_amount), Field(ge=0, le=1)]
    general: str = GENERAL
    seed: int = 0


def need(abilities: Sequence[str], names: Sequence[str], strategy: str) -> None:
    missing = [n for n in names if n not in abilities]
    if missing:
        raise ConfigError(f"strategy '{strategy}' needs abilities {missing}; the config has "
                          f"{sorted(abilities)}")


def specialists(abilities: Sequence[str], general: str, strategy: str) -> tuple[str, ...]:
    need(abilities, [general], strategy)
    names = tuple(n for n in abilities if n != general)
    if not names:
        raise ConfigError(f"strategy '{strategy}' needs at least one specialist ability besides "
                          f"'{general}'; the config has {sorted(abilities)}")
    return names


def multi_task(abilities: Sequence[str], options: NoOptions) -> list[Step]:
    return [Step("multi_task", tuple(Take((a,)) for a in abilities))]


def sequential(abilities: Sequence[str], options: SequentialOptions) -> list[Step]:
    need(abilities, options.order, "sequential")
    return [Step(a, (Take((a,)),)) for a in options.order]


def mixed_sequential(abilities: Sequence[str], options: MixedSequentialOptions) -> list[Step]:
    spec = specialists(abilities, options.general, "mixed_sequential")
    return [Step("specialist", (Take(spec),)), Step(options.general, (Take((options.general,)),))]


def dmt(abilities: Sequence[str], options: DmtOptions) -> list[Step]:
    spec = specialists(abilities, options.general, "dmt")
    # Stage 1 is the same stage as mixed sequential's; stage 2 replays a nested
    # fraction k of it, so a larger k contains a smaller one.
    return [Step("specialist", (Take(spec),)),
            Step(f"{options.general}_replay", (Take((options.general,)),), replay=options.k)]


STRATEGIES.add("multi_task", Strategy(NoOptions, multi_task))
STRATEGIES.add("sequential", Strategy(SequentialOptions, sequential))
STRATEGIES.add("mixed_sequential", Strategy(MixedSequentialOptions, mixed_sequential))
STRATEGIES.add("dmt", Strategy(DmtOptions, dmt))
