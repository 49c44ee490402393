"""The response law: one ability's score as a saturating curve in the log of its effective amount.

    score = lo + span * sigmoid(beta * (log2(1 + last + sum_b tau_b * last_b) + delta * trained_before - mu)
                                + gamma * others)

* ``last`` -- examples of this ability in the final stage (replay included);
* ``last_b`` -- examples of each other ability ``b`` in the final stage, of which
  a fraction ``tau_b`` (between 0 and 1) counts as this ability's own data;
* ``trained_before`` -- 1 when an earlier stage trained this ability (DMT's stage 1);
* ``others`` -- the share of the final stage's examples that belong to other abilities.

Why this form (the reference study's tables in ``sftmix/resources/paper`` and
the lab's measurements in ``docs/lab.md``):

* *Scores follow the absolute amount on a log scale and saturate.* The paper's
  GSM8K rises 12.7 / 22.7 / 35.9 / 43.4 / 49.1 over fractions 1/256 ... 1
  (steps of 4x, near-linear in log amount, then flattening); its MT-Bench
  rises 4.0 / 5.1 / 5.6 / 5.85 / 5.9 and saturates early -- the same sigmoid
  with a lower midpoint ``mu``. The lab's abilities climb from the floor to
  0.7 within three doublings (maths 0.02 / 0.12 / 0.54 / 0.73 at 1/8 ... 1):
  the same sigmoid with a steeper ``beta``. Four parameters (floor, span,
  midpoint, slope) cover both regimes.
* *Another ability's data can stand in for some of this one's* (transfer, as
  "effective data transferred" in scaling laws for transfer): the paper's
  GSM8K scores higher mixed with code and chat than alone at small amounts
  (14.8 against 12.7 at 1/256, 25.8 against 22.7 at 1/64); in the suggest
  bench's lab, code reaches 0.78 with all the maths data beside it and 0.04
  with an eighth of it, at the same amount of code. Transfer adds the other
  abilities' examples, discounted by ``tau_b``, to the amount; ``tau_b = 0`` is
  no transfer. Fitted on the paper's 31 LLaMA-7B runs, it cuts GSM8K's
  leave-one-out error from 5.3 to 2.4 points (``docs/suggest.md``).
* *The ratio matters less than the amount* (RQ3): beyond transfer, the other
  abilities enter only through one coefficient ``gamma`` on their share, which
  can be negative (conflict: the paper's full-data mixtures, the lab's general
  ability 0.74 alone, 0.68 mixed) or positive.
* *DMT's k.* Forgetting is total when a stage does not replay an ability (the
  lab's sequential runs score 0.00 on the specialists; DMT k = 0 gives no
  examples in the final stage, so the floor), while a small replay after a
  specialist stage recovers far more than the same amount from scratch
  (lab: 1/8 of the data gives maths 0.06 alone, 0.77 as DMT k = 1/8; paper:
  k = 1/256 keeps most of GSM8K). ``delta`` is that head start, in doublings
  of the replayed amount.

Six parameters per ability and one transfer fraction per other ability, fitted
by bounded least squares with weak priors on ``beta``, ``delta``, ``gamma`` and
every ``tau`` (so a study without DMT runs still gets a defined, uncertain
``delta``, and transfer is only fitted where the runs show it). Residuals are
weighted by each score's evaluation error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares
from scipy.special import expit

PARAMS = ("lo", "span", "mu", "beta", "delta", "gamma")  # then one "tau_<ability>" per other ability
# Weak priors (mean, sd): the slope of the paper's and the lab's curves lies between
# about 0.5 and 3 per doubling; a head start of a few doublings; no share effect;
# no transfer, with full transfer (tau = 1) two standard deviations away.
PRIORS = {"beta": (1.5, 2.0), "delta": (2.0, 3.0), "gamma": (0.0, 1.5)}
TAU_PRIOR_SD = 0.5
NOISE_FLOOR = 0.02  # a score's error never counts as smaller than this (in its own units)


@dataclass(frozen=True)
class LawInputs:
    """The law's inputs for one ability, one row per run."""

    last: np.ndarray  # examples of this ability in the final stage
    before: np.ndarray  # 1.0 when an earlier stage trained this ability
    others: np.ndarray  # share of the final stage that is other abilities' data
    other_last: np.ndarray  # [runs, len(sources)]: examples of each other ability in the final stage
    sources: tuple[str, ...] = ()  # the other abilities, in other_last's column order

    @property
    def x(self) -> np.ndarray:
        """log2(1 + examples of this ability in the final stage)."""
        return np.log2(1.0 + self.last)

    def names(self) -> tuple[str, ...]:
        return PARAMS + tuple(f"tau_{b}" for b in self.sources)

    def take(self, idx: np.ndarray | list[int]) -> LawInputs:
        """The rows ``idx`` (a boolean mask or indices, repeats allowed)."""
        return LawInputs(self.last[idx], self.before[idx], self.others[idx], self.other_last[idx], self.sources)


