"""The response model recovers known curves from synthetic scores, and falls back where the law is wrong."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sftmix.suggest.composition import Composition, features_of
from sftmix.suggest.model import Observation, fit_model, loo_predictions
from tests.suggest.synthetic import LEVELS, SIZES, TRUE, grid_compositions, observe, truth


def _grid() -> list[Composition]:
    return grid_compositions()


def test_law_recovers_known_curves_from_a_few_runs() -> None:
    grid = _grid()
    rng = np.random.default_rng(1)
    # Two DMT runs with small replays, which are what tell the head start `delta` (with large ones the
    # specialist scores saturate, and smaller k would be an extrapolation).
    seen = [grid[i] for i in rng.choice(64, 14, replace=False)] + [grid[64 + 1], grid[64 + 3]]
    model = fit_model(observe(seen, 0.02, seed=2), list(SIZES), replicates=30, allow_gp=False)
    unseen = [c for c in grid if c not in seen]
    feats = [features_of(c.recipes(), SIZES) for c in unseen]
    pred = model.predict(feats)
    for a in SIZES:
        expected = np.array([truth(c)[a] for c in unseen])
        err = np.abs(pred[a] - expected)
        # Held-out compositions, predicted from 16 noisy runs: within a few points of the truth.
        assert np.mean(err) < 0.04, (a, float(np.mean(err)))
        assert np.max(err) < 0.15, (a, float(np.max(err)))
        params = model.models[a].law.params()  # type: ignore[union-attr]
        assert params["mu"] == pytest.approx(TRUE[a][2], abs=0.6)
        assert params["lo"] + params["span"] == pytest.approx(TRUE[a][0] + TRUE[a][1], abs=0.12)
        # Transfer is found where it is, and not where it is not.
        for b, tau in zip((b for b in SIZES if b != a), TRUE[a][6:], strict=True):
            assert params[f"tau_{b}"] == pytest.approx(tau, abs=0.2), (a, b, params)


def test_bootstrap_intervals_cover_the_truth() -> None:
    grid = _grid()
    seen = [*grid[::5], grid[65], grid[68]]
    model = fit_model(observe(seen, 0.03, seed=3), list(SIZES), replicates=60, allow_gp=False)
    feats = [features_of(c.recipes(), SIZES) for c in grid]
    draws = model.draws(feats)
    covered, total = 0, 0
    for a in SIZES:
        lo, hi = np.percentile(draws[a], [2.5, 97.5], axis=0)
        expected = np.array([truth(c)[a] for c in grid])
        covered += int(np.sum((expected >= lo - 0.02) & (expected <= hi + 0.02)))
        total += len(grid)
        assert np.all(hi >= lo)
    assert covered / total > 0.8


def test_noiseless_scores_are_fitted_exactly() -> None:
    grid = _grid()
    seen = grid[::3] + grid[64:]
    obs = observe(seen, 0.0, seed=0)
    model = fit_model(obs, list(SIZES), replicates=2, allow_gp=False)
    pred = model.predict([o.features for o in obs])
    for a in SIZES:
        assert np.max(np.abs(pred[a] - np.array([o.scores[a] for o in obs]))) < 0.01


def test_a_response_the_law_cannot_take_falls_back_to_the_gaussian_process() -> None:
    # A score that peaks at a middle amount and falls again: no sigmoid in log amount has it.
    comps = [Composition.multi_task(dict(zip(SIZES, f, strict=True))) for f in itertools.product(LEVELS, repeat=3)]
    obs = []
    rng = np.random.default_rng(4)
    for c in comps[::3]:
        f = features_of(c.recipes(), SIZES)
        x = np.log2(1 + f.last["maths"])
        bump = 0.8 * np.exp(-((x - 9.0) ** 2) / 0.5)
        scores = {a: v + rng.normal(0, 0.01) for a, v in truth(c).items()} | {"maths": float(bump)}
        obs.append(Observation(c.name, f, scores, dict.fromkeys(SIZES, 0.01)))
    model = fit_model(obs, list(SIZES), replicates=5)
    m = model.models["maths"]
    assert m.kind == "gp" and m.loo_gp is not None and m.loo_law is not None and m.loo_gp < m.loo_law
    assert model.models["general"].kind == "law"
    held = loo_predictions(obs, ["general"])
    expected = np.array([truth(c)["general"] for c in comps[::3]])
    assert np.max(np.abs(held["general"] - expected)) < 0.05


def test_runs_that_all_score_the_same_still_fit() -> None:
    # The optimiser's first round on a model that learnt nothing: every score 0.
    comps = _grid()[:3]
    obs = [Observation(c.name, features_of(c.recipes(), SIZES), dict.fromkeys(SIZES, 0.0), dict.fromkeys(SIZES, 0.0))
           for c in comps]
    model = fit_model(obs, list(SIZES), replicates=3)
    pred = model.predict([o.features for o in obs])
    assert all(np.allclose(pred[a], 0.0, atol=1e-3) for a in SIZES)


def test_one_runs_interval_widens_as_the_runs_that_pin_the_law_grow_few() -> None:
    # The same law per ability, fitted to 3 runs (which it passes through: no degree of freedom is
    # left to measure a run's scatter) and to 40: the 3-run fit's error for one run has the prior's
    # single degree of freedom -- a Cauchy tail -- and a far wider interval than the 40-run fit's,
    # whose error is near normal. Neither is below the runs' own evaluation error.
    grid = _grid()[:64]
    widths = {}
    for n in (3, 40):
        seen = [grid[i] for i in np.linspace(0, 63, n).astype(int)]
        model = fit_model(observe(seen, 0.03, seed=5), list(SIZES), replicates=20, allow_gp=False)
        law = model.models["maths"]
        assert law.noise >= 0.03 - 1e-9
        assert law.noise_dof == pytest.approx(1.0 + max(n - law.law.dof, 0.0))  # type: ignore[union-attr]
        assert (law.noise_dof < 2.0) if n == 3 else (law.noise_dof > 20)
        # One run's error alone about an expected score of 0.5, 4,000 draws of it.
        runs = model.predictive({"maths": np.full((4000, 1), 0.5)}, seed=1)["maths"]
        lo, hi = np.percentile(runs, [2.5, 97.5])
        widths[n] = hi - lo
    assert widths[3] > 3 * widths[40], widths


def test_replicates_spread_where_the_runs_leave_a_parameter_to_its_prior() -> None:
    # Multi-task runs only: nothing measures DMT's head start (delta), so the replicates, which draw
    # the priors' centres, spread it about as its prior does (sd 3, within its bounds [0, 12]),
    # while the ceiling the runs do measure (lo + span) stays put.
    seen = _grid()[:64:4]
    model = fit_model(observe(seen, 0.02, seed=9), list(SIZES), replicates=40, allow_gp=False)
    reps = np.array(model.models["maths"].replicates)
    assert np.std(reps[:, 4]) > 1.0, np.std(reps[:, 4])  # delta
    assert np.std(reps[:, 0] + reps[:, 1]) < 0.1
