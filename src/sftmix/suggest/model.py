"""A response model per ability -- the law, or a Gaussian process where the law fits worse -- with draws.

For each ability the law (``sftmix.suggest.law``) and a Gaussian process on the
same runs are compared by leave-one-out error: the law is kept unless the
process predicts held-out runs clearly better (by ``GP_MARGIN``), which
happens when a study's responses do not have the law's shape. With fewer runs
than the law has parameters plus two, the comparison says nothing and the law
(with its priors) is used.

Uncertainty comes from a bootstrap over runs and evaluation items: each replicate
resamples the runs with replacement, perturbs every score by its own
evaluation error (the half-width of its 95% item-bootstrap interval / 1.96)
and draws the priors' centres from the priors (a randomised prior: a parameter
the runs leave free spreads as the prior says, one they pin down does not),
then refits. A Gaussian-process ability draws from its posterior instead.

Those draws are of a composition's *expected* score. A run that is trained and
evaluated scores that plus its own noise: the evaluation's sampling error and
whatever moves a single run (the seed) beyond it, which one seed per run cannot
separate from a misfit of the law. :meth:`ResponseModel.predictive` adds an
error per ability whose scale is learnt from the runs' scatter about the law,
and whose tails say how little that scatter may yet be known: a Student t on
the degrees of freedom the fit leaves (the runs less the parameters they fix,
the trace of the fit's hat matrix) plus one, for a prior guess that a run lies
about its evaluation error from the law (the conjugate scaled-inverse-chi-squared
prior on the variance, one degree of freedom). A fit that every run pins down
exactly -- one run, or as many runs as the law has free parameters -- has that
one prior degree of freedom only: a Cauchy tail, an interval that says the
runs cannot tell. With many runs more than parameters it is the normal error
of the runs' scatter. The scale is never less than the runs' own evaluation
error. Those are the intervals ``suggest`` prints and the suggest bench checks
for coverage on runs the fit never saw.

:func:`degenerate` says when a fit cannot be trusted at all: an ability that
scored the same in every run (or differs by less than its evaluation error),
or fewer distinct runs than the law has parameters that no prior carries.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from sftmix.results.pool import Z95
from sftmix.suggest.composition import Features
from sftmix.suggest.law import NOISE_FLOOR, LawFit, LawInputs, fit_law, prior_count

log = logging.getLogger(__name__)

GP_MARGIN = 0.8  # the GP replaces the law when its leave-one-out error is below 0.8x the law's
# The law's parameters that no prior carries (floor, rise, midpoint): a fit needs at least
# this many distinct compositions before its curve says anything beyond the priors.
FREE_PARAMS = 3


@dataclass(frozen=True)
class Observation:
    """One completed run: its features and each ability's headline score with its error."""

    run: str
    features: Features
    scores: dict[str, float]
    se: dict[str, float]
    tokens: float | None = None  # training tokens of its distinct stages, as the study recorded them


def law_inputs(ability: str, feats: list[Features], abilities: list[str]) -> LawInputs:
    """``ability``'s law inputs for the runs ``feats``; every other of ``abilities`` may transfer to it."""
    sources = tuple(b for b in abilities if b != ability)
    last = np.array([f.last.get(ability, 0.0) for f in feats])
    total = np.array([f.total_last() for f in feats])
    before = np.array([1.0 if f.prior.get(ability, 0.0) > 0 else 0.0 for f in feats])
    others = np.where(total > 0, 1.0 - last / np.maximum(total, 1.0), 0.0)
    other_last = np.array([[f.last.get(b, 0.0) for b in sources] for f in feats]).reshape(len(feats), len(sources))
    return LawInputs(last, before, others, other_last, sources)


def gp_inputs(abilities: list[str], feats: list[Features]) -> np.ndarray:
    return np.array([[np.log2(1.0 + f.last.get(a, 0.0)) for a in abilities]
                     + [np.log2(1.0 + f.prior.get(a, 0.0)) for a in abilities] for f in feats])


