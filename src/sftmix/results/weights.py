"""Weights over abilities, and a weighted score: what "best" means for a user's priorities."""

from __future__ import annotations

import math
from typing import Any

from sftmix.errors import SftmixError


def parse_weights(text: str | None, abilities: list[str], flag: str = "--weights") -> dict[str, float]:
    """``maths=1,code=1,general=2`` -> weights; abilities not named weigh 0; default all 1.

    An ability named twice, a weight that is not a finite number >= 0, or weights that
    would overflow when summed are errors naming the flag.
    """
    if not text:
        return dict.fromkeys(abilities, 1.0)
    weights = dict.fromkeys(abilities, 0.0)
    named: set[str] = set()
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in abilities:
            raise SftmixError(f"{flag}: {part.strip()!r} is not '<ability>=<weight>' with one of "
                              f"the study's abilities ({', '.join(abilities)}); e.g. "
                              f"{','.join(f'{a}=1' for a in abilities)}")
        if name in named:
            raise SftmixError(f"{flag}: {name!r} is given twice in {text!r}; give each ability once")
        named.add(name)
        try:
            w = float(value)
        except ValueError:
            raise SftmixError(f"{flag}: the weight of {name!r} must be a number >= 0, found {value.strip()!r}") from None
        if not math.isfinite(w) or w < 0:
            raise SftmixError(f"{flag}: the weight of {name!r} must be a number >= 0, found {value.strip()!r}")
        weights[name] = w
    total = sum(weights.values())
    if not math.isfinite(total) or total <= 0:
        raise SftmixError(f"{flag}: at least one weight must be > 0, and their sum finite; found {text!r}")
    return weights


def weighted(scores: dict[str, Any], weights: dict[str, float]) -> Any:
    """``sum w_a s_a / sum w_a`` over the weighted abilities (scores may be arrays).

    Each weight is divided by the sum first: weights near the largest float (``1e308``) times
    scores above 1 would overflow to infinity the other way round.
    """
    total = sum(weights.values())
    return sum((weights[a] / total) * scores[a] for a in weights if weights[a])
