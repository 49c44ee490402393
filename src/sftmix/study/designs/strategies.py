"""RQ4, training strategies: every strategy of ``sftmix.train.strategies``, with each ability's
full-data run as its baseline.

```yaml
strategies:
  baselines: true                      # each ability alone on all its data (default)
  multi_task: true                     # strategies on by default need not be written ...
  sequential: {order: [code, maths, general]}
  mixed_sequential: false              # ... and are switched off with false
  dmt: {ks: [0, 1/256, 1]}             # a list under an option's plural: one run per value
```

A strategy's block is its options (``{dmt: {k: 1/8}}`` is one run) or ``true`` for
its defaults. Any strategy registered in ``STRATEGIES`` can be named here.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict, PrivateAttr, ValidationError, model_validator

from sftmix.config import FieldError, StrictModel
from sftmix.errors import ConfigError
from sftmix.study.designs import DESIGNS, AddProblem, Design
from sftmix.train.strategies import STRATEGIES

if TYPE_CHECKING:
    from sftmix.study.config import ModelConfig, StudyConfig
    from sftmix.study.plan import Planner


class StrategiesDesign(StrictModel):
    """``baselines`` and one block per strategy (the extra fields, checked against STRATEGIES)."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, Any]  # typed extras: each validated (pydantic >= 2.7 reads this annotation)

    baselines: bool = True
    # Strategy name -> the options of each of its runs (validated), in the registry's order.
    _runs: dict[str, list[StrictModel]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _strategies(self) -> StrategiesDesign:
        written = self.__pydantic_extra__ or {}
        for name in written:
            if name not in STRATEGIES:
                raise FieldError((name,), name, f"a training strategy; available: {', '.join(STRATEGIES.names())}")
        for name in STRATEGIES.in_order():
            block = written.get(name, True if STRATEGIES.get(name).on_by_default else None)
            if block is not None and block is not False:
                self._runs[name] = _options(name, {} if block is True else block)
        return self

    def runs(self) -> Iterator[tuple[str, StrictModel]]:
        """(strategy, options) of every run, strategies in the registry's order."""
        for name, options in self._runs.items():
            for one in options:
                yield name, one

    def implied(self) -> list[str]:
        """The parts that run without being written (on by default)."""
        written = self.model_fields_set | set(self.__pydantic_extra__ or {})
        parts = ["baselines"] if self.baselines and "baselines" not in written else []
        return parts + [n for n in self._runs if n not in written]


def _options(name: str, block: Any) -> list[StrictModel]:
    """A strategy's block -> the options of each run: a list under the plural of an option
    (``ks: [...]`` for ``k``) gives one run per value."""
    model = STRATEGIES.get(name).options
    if not isinstance(block, dict):
        raise FieldError((name,), block, "true, false, or a mapping of the strategy's options")
    sweeps = {key[:-1]: values for key, values in block.items()
              if key.endswith("s") and key[:-1] in model.model_fields and key not in model.model_fields}
    for option, values in sweeps.items():
        if not isinstance(values, list) or not values:
            raise FieldError((name, option + "s"), values, f"a non-empty list of values of '{option}'")
        if len(set(map(str, values))) != len(values):
            raise FieldError((name, option + "s"), values, f"each value of '{option}' once")
    fixed = {k: v for k, v in block.items() if k[:-1] not in sweeps or k in model.model_fields}
    runs = []
    for combo in itertools.product(*(enumerate(v) for v in sweeps.values())):
        values = {**fixed, **{o: v for o, (_, v) in zip(sweeps, combo, strict=True)}}
        try:
            runs.append(model.model_validate(values))
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            loc = tuple(err["loc"])
            if loc and loc[0] in sweeps:  # the value's place in the list it was written in
                index = dict(zip(sweeps, (i for i, _ in combo), strict=True))[str(loc[0])]
                loc = (f"{loc[0]}s", index, *loc[1:])
            raise FieldError((name, *loc), err.get("input"), err["msg"]) from None
    return runs


def display(name: str) -> str:
    """A strategy's name in run names and coordinates (``mixed_sequential`` -> ``mixed-sequential``)."""
    return name.replace("_", "-")


def expand(pl: Planner, d: StrategiesDesign, model: ModelConfig, seed: int, suffix: str) -> None:
    from sftmix.study.plan import Part, Recipe, fmt_amount, recipes_of

    study = pl.study
    abilities = list(study.abilities)
    if d.baselines:
        for ability in abilities:
            pl.run(f"strategies/{ability}-only/{suffix}", "strategies", model, seed,
                   pl.chain(model, seed, [Recipe.of([Part(ability, 1.0)], seed)]),
                   {"strategy": f"{ability}-only"})
    for name, options in d.runs():
        strategy = STRATEGIES.get(name)
        coords = {c: getattr(options, c) for c in strategy.coords}
        steps = strategy.steps(abilities, study.general, options)
        run = f"strategies/{display(name)}" + "".join(f"/{fmt_amount(v)}" for v in coords.values())
        pl.run(f"{run}/{suffix}", "strategies", model, seed,
               pl.chain(model, seed, recipes_of(steps, seed)), {"strategy": display(name), **coords})


def check(study: StudyConfig, d: StrategiesDesign, add: AddProblem) -> None:
    if len(study.abilities) < 2:
        add((), "needs at least two abilities")
        return
    for name, options in d.runs():
        order = getattr(options, "order", None) or []
        unknown = [(i, a) for i, a in enumerate(order) if a not in study.abilities]
        for i, a in unknown:
            add((name, "order", i), study.unknown_ability(a))
        if unknown:
            continue
        try:
            STRATEGIES.get(name).steps(list(study.abilities), study.general, options)
        except ConfigError as exc:
            add((name,), str(exc))
            continue
        if len(set(order)) != len(order):
            add((name, "order"), f"an ability appears twice in {order}")


DESIGNS.add("strategies", Design("strategies", StrategiesDesign, expand, check,
                                 report="sftmix.report.strategy_figures:strategies_sections", rank=4))
