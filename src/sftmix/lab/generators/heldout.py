"""Seeded, unbounded drawing of lab problems with a held-out test split.

Every lab generator builds one problem from one random stream; this module
turns that into the generators' common contract:

* **Deterministic per seed.** Problem ``i`` of a split is drawn from its own
  stream, seeded by a string of (generator, seed, split, i), so the output does
  not depend on the Python hash seed or on how many problems are asked for:
  ``generate(100)`` is a prefix of ``generate(1000)``.
* **Held out by content.** Each problem carries a *content key* that names what
  it asks independently of its wording (the operations and numbers of a word
  problem, the function kind and constants of a code task, the topic and
  constraints of an instruction). A fixed hash of that key assigns it to train
  or test, so the same content can never appear on both sides whatever the
  seeds or amounts; generators add disjoint template families on top.
* **Distinct within a split.** A problem whose prompt (for conversations: the
  whole conversation) was already produced is skipped, so an amount of N is N
  different problems.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from sftmix.errors import ConfigError, SftmixError

Split = Literal["train", "test"]
SPLITS: tuple[str, ...] = ("train", "test")

# Share of the content space reserved for test problems. Small, so that training
# sees most combinations, large enough that the test set is never starved.
TEST_FRACTION = 0.2

# After this many draws in a row that yield nothing new the space is exhausted
# for the requested difficulty; better a clear error than an endless loop.
MAX_MISSES = 20_000


@dataclass(frozen=True)
class Drawn:
    """What every generated problem exposes to the drawing loop and to checks."""

    key: str  # content key: decides the split, identical for identical content
    family: str  # template family the wording came from (train and test families are disjoint)
    prompt: str  # what the model is asked

    @property
    def identity(self) -> str:
        """What must be distinct within a split: the prompt, unless a generator says otherwise."""
        return self.prompt


P = TypeVar("P", bound=Drawn)
D = TypeVar("D", bound=BaseModel)


def parse_difficulty(model: type[D], value: D | dict[str, Any] | None, generator: str) -> D:
    """Validate a generator's difficulty knobs; a bad knob names its field and the expectation."""
    if isinstance(value, model):
        return value
    try:
        return model.model_validate(value or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(all)"
        raise ConfigError(f"{generator} difficulty, field '{field}': found "
                          f"{err.get('input')!r}; {err['msg']}") from None


def check_split(split: str) -> Split:
    if split not in SPLITS:
        raise SftmixError(f"unknown split '{split}'; expected one of: {', '.join(SPLITS)}")
    return split  # type: ignore[return-value]


def is_test_content(key: str, fraction: float = TEST_FRACTION) -> bool:
    """Whether content with this key belongs to the held-out test split (fixed, seed-free)."""
    digest = hashlib.sha256(f"sftmix-lab-heldout:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def item_rng(generator: str, seed: int, split: str, index: int) -> random.Random:
    # String seeds are hashed with SHA-512 by random.Random: stable across processes.
    return random.Random(f"sftmix-lab:{generator}:{seed}:{split}:{index}")


class Drawer(Generic[P]):
    """Draws distinct problems of one split from a per-index problem factory."""

    def __init__(self, generator: str, make: Callable[[random.Random, Split], P]) -> None:
        self.generator = generator
        self.make = make

    def draw(self, n: int | None, seed: int, split: str) -> Iterator[P]:
        """Yield ``n`` problems (``None``: without end) of ``split``, deterministically."""
        split = check_split(split)
        if n is not None and n < 0:
            raise SftmixError(f"{self.generator}: amount must be >= 0, found {n}")
        want_test = split == "test"
        seen: set[str] = set()
        produced = misses = index = 0
        while n is None or produced < n:
            problem = self.make(item_rng(self.generator, seed, split, index), split)
            index += 1
            if is_test_content(problem.key) != want_test or problem.identity in seen:
                misses += 1
                if misses >= MAX_MISSES:
                    raise SftmixError(
                        f"{self.generator}: could not draw more than {produced} distinct "
                        f"{split} problems at this difficulty (asked for {n}); widen the "
                        "difficulty (more steps, larger numbers) or ask for fewer"
                    )
                continue
            misses = 0
            seen.add(problem.identity)
            produced += 1
            yield problem


def normalise_text(text: str) -> str:
    """Lower-case, punctuation-free, single-spaced text: for near-duplicate comparisons."""
    kept = "".join(ch.lower() if ch.isalnum() else " " for ch in text)
    return " ".join(kept.split())
