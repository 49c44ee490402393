"""The training strategies, written once: each is a list of steps over ability names.

A strategy turns the abilities it is given -- which one of them is the *general*
ability is the study's to say -- and its options into steps; each step is one
full SFT stage that starts from the previous one's weights. A step takes whole
abilities at a fraction, and may replay a nested fraction ``k`` of the previous
step's data. The same steps become a study's runs (its ``strategies`` design),
``sftmix train``'s stages, and ``sftmix suggest``'s candidates. The reference
study's four:

* ``multi_task`` -- one stage on the union of all abilities;
* ``sequential`` -- one stage per ability in ``order`` (default: the abilities as
  given, the general one last);
* ``mixed_sequential`` -- the specialist abilities (all but the general one)
  together, then the general one;
* ``dmt`` -- dual-stage mixed fine-tuning: stage 1 as mixed sequential, stage 2 the
  general ability plus a nested, seeded fraction ``k`` of stage 1's data
  (k = 0 gives exactly mixed sequential's stage 2).

A new strategy is a function and one ``STRATEGIES.add`` line, here or in any module
imported before the study is read; studies, schedules and suggestions all see it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from sftmix.config import StrictModel, parse_amount
from sftmix.errors import ConfigError
from sftmix.registry import Registry


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
    """``steps(abilities, general, options)``: the stages of a run; ``general`` is the study's
    general ability, or None where it has none.

    ``on_by_default``: a study's ``strategies`` design runs it unless it says ``false``.
    ``coords``: the options that tell two runs of the strategy apart (DMT's ``k``); they
    name the run and become its design coordinates.
    """

    options: type[StrictModel]
    steps: Callable[[Sequence[str], str | None, Any], list[Step]]
    on_by_default: bool = False
    coords: tuple[str, ...] = ()


STRATEGIES: Registry[Strategy] = Registry("training strategy")


class NoOptions(StrictModel):
    pass


class SequentialOptions(StrictModel):
    order: list[str] | None = Field(None, min_length=1, description="default: the abilities as "
                                    "given, the general one last")


class DmtOptions(StrictModel):
    k: Annotated[float, BeforeValidator(parse_amount), Field(ge=0, le=1)]


def need(abilities: Sequence[str], names: Sequence[str], strategy: str) -> None:
    missing = [n for n in names if n not in abilities]
    if missing:
        raise ConfigError(f"strategy '{strategy}' needs abilities {missing}; the config has "
                          f"{sorted(abilities)}")


def specialists(abilities: Sequence[str], general: str | None, strategy: str) -> tuple[str, ...]:
    if general is None:
        raise ConfigError(f"strategy '{strategy}' needs a general ability (the study's 'general', "
                          f"by default the ability named 'general'); the config has {sorted(abilities)}")
    need(abilities, [general], strategy)
    names = tuple(n for n in abilities if n != general)
    if not names:
        raise ConfigError(f"strategy '{strategy}' needs at least one specialist ability besides "
                          f"'{general}'; the config has {sorted(abilities)}")
    return names


def multi_task(abilities: Sequence[str], general: str | None, options: NoOptions) -> list[Step]:
    return [Step("multi_task", tuple(Take((a,)) for a in abilities))]


def sequential(abilities: Sequence[str], general: str | None, options: SequentialOptions) -> list[Step]:
    order = options.order or [a for a in abilities if a != general] + ([general] if general else [])
    need(abilities, order, "sequential")
    return [Step(a, (Take((a,)),)) for a in order]


def mixed_sequential(abilities: Sequence[str], general: str | None, options: NoOptions) -> list[Step]:
    spec = specialists(abilities, general, "mixed_sequential")
    assert general is not None
    return [Step("specialist", (Take(spec),)), Step(general, (Take((general,)),))]


def dmt(abilities: Sequence[str], general: str | None, options: DmtOptions) -> list[Step]:
    spec = specialists(abilities, general, "dmt")
    assert general is not None
    # Stage 1 is the same stage as mixed sequential's; stage 2 replays a nested
    # fraction k of it, so a larger k contains a smaller one.
    return [Step("specialist", (Take(spec),)),
            Step(f"{general}_replay", (Take((general,)),), replay=options.k)]


STRATEGIES.add("multi_task", Strategy(NoOptions, multi_task, on_by_default=True))
STRATEGIES.add("sequential", Strategy(SequentialOptions, sequential, on_by_default=True))
STRATEGIES.add("mixed_sequential", Strategy(NoOptions, mixed_sequential, on_by_default=True))
STRATEGIES.add("dmt", Strategy(DmtOptions, dmt, coords=("k",)))