def law(theta: np.ndarray, inp: LawInputs) -> np.ndarray:
    """The law at ``theta``: the six base parameters, then one transfer fraction per source."""
    lo, span, mu, beta, delta, gamma = theta[: len(PARAMS)]
    amount = inp.last + inp.other_last @ theta[len(PARAMS):]
    z = beta * (np.log2(1.0 + amount) + delta * inp.before - mu) + gamma * inp.others
    return lo + span * expit(z)


@dataclass
class LawFit:
    theta: np.ndarray
    cost: float
    names: tuple[str, ...] = PARAMS
    # Parameters the runs themselves determine: the trace of the fit's hat matrix, between 0
    # (the priors decide everything) and the number of parameters (the priors decide nothing).
    dof: float = 0.0

    def predict(self, inp: LawInputs) -> np.ndarray:
        return law(self.theta, inp)

    def params(self) -> dict[str, float]:
        return {name: float(v) for name, v in zip(self.names, self.theta, strict=True)}


def _bounds(y: np.ndarray, x: np.ndarray, n_tau: int) -> tuple[np.ndarray, np.ndarray]:
    ymin, ymax = float(np.min(y)), float(np.max(y))
    r = max(ymax - ymin, 0.05)
    # Scores that are never negative (accuracies, pass rates, judge scores) keep a floor >= 0,
    # and scores within [0, 1] a rise of at most 1, where no run pins the curve's ends down.
    lo_min = max(ymin - r, 0.0) if ymin >= 0 else ymin - r
    span_max = 1.0 if ymin >= 0 and ymax <= 1 else 3.0 * r + abs(ymax)
    # Transfer: another ability's example counts as at most one of this ability's own.
    lower = np.concatenate([[lo_min, 0.0, 0.0, 0.05, 0.0, -6.0], np.zeros(n_tau)])
    # (ymax + a hair: every run may score the same, and the bounds must not meet)
    upper = np.concatenate([[ymax + 1e-6 * r, span_max, float(np.max(x)) + 8.0, 8.0, 12.0, 6.0], np.ones(n_tau)])
    return lower, upper


def fit_law(inp: LawInputs, y: np.ndarray, se: np.ndarray, start: np.ndarray | None = None,
            prior_shift: np.ndarray | None = None) -> LawFit:
    """Weighted least squares with weak priors; several starts unless one is given.

    ``prior_shift`` moves each prior's mean by that many of its standard deviations (in the
    order beta, delta, gamma, then every tau): a draw of the priors, for a replicate whose
    parameters the runs leave free to vary as the priors say (:func:`prior_count`)."""
    y = np.asarray(y, float)
    sigma = np.sqrt(np.asarray(se, float) ** 2 + NOISE_FLOOR**2)
    n_tau = len(inp.sources)
    lower, upper = _bounds(y, np.log2(1.0 + inp.last + inp.other_last.sum(axis=1)), n_tau)
    prior_idx = [PARAMS.index(p) for p in PRIORS] + list(range(len(PARAMS), len(PARAMS) + n_tau))
    prior_mean = np.array([PRIORS[p][0] for p in PRIORS] + [0.0] * n_tau)
    prior_sd = np.array([PRIORS[p][1] for p in PRIORS] + [TAU_PRIOR_SD] * n_tau)
    if prior_shift is not None:
        prior_mean = prior_mean + prior_sd * np.asarray(prior_shift, float)

    def residuals(theta: np.ndarray) -> np.ndarray:
        data = (law(theta, inp) - y) / sigma
        return np.concatenate([data, (theta[prior_idx] - prior_mean) / prior_sd])

    if start is not None:
        starts = [np.clip(start, lower, upper)]
    else:
        ymin, ymax = float(np.min(y)), float(np.max(y))
        qs = np.quantile(inp.x[inp.x > 0], [0.25, 0.5, 0.75]) if np.any(inp.x > 0) else [1.0]
        taus = (0.0, 0.3) if n_tau else (0.0,)
        starts = [np.clip(np.array([ymin, max(ymax - ymin, 0.05), q, b, 2.0, 0.0, *[t] * n_tau]), lower, upper)
                  for q in qs for b in (1.0, 3.0) for t in taus]
    best: LawFit | None = None
    for s0 in starts:
        try:
            res = least_squares(residuals, s0, bounds=(lower, upper), method="trf", max_nfev=400)
        except ValueError:  # trf's trust region can fail between bounds that nearly meet
            res = least_squares(residuals, s0, bounds=(lower, upper), method="dogbox", max_nfev=400)
        if best is None or res.cost < best.cost:
            best = LawFit(res.x, float(res.cost), inp.names(), _dof(np.asarray(res.jac), len(y)))
    assert best is not None
    return best


def prior_count(n_sources: int) -> int:
    """How many priors a law with ``n_sources`` other abilities has (the length of a prior shift)."""
    return len(PRIORS) + n_sources


def _dof(jac: np.ndarray, n: int) -> float:
    """The trace of the hat matrix J_data (J'J)^-1 J_data' of a fit whose Jacobian stacks ``n`` data
    rows over the prior rows: the effective number of parameters the data fix."""
    info = jac.T @ jac
    return float(np.trace(jac[:n] @ np.linalg.pinv(info) @ jac[:n].T))
