"""The suggest bench's judgement -- grid best, baselines, regret, coverage -- on a synthetic grid
whose true scores are known laws (the bench itself trains 70 runs: too slow for a test)."""

from __future__ import annotations

import numpy as np
import pytest

from sftmix.suggest.benchmark import (
    Grid,
    all_data_answer,
    answer,
    baselines,
    coverage,
    deciding,
    random_runs,
    regression_answer,
)
from sftmix.suggest.composition import Composition
from sftmix.suggest.constraints import Constraints
from sftmix.suggest.model import fit_model
from tests.suggest.synthetic import SIZES, grid_compositions, synthetic_grid

EQUAL = dict.fromkeys(SIZES, 1.0)
FULL = Composition.multi_task(dict.fromkeys(SIZES, 1.0), "general")


@pytest.fixture(scope="module")
def grid() -> Grid:
    return synthetic_grid(noise=0.03, seed=0)


def test_a_budget_makes_the_best_interior(grid: Grid) -> None:
    all_data = grid.cost(FULL)
    free = grid.best(EQUAL, Constraints())
    cons = Constraints(0.3 * all_data)
    best = grid.best(EQUAL, cons)
    assert grid.cost(best) <= 0.3 * all_data < grid.cost(free)
    assert all(grid.value(c, EQUAL) <= grid.value(best, EQUAL) for c in grid.feasible(cons))
    # Neither all-data run fits 0.3 of the all-data cost: the heuristic does not apply.
    assert all_data_answer(grid, EQUAL, cons) is None
    assert all_data_answer(grid, EQUAL, Constraints()) in (FULL, *[c for c in grid.runs if c.k == 1.0])


def test_a_floor_is_met_by_the_best_and_by_every_answer(grid: Grid) -> None:
    weights = {"maths": 0.0, "code": 0.0, "general": 1.0}
    free = grid.best(weights, Constraints())
    floor = grid.runs[free].scores["maths"] + 0.05  # a floor the unconstrained best misses
    cons = Constraints(None, {"maths": floor})
    best = grid.best(weights, cons)
    assert best != free and grid.runs[best].scores["maths"] >= floor
    assert grid.value(best, weights) < grid.value(free, weights)
    drawn = random_runs(grid, cons, 0.2 * grid.tokens(list(grid.runs)), np.random.default_rng(1))
    pick = answer(grid, drawn, weights, cons)
    assert pick is None or grid.runs[pick].measured["maths"] >= floor
    # An answer that breaks the floor is worth the worst run that meets it, never more.
    worst = min(grid.value(c, weights) for c in grid.feasible(cons))
    breaker = next(c for c in grid.runs if grid.runs[c].scores["maths"] < floor)
    assert grid.judged(breaker, weights, cons) == worst
    assert grid.judged(None, weights, cons) == worst


def test_random_search_spends_at_most_its_budget_with_shared_stages_once(grid: Grid) -> None:
    dmt = [c for c in grid.runs if c.strategy == "dmt"]
    # Six DMT runs share stage 1: together they cost far less than six runs apart.
    assert grid.tokens(dmt) < 0.7 * sum(grid.cost(c) for c in dmt)
    budget = 0.25 * grid.tokens(list(grid.runs))
    for seed in range(5):
        drawn = random_runs(grid, Constraints(), budget, np.random.default_rng(seed))
        assert drawn and grid.tokens(drawn) <= budget
        # It stops only when nothing else fits.
        rest = [c for c in grid.runs if c not in drawn]
        assert all(grid.tokens([*drawn, c]) > budget for c in rest)
    cons = Constraints(0.3 * grid.cost(FULL))
    assert all(grid.cost(c) <= cons.budget for c in random_runs(grid, cons, budget, np.random.default_rng(0)))


def test_the_regression_answers_within_the_constraints(grid: Grid) -> None:
    cons = Constraints(0.5 * grid.cost(FULL), {"code": 0.3})
    drawn = random_runs(grid, cons, 0.3 * grid.tokens(list(grid.runs)), np.random.default_rng(2))
    pick = regression_answer(grid, drawn, EQUAL, cons)
    assert pick is not None and grid.cost(pick) <= cons.budget  # type: ignore[operator]


def test_baselines_and_regret_on_the_synthetic_grid(grid: Grid) -> None:
    cons = Constraints(0.3 * grid.cost(FULL))
    best_value = grid.value(grid.best(EQUAL, cons), EQUAL)
    base = baselines(grid, EQUAL, cons, 0.05 * grid.tokens(list(grid.runs)), seeds=8)
    assert len(base.random_values) == 8 and len(base.regression_values) == 8
    # Judged values never exceed the grid's best; random search with a little budget misses it.
    assert max(base.random_values) <= best_value + 1e-12
    assert np.mean(base.random_values) < best_value
    assert base.all_data is None
    json = base.to_json()
    assert json["random_seeds"] == 8 and json["all_data"] is None


def test_deciding_runs_are_the_best_that_meet_the_constraints(grid: Grid) -> None:
    cons = Constraints(0.5 * grid.cost(FULL))
    top = deciding(grid, EQUAL, cons, 4)
    assert len(top) == 4 and top[0] == grid.best(EQUAL, cons)
    values = [grid.value(c, EQUAL) for c in top]
    assert values == sorted(values, reverse=True)


def test_coverage_is_near_nominal_and_catches_intervals_that_are_too_narrow(grid: Grid) -> None:
    comps = grid_compositions()
    rng = np.random.default_rng(3)
    seen = {comps[i] for i in rng.choice(64, 12, replace=False)} | {comps[65], comps[68]}
    obs = [grid.runs[c].observation() for c in seen]
    model = fit_model(obs, list(SIZES), replicates=40, allow_gp=False)
    cov, n = coverage(model, grid, seen, EQUAL)
    assert n == len(grid.runs) - len(seen)
    assert 0.8 <= cov <= 1.0
    # The same fit with intervals of its single least-squares curve and no run noise -- what an
    # interval that ignores the evaluation error of its runs comes to -- covers almost nothing.
    for m in model.models.values():
        m.noise = 0.0
        m.replicates = [m.law.theta] * len(m.replicates)  # type: ignore[union-attr]
    narrow, _ = coverage(model, grid, seen, EQUAL)
    assert narrow < 0.3
