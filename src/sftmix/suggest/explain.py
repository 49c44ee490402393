"""A recommendation in words: what makes it best, what it costs, and why each next run is worth its tokens.

The numbers behind each sentence come from the fitted model, never from a
template: the measured runs nearest the recommendation (and their scores), the
fitted effects at the recommendation (what halving an ability's own data would
cost, the transfer from other abilities' data, the other abilities' share, DMT's
head start), the runner-up and how often the replicates rank it lower, the
cheapest candidate that the model cannot tell from the recommendation, and for
each proposed run its expected gain per million tokens, its chance to beat the
best measured run and the ability whose uncertainty it would resolve.
"""

from __future__ import annotations

import numpy as np

from sftmix.results.weights import weighted
from sftmix.suggest.composition import Features, features_of
from sftmix.suggest.model import Observation, ResponseModel
from sftmix.suggest.search import Prediction, Suggestion

NEAREST = 3


def nearest_runs(model: ResponseModel, feats: Features, n: int = NEAREST) -> list[Observation]:
    """The measured runs closest to ``feats`` in log amounts (final stage and earlier stages)."""
    here = np.array(feats.position(model.abilities))
    dist = [float(np.linalg.norm(np.array(o.features.position(model.abilities)) - here))
            for o in model.observations]
    return [model.observations[i] for i in np.argsort(dist, kind="stable")[:n]]


def _halved(f: Features, ability: str) -> Features:
    return Features({**f.last, ability: f.last[ability] / 2}, dict(f.prior))


def effects(model: ResponseModel, feats: Features, weights: dict[str, float]) -> list[str]:
    """The fitted effects at ``feats``, one phrase per weighted ability."""
    out = []
    # The mean over the replicates, as every printed prediction (the single fit can differ).
    draws = model.draws([feats, *(_halved(feats, a) for a in model.abilities)])
    mean = {a: d.mean(axis=0) for a, d in draws.items()}
    for i, a in enumerate(model.abilities):
        if not weights.get(a):
            continue
        m = model.models[a]
        parts = [f"{a} {mean[a][0]:.3f}"]
        if feats.last.get(a, 0.0) > 0:
            parts.append(f"halving its data would cost {mean[a][0] - mean[a][1 + i]:.3f}")
        if m.kind == "law" and m.law is not None:
            p = m.law.params()
            taus = [(b, p[f"tau_{b}"]) for b in model.abilities
                    if b != a and p.get(f"tau_{b}", 0.0) >= 0.1 and feats.last.get(b, 0.0) > 0]
            parts += [f"each {b} example counts as {t:.2f} of its own (transfer)" for b, t in taus]
            share = 1.0 - feats.last.get(a, 0.0) / max(feats.total_last(), 1.0)
            if abs(p["gamma"]) >= 0.2 and share > 0:
                kind = "lowers" if p["gamma"] < 0 else "raises"
                parts.append(f"the other abilities' share of the final stage ({share:.0%}) {kind} it "
                             f"(gamma {p['gamma']:+.2f})")
            if feats.prior.get(a, 0.0) > 0:
                parts.append(f"an earlier stage trained it: a head start of {p['delta']:.1f} doublings")
        else:
            parts.append("a Gaussian process (the law fits it worse)")
        out.append(", ".join(parts))
    return out


def recommendation(sug: Suggestion, model: ResponseModel, sizes: dict[str, int]) -> list[str]:
    """Sentences on the recommended composition: the runs and effects behind it, and its cost."""
    rec = sug.recommended
    if rec is None:
        return []
    feats = features_of(rec.composition.recipes(), sizes)
    near = nearest_runs(model, feats)
    runs = "; ".join(f"{o.run} (weighted {float(weighted(o.scores, sug.weights)):.3f})" for o in near)
    lines = [f"It is {'itself measured, and' if rec.measured else 'not measured yet;'} the measured runs "
             f"nearest it are {runs}.",
             "Fitted effects there: " + "; ".join(effects(model, feats, sug.weights)) + "."]
    rivals = sorted((p for p in sug.predictions if p.feasible and p is not rec), key=lambda p: -p.mean)
    if rivals:
        r = rivals[0]
        lines.append(f"The runner-up, {r.composition.describe()}, is predicted {r.mean:.3f} "
                     f"({rec.mean - r.mean:.3f} lower).")
    cheap = sug.cheapest_equivalent
    if cheap is not None and cheap is not rec and cheap.tokens < rec.tokens:
        lines.append(f"The cheapest candidate the model cannot tell apart from it is {cheap.composition.describe()}: "
                     f"{cheap.tokens / 1e6:.2f}M training tokens, {cheap.tokens / rec.tokens:.2f} of the "
                     f"recommendation's {rec.tokens / 1e6:.2f}M, predicted {cheap.mean:.3f} "
                     f"[{cheap.low:.3f}, {cheap.high:.3f}].")
    elif cheap is not None:
        lines.append(f"No cheaper candidate is within the model's uncertainty of it: at "
                     f"{rec.tokens / 1e6:.2f}M training tokens it is the cheapest of those it cannot tell apart.")
    return lines


def next_run(p: Prediction, sug: Suggestion, model: ResponseModel, sizes: dict[str, int]) -> str:
    """Why a proposed run is worth its tokens."""
    widest = max((a for a in p.abilities if sug.weights.get(a)),
                 key=lambda a: sug.weights[a] * (p.abilities[a][2] - p.abilities[a][1]))
    lo, hi = p.abilities[widest][1:]
    near = nearest_runs(model, features_of(p.composition.recipes(), sizes), 1)
    best = "the best measured run" if sug.best_measured is None else \
        f"the best measured run ({sug.best_measured[1]:.3f})"
    floors = "" if not sug.constraints.floors else " while reaching every floor"
    return (f"expected gain {p.gain:.4f} for {p.tokens / 1e6:.2f}M tokens ({p.gain / max(p.tokens / 1e6, 1e-9):.4f} "
            f"per million); it beats {best}{floors} in {p.p_beats:.0%} of the replicates; the largest "
            f"uncertainty it would resolve is {widest} ([{lo:.3f}, {hi:.3f}]), nearest measured run "
            f"{near[0].run if near else 'none'}")
