"""The recommendation under constraints, its intervals, its reasons, and the runs worth running next,
on synthetic studies whose scores follow known laws."""

from __future__ import annotations

import numpy as np
import pytest

from sftmix.results.weights import weighted
from sftmix.suggest.composition import Composition, features_of
from sftmix.suggest.constraints import Constraints
from sftmix.suggest.explain import next_run, recommendation
from sftmix.suggest.model import Observation, ResponseModel, fit_model
from sftmix.suggest.optimise import initial_design
from sftmix.suggest.search import MIN_GAIN, Space, Suggestion, composition_tokens, suggest
from sftmix.train.config import TrainSettings
from tests.suggest.synthetic import SIZES, TOKENS_PER_EXAMPLE, grid_compositions, observe

SPACE = Space(list(SIZES), general="general")
EQUAL = dict.fromkeys(SIZES, 1.0)
GENERAL_ONLY = {"maths": 0.0, "code": 0.0, "general": 1.0}


@pytest.fixture(scope="module")
def model() -> ResponseModel:
    grid = grid_compositions()
    rng = np.random.default_rng(5)
    seen = [grid[i] for i in rng.choice(64, 14, replace=False)] + [grid[65], grid[68]]
    return fit_model(observe(seen, 0.03, seed=6), list(SIZES), replicates=30, allow_gp=False)


def _suggest(model: ResponseModel, weights: dict[str, float], cons: Constraints | None = None,
             n_next: int = 3) -> Suggestion:
    return suggest(model, SPACE, weights, SIZES, TOKENS_PER_EXAMPLE, 2.0, n_next=n_next, constraints=cons)


def test_a_floor_changes_the_recommendation_to_one_that_reaches_it(model: ResponseModel) -> None:
    free = _suggest(model, GENERAL_ONLY)
    assert free.recommended is not None
    floor = free.recommended.abilities["maths"][0] + 0.1  # the unconstrained choice misses it
    sug = _suggest(model, GENERAL_ONLY, Constraints(None, {"maths": floor}))
    rec = sug.recommended
    assert rec is not None and rec.composition != free.recommended.composition
    assert rec.abilities["maths"][0] >= floor and rec.feasible
    assert all(p.abilities["maths"][0] < floor for p in sug.predictions if p.mean > rec.mean)
    # Every proposed run can reach the floor in some replicates, and is worth a run.
    assert all(p.gain >= MIN_GAIN and p.p_floors > 0 for p in sug.next_runs)


def test_a_budget_is_respected_and_the_cheapest_equivalent_named(model: ResponseModel) -> None:
    full = Composition.multi_task(dict.fromkeys(SIZES, 1.0), "general")
    all_data = composition_tokens(full, SIZES, TOKENS_PER_EXAMPLE, 2.0)
    sug = _suggest(model, EQUAL, Constraints(0.3 * all_data))
    rec, cheap = sug.recommended, sug.cheapest_equivalent
    assert rec is not None and rec.tokens <= 0.3 * all_data
    assert all(p.tokens <= 0.3 * all_data for p in sug.next_runs)
    assert cheap is not None and cheap.feasible and cheap.tokens <= rec.tokens
    assert sug.to_json()["constraints"]["budget_tokens"] == pytest.approx(0.3 * all_data)


def test_impossible_constraints_leave_no_recommendation(model: ResponseModel) -> None:
    assert _suggest(model, EQUAL, Constraints(None, {"code": 2.0})).recommended is None


def test_no_run_with_zero_expected_gain_is_proposed(model: ResponseModel) -> None:
    sug = _suggest(model, EQUAL)
    assert sug.next_runs and all(p.gain >= MIN_GAIN for p in sug.next_runs)
    # A measured run far above every prediction: no candidate is expected to beat it.
    star = Observation("star", features_of(grid_compositions()[0].recipes(), SIZES), dict.fromkeys(SIZES, 1.0),
                       dict.fromkeys(SIZES, 0.01))
    high = ResponseModel(model.abilities, model.models, [*model.observations, star], model.replicates)
    sug = _suggest(high, EQUAL)
    assert sug.best_measured == ("star", 1.0)
    assert sug.next_runs == [] and sug.max_gain < MIN_GAIN


