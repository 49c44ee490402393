"""What a recommendation must respect: a token budget and floors on abilities; and scenarios.

A user's question is rarely "what is best with all the data" but "what is best
for 30% of the compute" or "the most general ability while keeping maths above
0.4". :class:`Constraints` holds both: ``budget`` caps the training tokens of
the recommended composition (trained from scratch, every stage once), and
``floors`` are scores an ability must reach. A *scenario* is a weighting with
its constraints, written on one line for the suggest bench::

    weights=maths=1,code=1,general=1;budget=0.3;floor=maths=0.5

where a budget without a unit is a fraction of the all-data composition's
training tokens (every source once, multi-task) and one with a unit (``5M``) is
a number of tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sftmix.errors import SftmixError
from sftmix.results.weights import parse_weights

SCALE = {"k": 1e3, "m": 1e6, "g": 1e9, "b": 1e9}


def parse_tokens(text: str | None, flag: str = "--budget") -> float | None:
    """``5000000``, ``5M``, ``2.5k`` -> a number of tokens > 0 (finite); ``None`` stays ``None``."""
    if text is None:
        return None
    t = text.strip().lower()
    try:
        value = float(t[:-1]) * SCALE[t[-1]] if t and t[-1] in SCALE else float(t)
    except ValueError:
        raise SftmixError(f"{flag}: expected a number of tokens such as 5000000 or 5M, found {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise SftmixError(f"{flag}: expected a finite number of tokens > 0 (such as 5M), found {text!r}")
    return value


def parse_floors(texts: list[str] | None, abilities: list[str], flag: str = "--floor") -> dict[str, float]:
    """``["maths=0.5", "code=0.3"]`` (or ``"maths=0.5,code=0.3"`` in one) -> ability -> floor."""
    floors: dict[str, float] = {}
    for text in texts or []:
        for part in text.split(","):
            name, sep, value = part.partition("=")
            name = name.strip()
            if not sep or name not in abilities:
                raise SftmixError(f"{flag}: {part.strip()!r} is not '<ability>=<score>' with one of the "
                                  f"study's abilities ({', '.join(abilities)}); e.g. {abilities[0]}=0.5")
            if name in floors:
                raise SftmixError(f"{flag}: {name!r} has two floors; give each ability once")
            try:
                floors[name] = float(value)
            except ValueError:
                floors[name] = math.nan
            if not math.isfinite(floors[name]):
                raise SftmixError(f"{flag}: the floor of {name!r} must be a finite scaled score "
                                  f"(0 to 1: an accuracy is itself, MT-Bench's s is (s - 1) / 9), "
                                  f"found {value.strip()!r}")
    return floors


@dataclass(frozen=True)
class Constraints:
    """The recommended composition costs at most ``budget`` tokens and reaches every floor."""

    budget: float | None = None
    floors: dict[str, float] = field(default_factory=dict)

    def fits(self, tokens: float) -> bool:
        return self.budget is None or tokens <= self.budget

    def meets(self, scores: dict[str, Any]) -> bool:
        """Whether measured (or predicted mean) scores reach every floor."""
        return all(float(scores[a]) >= f for a, f in self.floors.items())

    def describe(self) -> str:
        parts = [] if self.budget is None else [f"at most {self.budget / 1e6:.2f}M training tokens"]
        parts += [f"{a} >= {f:g}" for a, f in self.floors.items()]
        return ", ".join(parts) or "none"

    def to_json(self) -> dict[str, Any]:
        return {"budget_tokens": self.budget, "floors": self.floors}


@dataclass(frozen=True)
class Scenario:
    """A weighting with its constraints; ``budget`` is a fraction of the all-data cost, or tokens."""

    name: str
    weights: dict[str, float]
    budget_fraction: float | None = None
    budget_tokens: float | None = None
    floors: dict[str, float] = field(default_factory=dict)

    def constraints(self, all_data_tokens: float) -> Constraints:
        budget = self.budget_tokens
        if self.budget_fraction is not None:
            budget = self.budget_fraction * all_data_tokens
        return Constraints(budget, dict(self.floors))

    @property
    def constrained(self) -> bool:
        return self.budget_fraction is not None or self.budget_tokens is not None or bool(self.floors)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "weights": self.weights, "budget_fraction": self.budget_fraction,
                "budget_tokens": self.budget_tokens, "floors": self.floors}


def parse_scenario(text: str, abilities: list[str], flag: str = "--scenario") -> Scenario:
    """``weights=maths=3,code=1;budget=0.3;floor=maths=0.5;name=cheap`` -> a :class:`Scenario`."""
    fields: dict[str, str] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in ("weights", "budget", "floor", "name"):
            raise SftmixError(f"{flag}: {part.strip()!r} in {text!r} is not one of weights=..., budget=..., "
                              "floor=..., name=...; e.g. \"weights=maths=3,code=1,general=1;budget=0.3;"
                              "floor=general=0.5\"")
        if key in fields:
            raise SftmixError(f"{flag}: {key!r} is given twice in {text!r}")
        fields[key] = value.strip()
    weights = parse_weights(fields.get("weights"), abilities, f"{flag} weights")
    floors = parse_floors([fields["floor"]] if "floor" in fields else [], abilities, f"{flag} floor")
    fraction = tokens = None
    if "budget" in fields:
        raw = fields["budget"]
        if raw and raw[-1].lower() in SCALE:
            tokens = parse_tokens(raw, f"{flag} budget")
        else:
            try:
                fraction = float(raw)
            except ValueError:
                fraction = math.nan
            if not (math.isfinite(fraction) and fraction > 0):
                raise SftmixError(f"{flag} budget: expected a fraction > 0 of the all-data composition's "
                                  f"tokens (such as 0.3) or tokens with a unit (such as 5M), found {raw!r}")
    name = fields.get("name") or _name(weights, fraction, tokens, floors)
    return Scenario(name, weights, fraction, tokens, floors)


def _name(weights: dict[str, float], fraction: float | None, tokens: float | None,
          floors: dict[str, float]) -> str:
    parts = ["w" + "-".join(f"{a}{w:g}" for a, w in weights.items() if w)]
    if fraction is not None:
        parts.append(f"b{fraction:g}")
    if tokens is not None:
        parts.append(f"b{tokens / 1e6:g}M")
    parts += [f"{a}>={f:g}" for a, f in floors.items()]
    return "_".join(parts)
