"""Nested, exact, seeded subsampling -- the part that makes scaling curves differ only in amount.

Public API::

    nested_indices(n, amount, seed, *, kind="fraction") -> list[int]
    amount_count(n, amount, kind) -> int
    proportional_counts(sizes, proportions, total=None) -> list[int]
    derive_seed(seed, *parts) -> int

The rule. For a source of ``n`` records and a seed, one permutation ``P`` of
``0..n-1`` is drawn (numpy's PCG64 seeded with ``seed``). Repeat ``P`` end to
end forever: ``P P P ...``. An amount of ``m`` records is the first ``m``
entries of that endless sequence. Hence

* a fraction ``f <= 1`` takes the first ``m`` of ``P``; a larger fraction of the
  same seed contains it (1/256 ⊂ 1/64 ⊂ 1/16 ⊂ 1/4 ⊂ 1), and the smaller is a
  prefix of the larger even as ordered lists;
* ``f > 1`` is ``floor(m / n)`` whole copies of the source and then the first
  ``m mod n`` of ``P``: the "seeded remainder", itself nested;
* counts behave alike (``count: 500`` of a 300-record source: one full copy and
  the first 200 of ``P``).

Rounding: ``m = floor(f * n + 1/2)`` computed exactly on the decimal value of
``f`` as written (its shortest repr: 2.55 of 10 is 25.5, not 25.4999...; half
rounds up, so 1/2 of 5 is 3); ``m`` is at least 1 when ``f > 0``
and ``n > 0`` -- a requested non-zero amount never silently becomes an empty
subset. ``n == 0`` gives no records for any amount.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Literal

import numpy as np

Kind = Literal["fraction", "count"]


def derive_seed(seed: int, *parts: str) -> int:
    """An independent 63-bit seed for one use of ``seed`` (a source name, "shuffle", ...)."""
    digest = hashlib.sha256("\0".join([str(seed), *parts]).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def permutation(n: int, seed: int) -> np.ndarray:
    """The seed's permutation of ``range(n)``."""
    return np.random.Generator(np.random.PCG64(seed)).permutation(n)


def amount_count(n: int, amount: float | int, kind: Kind = "fraction") -> int:
    """How many records an amount means for a source of ``n`` (see the rounding rule above)."""
    if amount < 0:
        raise ValueError(f"amount must be >= 0, found {amount}")
    if n == 0:
        return 0
    if kind == "count":
        if int(amount) != amount:
            raise ValueError(f"a count must be a whole number, found {amount}")
        return int(amount)
    if kind != "fraction":
        raise ValueError(f"kind must be 'fraction' or 'count', found {kind!r}")
    # The decimal the user wrote (float's shortest repr), not the binary float: 2.55 * 10 is 25.5.
    exact = Fraction(repr(float(amount))) * n
    m = math.floor(exact + Fraction(1, 2))
    return max(m, 1) if amount > 0 else 0


def nested_indices(n: int, amount: float | int, seed: int, *, kind: Kind = "fraction") -> list[int]:
    """The first ``amount_count(n, amount, kind)`` entries of the seed's endless permutation cycle."""
    m = amount_count(n, amount, kind)
    if m == 0:
        return []
    perm = permutation(n, seed)
    copies, rest = divmod(m, n)
    if copies == 0:
        return perm[:m].tolist()
    return np.concatenate([np.tile(perm, copies), perm[:rest]]).tolist()


def proportional_counts(sizes: Sequence[int], proportions: Sequence[float],
                        total: int | None = None) -> list[int]:
    """Counts per source for target shares of a total (the "equal proportions" design).

    Shares are normalised to sum to 1. Without ``total``, the total is the
    largest one at which no source needs more records than it has:
    ``min(size_i / share_i)``. Counts are allotted by largest remainder, ties to
    the earlier source, so they sum to the total exactly.
    """
    if len(sizes) != len(proportions):
        raise ValueError("sizes and proportions differ in length")
    if not proportions or any(p <= 0 for p in proportions):
        raise ValueError("proportions must be > 0")
    weight = sum(Fraction(p) for p in proportions)
    shares = [Fraction(p) / weight for p in proportions]
    if total is None:
        total = min(math.floor(Fraction(s) / share) for s, share in zip(sizes, shares, strict=True))
    exact = [share * total for share in shares]
    counts = [math.floor(x) for x in exact]
    left = total - sum(counts)
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[:left]:
        counts[i] += 1
    return counts


def shuffled(n: int, seed: int) -> list[int]:
    """Order of the final mixture when it is shuffled."""
    return permutation(n, seed).tolist()