def test_intervals_include_the_evaluation_error_of_the_runs() -> None:
    # Five IFEval items a run: every score near 0.2, with a 95% interval of about [0, 0.6].
    comps = grid_compositions()[:12:2]
    rng = np.random.default_rng(7)
    obs = [Observation(c.name, features_of(c.recipes(), SIZES),
                       {"maths": 0.0, "code": 0.0, "general": float(rng.choice([0.0, 0.2, 0.4]))},
                       {"maths": 0.0, "code": 0.0, "general": 0.15}) for c in comps]
    model = fit_model(obs, list(SIZES), replicates=30, allow_gp=False)
    sug = _suggest(model, EQUAL)
    assert sug.recommended is not None
    _, lo, hi = sug.recommended.abilities["general"]
    assert hi - lo >= 0.4  # about 2 x 1.96 x 0.15, clipped at 0
    # The fit says it is degenerate: maths and code never moved.
    assert any("maths scored 0.000 in every one of the 6 runs" in w for w in sug.warnings)
    assert any("code scored 0.000" in w for w in sug.warnings)


def test_few_runs_are_called_degenerate() -> None:
    obs = observe(grid_compositions()[:2], 0.03, seed=8)
    model = fit_model(obs, list(SIZES), replicates=5, allow_gp=False)
    assert any("2 distinct composition(s)" in w for w in model.warnings)


def test_a_healthy_fit_has_no_warning(model: ResponseModel) -> None:
    assert model.warnings == []


def test_the_reasons_name_runs_effects_cost_and_gain(model: ResponseModel) -> None:
    sug = _suggest(model, EQUAL)
    lines = recommendation(sug, model, SIZES)
    text = " ".join(lines)
    assert any(o.run in text for o in model.observations)
    assert "halving its data would cost" in text
    assert "cheapest" in text
    # Code leans on maths data in these laws, and the fit says so where maths is in the mix.
    assert "each maths example counts as" in text
    why = next_run(sug.next_runs[0], sug, model, SIZES)
    assert f"expected gain {sug.next_runs[0].gain:.4f}" in why and "per million" in why
    best = float(max(weighted(o.scores, EQUAL) for o in model.observations))
    assert f"({best:.3f})" in why


def test_token_counts_respect_max_steps() -> None:
    comp = grid_compositions()[-1]  # DMT k = 1: two stages
    settings = TrainSettings(epochs=2.0)
    plain = composition_tokens(comp, SIZES, TOKENS_PER_EXAMPLE, 2.0)
    assert composition_tokens(comp, SIZES, TOKENS_PER_EXAMPLE, 2.0, settings) == pytest.approx(plain)
    capped = TrainSettings(epochs=2.0, max_steps=10, global_batch_size=4, per_device_batch_size=4)
    # Each of the two stages stops after 10 steps of 4 packed rows of max_length tokens, as `sftmix plan` counts.
    assert composition_tokens(comp, SIZES, TOKENS_PER_EXAMPLE, 2.0, capped) == 2 * 10 * 4 * capped.max_length


def test_round_zero_spans_what_the_budget_allows() -> None:
    full = Composition.multi_task(dict.fromkeys(SIZES, 1.0), "general")
    budget = 0.3 * composition_tokens(full, SIZES, TOKENS_PER_EXAMPLE, 2.0)

    def fits(c: Composition) -> bool:
        return composition_tokens(c, SIZES, TOKENS_PER_EXAMPLE, 2.0) <= budget

    free = initial_design(SPACE)
    assert len(free) == 5 and initial_design(SPACE, lambda c: True, SIZES) == free
    design = initial_design(SPACE, fits, SIZES)
    assert len(design) == 5 and len(set(design)) == 5 and all(fits(c) for c in design)
    assert all(c in design for c in free if fits(c))
