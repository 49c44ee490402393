"""Synthetic studies for the suggest tests: scores from known laws shaped like the lab's abilities."""

from __future__ import annotations

import itertools

import numpy as np

from sftmix.suggest.benchmark import Grid, GridRun
from sftmix.suggest.composition import Composition, features_of
from sftmix.suggest.law import LawFit
from sftmix.suggest.model import Observation, law_inputs

SIZES = {"maths": 2048, "code": 2048, "general": 2048}
TOKENS_PER_EXAMPLE = {"maths": 100.0, "code": 60.0, "general": 200.0}
LEVELS = [1 / 8, 1 / 4, 1 / 2, 1.0]
KS = (0, 1 / 32, 1 / 8, 1 / 4, 1 / 2, 1)
# Known laws (lo, span, mu, beta, delta, gamma, then tau from each other ability in SIZES' order),
# shaped like the lab's abilities; half of every maths example counts as a code example (the lab's
# code leans on maths data), and nothing else transfers.
TRUE = {
    "maths": np.array([0.02, 0.85, 9.8, 2.0, 3.0, 0.6, 0.0, 0.0]),
    "code": np.array([0.00, 0.90, 10.2, 2.5, 3.5, 0.3, 0.5, 0.0]),
    "general": np.array([0.05, 0.75, 9.5, 1.5, 1.0, -0.8, 0.0, 0.0]),
}


def grid_compositions(levels: list[float] = LEVELS, ks: tuple[float, ...] = KS) -> list[Composition]:
    mt = [Composition.multi_task(dict(zip(SIZES, f, strict=True)), "general")
          for f in itertools.product(levels, repeat=3)]
    return mt + [Composition.dmt(dict.fromkeys(SIZES, 1.0), k, "general") for k in ks]


def truth(comp: Composition) -> dict[str, float]:
    f = features_of(comp.recipes(), SIZES)
    return {a: float(LawFit(t, 0).predict(law_inputs(a, [f], list(SIZES)))[0]) for a, t in TRUE.items()}


def observe(comps: list[Composition], noise: float, seed: int) -> list[Observation]:
    rng = np.random.default_rng(seed)
    out = []
    for c in comps:
        t = truth(c)
        out.append(Observation(c.name, features_of(c.recipes(), SIZES),
                               {a: v + rng.normal(0, noise) for a, v in t.items()}, dict.fromkeys(t, noise)))
    return out


def stage_tokens(counts: dict[str, int]) -> float:
    return sum(c * TOKENS_PER_EXAMPLE[a] for a, c in counts.items())


def synthetic_grid(noise: float = 0.03, seed: int = 0, comps: list[Composition] | None = None) -> Grid:
    """Every composition measured once with ``noise``, judged by its true scores; a stage is named
    by the chain of recipes up to it, so DMT's stage 1 is shared as in a real plan."""
    comps = comps or grid_compositions()
    rng = np.random.default_rng(seed)
    runs, tokens = {}, {}
    for c in comps:
        keys = []
        for i, recipe in enumerate(c.recipes()):
            counts = recipe.counts(SIZES)
            key = repr([r.counts(SIZES) for r in c.recipes()[: i + 1]])
            tokens[key] = stage_tokens(counts)
            keys.append(key)
        t = truth(c)
        measured = {a: v + rng.normal(0, noise) for a, v in t.items()}
        runs[c] = GridRun(c, features_of(c.recipes(), SIZES), measured, dict.fromkeys(t, noise), t,
                          dict.fromkeys(t, 0.0), tuple(keys))
    return Grid(runs, tokens)