def _fit_gp(x: np.ndarray, y: np.ndarray, se: np.ndarray, seed: int = 0):  # -> GaussianProcessRegressor
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    kernel = (ConstantKernel(1.0, (1e-2, 1e2)) * RBF(np.full(x.shape[1], 3.0), (0.3, 100.0))
              + WhiteKernel(1e-2, (1e-6, 1.0)))
    gp = GaussianProcessRegressor(kernel, alpha=np.maximum(se, 1e-3) ** 2, normalize_y=True,
                                  n_restarts_optimizer=1, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gp.fit(x, y)
    return gp


@dataclass
class AbilityModel:
    ability: str
    kind: str  # "law" or "gp"
    law: LawFit | None
    gp: object | None
    loo_law: float | None = None  # leave-one-out RMSE
    loo_gp: float | None = None
    replicates: list[np.ndarray] = field(default_factory=list)  # bootstrap law parameters
    noise: float = 0.0  # scale of one run's measured score around its expected score
    noise_dof: float = math.inf  # the degrees of freedom of its Student t (inf: normal)


@dataclass
class ResponseModel:
    abilities: list[str]
    models: dict[str, AbilityModel]
    observations: list[Observation]
    replicates: int = 100
    seed: int = 0
    warnings: list[str] = field(default_factory=list)

    def _bound(self, ability: str, values: np.ndarray) -> np.ndarray:
        """Scores measured within [0, 1] (accuracies, pass rates) are predicted within it too."""
        scores = [o.scores[ability] for o in self.observations]
        return np.clip(values, 0.0, 1.0) if min(scores) >= 0 and max(scores) <= 1 else values

    def predict(self, feats: list[Features]) -> dict[str, np.ndarray]:
        out = {}
        for a, m in self.models.items():
            if m.kind == "law":
                assert m.law is not None
                out[a] = self._bound(a, m.law.predict(law_inputs(a, feats, self.abilities)))
            else:
                out[a] = self._bound(a, m.gp.predict(gp_inputs(self.abilities, feats)))  # type: ignore[attr-defined]
        return out

    def draws(self, feats: list[Features]) -> dict[str, np.ndarray]:
        """Bootstrap (or posterior) draws of each ability's score: arrays [replicates, len(feats)]."""
        out = {}
        for a, m in self.models.items():
            if m.kind == "law":
                inp = law_inputs(a, feats, self.abilities)
                out[a] = self._bound(a, np.array([LawFit(t, 0.0).predict(inp) for t in m.replicates]))
            else:
                x = gp_inputs(self.abilities, feats)
                out[a] = self._bound(a, m.gp.sample_y(x, n_samples=self.replicates,  # type: ignore[attr-defined]
                                                      random_state=self.seed).T)
        return out

    def predictive(self, draws: dict[str, np.ndarray], seed: int | None = None) -> dict[str, np.ndarray]:
        """What a trained run would *measure*: the expected-score draws plus one run's noise.

        (A Gaussian-process ability's posterior draws hold its fitted noise already.)
        """
        rng = np.random.default_rng(self.seed if seed is None else seed)
        out = {}
        for a, d in draws.items():
            m = self.models[a]
            if m.kind != "law":
                out[a] = d
                continue
            err = rng.standard_normal(d.shape) if math.isinf(m.noise_dof) else rng.standard_t(m.noise_dof, d.shape)
            out[a] = self._bound(a, d + m.noise * err)
        return out


def _loo_law(inp_all: LawInputs, y: np.ndarray, se: np.ndarray, start: np.ndarray) -> float:
    errors = []
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        f = fit_law(inp_all.take(keep), y[keep], se[keep], start)
        errors.append(float(f.predict(inp_all.take([i]))[0] - y[i]))
    return float(np.sqrt(np.mean(np.square(errors))))


def _loo_gp(x: np.ndarray, y: np.ndarray, se: np.ndarray) -> float:
    errors = []
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        gp = _fit_gp(x[keep], y[keep], se[keep])
        errors.append(float(gp.predict(x[[i]])[0] - y[i]))
    return float(np.sqrt(np.mean(np.square(errors))))


def fit_model(observations: list[Observation], abilities: list[str], replicates: int = 100,
              seed: int = 0, allow_gp: bool = True) -> ResponseModel:
    """Fit every ability's response to the observed runs, with bootstrap replicates."""
    if not observations:
        raise ValueError("no completed runs to fit")
    feats = [o.features for o in observations]
    rng = np.random.default_rng(seed)
    models: dict[str, AbilityModel] = {}
    n = len(observations)
    for a in abilities:
        y = np.array([o.scores[a] for o in observations])
        se = np.array([o.se.get(a, 0.0) for o in observations])
        inp = law_inputs(a, feats, abilities)
        law = fit_law(inp, y, se)
        m = AbilityModel(a, "law", law, None)
        if allow_gp and n >= len(law.theta) + 2:
            m.loo_law = _loo_law(inp, y, se, law.theta)
            m.loo_gp = _loo_gp(gp_inputs(abilities, feats), y, se)
            if m.loo_gp < GP_MARGIN * m.loo_law:
                m.kind, m.gp = "gp", _fit_gp(gp_inputs(abilities, feats), y, se, seed)
                log.info("%s: the Gaussian process predicts held-out runs better (LOO RMSE %.3f against "
                         "the law's %.3f); using it", a, m.loo_gp, m.loo_law)
        # Bootstrap over runs and over items (each score perturbed by its evaluation error);
        # a Gaussian-process ability draws from its posterior instead.
        for _ in range(replicates if m.kind == "law" else 0):
            idx = rng.integers(0, n, n)
            y_b = y[idx] + rng.normal(0.0, 1.0, n) * se[idx]
            shift = rng.standard_normal(prior_count(len(inp.sources)))
            m.replicates.append(fit_law(inp.take(idx), y_b, se[idx], law.theta, shift).theta)
        m.noise, m.noise_dof = run_noise(law, inp, y, se)
        models[a] = m
    return ResponseModel(abilities, models, observations, replicates, seed, degenerate(observations, abilities))


# The prior on a run's scatter about the law: worth this many runs, at the runs' evaluation error.
PRIOR_NOISE_DOF = 1.0


def run_noise(law: LawFit, inp: LawInputs, y: np.ndarray, se: np.ndarray) -> tuple[float, float]:
    """The scale and the degrees of freedom of a new run's measured score around the law (a Student
    t): the posterior of the runs' scatter about it, on the degrees of freedom the fit leaves,
    from a prior of :data:`PRIOR_NOISE_DOF` at their evaluation error; never below that error."""
    evaluation = max(float(np.sqrt(np.mean(np.square(se)))) if len(se) else 0.0, NOISE_FLOOR)
    rss = float(np.sum(np.square(law.predict(inp) - y)))
    left = max(len(y) - law.dof, 0.0)
    dof = PRIOR_NOISE_DOF + left
    scatter = math.sqrt((PRIOR_NOISE_DOF * evaluation**2 + rss) / dof)
    return max(evaluation, scatter), dof


def degenerate(observations: list[Observation], abilities: list[str]) -> list[str]:
    """Why a fit says little: an ability constant (or within its evaluation error) across the runs,
    an ability whose own amount never changes, or too few distinct runs for the law."""
    out = []
    distinct = {o.features.key() for o in observations}
    if len(distinct) < FREE_PARAMS:
        out.append(f"{len(distinct)} distinct composition(s) for the law's {FREE_PARAMS} parameters that no "
                   "prior carries (floor, rise, midpoint): every curve is the priors' guess; run more "
                   "compositions before trusting a recommendation")
    for a in abilities:
        y = np.array([o.scores[a] for o in observations])
        se = np.array([o.se.get(a, 0.0) for o in observations])
        spread, err = float(np.ptp(y)), float(np.sqrt(np.mean(np.square(se))))
        amounts = {round(o.features.last.get(a, 0.0)) for o in observations}
        if spread == 0:
            out.append(f"{a} scored {y[0]:.3f} in every one of the {len(y)} runs: nothing tells how it responds "
                       "to its data, so its predictions are that constant and its intervals come from the "
                       "evaluation error alone (a model that learnt nothing, or a benchmark too hard for it)")
        elif spread < 2 * Z95 * err:
            out.append(f"{a}'s scores differ by {spread:.3f} across the runs, less than their own 95% evaluation "
                       f"interval (about +-{Z95 * err:.3f}): the fit cannot tell its response from noise "
                       "(evaluate on more items)")
        elif len(amounts) < 2:
            out.append(f"{a}'s own amount is the same in every run: its slope and midpoint rest on the priors")
    return out


def loo_predictions(observations: list[Observation], abilities: list[str]) -> dict[str, np.ndarray]:
    """Each run's scores predicted by the law fitted on all the other runs."""
    feats = [o.features for o in observations]
    out = {}
    for a in abilities:
        y = np.array([o.scores[a] for o in observations])
        se = np.array([o.se.get(a, 0.0) for o in observations])
        inp = law_inputs(a, feats, abilities)
        pred = []
        for i in range(len(y)):
            keep = np.arange(len(y)) != i
            pred.append(float(fit_law(inp.take(keep), y[keep], se[keep]).predict(inp.take([i]))[0]))
        out[a] = np.array(pred)
    return out
