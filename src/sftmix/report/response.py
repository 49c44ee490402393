"""The report's response-model section: fitted curves with their runs, held-out predictions, the choice.

The response model of ``sftmix.suggest`` is fitted on every run of the study
with a score for each ability. Three views:

* each ability's score against the examples of its data in the final stage,
  the runs as points (triangles: runs whose earlier stage already trained the
  ability, DMT's replay) and two fitted curves with their bootstrap bands --
  the ability trained alone, and all abilities mixed at the same amount;
* each run's scores predicted by the law fitted on all the *other* runs
  (leave-one-out) against what was measured, with the rank correlation;
  when the study directory holds optimiser rounds, their predictions made
  before the run are listed against what the run then measured;
* the recommended composition for the report's weights with its predicted
  scores and intervals, and the next runs with the largest expected gain.
"""

from __future__ import annotations

import json
import logging
import math
from typing import TYPE_CHECKING

import numpy as np

from sftmix.report.plotting import COLORS, FigureOut, new_figure, skipped, to_png
from sftmix.report.tables import Estimate, Table
from sftmix.results.data import StudyResults

if TYPE_CHECKING:
    from sftmix.suggest.model import Observation, ResponseModel
    from sftmix.suggest.search import Suggestion

log = logging.getLogger(__name__)

MIN_RUNS = 4
TITLE_CURVES = "Fitted response of each ability"
TITLE_HELDOUT = "Predicted against measured on runs the fit did not see"


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def response_section(res: StudyResults, weights: dict[str, float], replicates: int = 50
                     ) -> tuple[str, list[FigureOut], list[Table]]:
    """Text, figures and tables of the section (figures replaced by notes when it cannot be fitted)."""
    from sftmix.errors import SftmixError
    from sftmix.suggest.model import fit_model, loo_predictions
    from sftmix.suggest.observations import observations, recorded_sizes
    from sftmix.suggest.search import Space, suggest

    def skip(note: str) -> tuple[str, list[FigureOut], list[Table]]:
        return "", [skipped("response_curves", TITLE_CURVES, note),
                    skipped("response_heldout", TITLE_HELDOUT, note)], []

    try:
        sizes = recorded_sizes(res)
    except SftmixError as exc:
        return skip(f"{exc}.")
    obs = observations(res)
    if len(obs) < MIN_RUNS:
        return skip(f"{len(obs)} runs have a score for every ability; the response model needs {MIN_RUNS}.")
    abilities = res.abilities
    model = fit_model(obs, abilities, replicates, seed=0)
    held = loo_predictions(obs, abilities)
    space = Space(abilities, general=res.general)
    epochs = float(res.study.training.get("epochs", 3.0))
    sug = suggest(model, space, weights, sizes.examples, sizes.tokens_per_example, epochs, n_next=3)
    figures = [_curves(model, obs, sizes.examples, res.general), _heldout(obs, held)]
    tables = [_fit_table(model, obs, held), _choice_table(sug)]
    rounds = _rounds_table(res)
    if rounds is not None:
        tables.append(rounds)
    kinds = ", ".join(f"{a}: {'law' if m.kind == 'law' else 'Gaussian process'}" for a, m in model.models.items())
    text = (f"Each ability's score is modelled as a saturating curve in the log of the examples of its "
            f"data in the final stage, with a head start when an earlier stage trained it (DMT) and a "
            f"term for the other abilities' share (see docs/suggest.md); a Gaussian process replaces "
            f"the law for an ability where it predicts held-out runs clearly better. Fitted on "
            f"{len(obs)} runs ({kinds}); intervals are 95% bootstrap intervals over runs and "
            f"evaluation items. Weighted scores are the weighted mean of the abilities' predicted "
            f"scores, on the same scale as the trade-off's where every metric lies in [0, 1].")
    return text, figures, tables


def _curves(model: ResponseModel, obs: list[Observation], sizes: dict[str, int],
            general: str | None) -> FigureOut:
    from sftmix.suggest.composition import Features

    abilities = model.abilities
    fig, axes = new_figure(len(abilities))
    top = max(sizes.values())
    grid = np.unique(np.geomspace(max(1.0, top / 256), max(sizes.values()), 40).round())
    for ax, a in zip(axes, abilities, strict=True):
        curves = [("alone", [Features({b: (n if b == a else 0.0) for b in abilities}, dict.fromkeys(abilities, 0.0))
                             for n in grid]),
                  ("all abilities mixed equally", [Features(dict.fromkeys(abilities, n), dict.fromkeys(abilities, 0.0))
                                                   for n in grid])]
        if any(o.features.prior.get(a, 0.0) > 0 for o in obs) and general not in (None, a):
            # DMT: all specialist data in stage 1, then all general data and a fraction k of it replayed.
            assert general is not None
            spec = [b for b in abilities if b != general]
            curves.append(("DMT replay after the specialist stage", [
                Features({**{b: n / sizes[a] * sizes[b] for b in spec}, general: float(sizes[general])},
                         {**{b: float(sizes[b]) for b in spec}, general: 0.0})
                for n in grid if n <= sizes[a]]))
        for j, (label, feats) in enumerate(curves):
            grid_x = [f.last[a] for f in feats]
            mean = model.predict(feats)[a]
            lo, hi = np.percentile(model.draws(feats)[a], [2.5, 97.5], axis=0)
            color = COLORS[(0, 1, 3)[j]]
            ax.plot(grid_x, mean, color=color, label=f"fit: {label}")
            ax.fill_between(grid_x, lo, hi, color=color, alpha=0.15, linewidth=0)
        for o in obs:
            x = max(o.features.last.get(a, 0.0), 1.0)
            before = o.features.prior.get(a, 0.0) > 0
            alone = o.features.total_last() == o.features.last.get(a, 0.0)
            ax.errorbar([x], [o.scores[a]], yerr=[[1.96 * o.se[a]], [1.96 * o.se[a]]], fmt="^" if before else "o",
                        color="#333333" if alone else COLORS[2], markersize=4, capsize=2, alpha=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xlabel(f"{a} examples in the final stage")
        ax.set_ylabel(f"{a} score")
        ax.set_title(f"{a} ({model.models[a].kind})", fontsize=9)
        ax.legend(fontsize=7, loc="best")
    caption = ("Points: runs (black: the ability alone in the final stage; green: mixed with others; "
               "triangles: an earlier stage trained it), with 95% intervals. Lines: the fitted response "
               "for the ability alone, for all abilities mixed at the same amount and, where the study has "
               "DMT runs, for DMT's replay after the specialist stage, with 95% bootstrap bands.")
    return FigureOut("response_curves", TITLE_CURVES, caption, png=to_png(fig))


def _heldout(obs: list[Observation], held: dict[str, np.ndarray]) -> FigureOut:
    fig, axes = new_figure(1, width=4.6, height=4.2)
    ax = axes[0]
    lo, hi = math.inf, -math.inf
    for i, (a, pred) in enumerate(held.items()):
        measured = np.array([o.scores[a] for o in obs])
        rho = _spearman(pred, measured)
        ax.scatter(measured, pred, s=14, color=COLORS[i % len(COLORS)], label=f"{a} (Spearman {rho:.2f})")
        lo, hi = min(lo, measured.min(), pred.min()), max(hi, measured.max(), pred.max())
    ax.plot([lo, hi], [lo, hi], color="#888888", linestyle=":", linewidth=1)
    ax.set_xlabel("measured")
    ax.set_ylabel("predicted without this run")
    ax.legend(fontsize=7, loc="best")
    return FigureOut("response_heldout", TITLE_HELDOUT,
                     "Each run predicted by the law fitted on all the other runs (leave-one-out).", png=to_png(fig))


def _fit_table(model: ResponseModel, obs: list[Observation], held: dict[str, np.ndarray]) -> Table:
    from sftmix.suggest.law import PARAMS

    table = Table("response_fit", "Fitted response per ability",
                  ["ability", "model", *PARAMS, "transfer (tau) from", "held-out RMSE", "Spearman (held-out)"],
                  caption="Law parameters (see docs/suggest.md); transfer: the fraction of another ability's "
                          "examples that counts as this ability's own; held-out: leave-one-out over the runs.")
    for a, m in model.models.items():
        measured = np.array([o.scores[a] for o in obs])
        rmse = float(np.sqrt(np.mean((held[a] - measured) ** 2)))
        params = m.law.params() if m.law is not None else {}
        transfer = ", ".join(f"{p.removeprefix('tau_')} {v:.2f}" for p, v in params.items() if p.startswith("tau_"))
        table.rows.append([a, m.kind, *(params.get(p) for p in PARAMS), transfer or None, rmse,
                           _spearman(held[a], measured)])
    return table


def _choice_table(sug: Suggestion) -> Table:
    weights = ", ".join(f"{a}={w:g}" for a, w in sug.weights.items())
    rows = ([("recommended", sug.recommended)] if sug.recommended else []) + [("next run", p) for p in sug.next_runs]
    abilities = list(sug.recommended.abilities) if sug.recommended else []
    table = Table("response_choice", f"Recommended composition for the weighting {weights}",
                  ["role", "composition", "weighted scaled score (predicted)", *(f"{a} (predicted)" for a in abilities),
                   "training tokens", "expected gain", "measured"],
                  caption="Predictions with 95% bootstrap intervals; expected gain: the mean improvement "
                  "over the best measured run a new run would bring.")
    for role, p in rows:
        table.rows.append([role, p.composition.describe(), Estimate(p.mean, p.low, p.high),
                           *(Estimate(*p.abilities[a]) for a in abilities), round(p.tokens), p.gain, p.measured])
    return table


def _rounds_table(res: StudyResults) -> Table | None:
    from sftmix.suggest.optimise import read_rounds

    rounds = read_rounds(res.study_dir) if (res.study_dir / "optimise").is_dir() else []
    if not rounds:
        return None
    table = Table("optimise_rounds", "Optimiser rounds",
                  ["round", "run", "predicted weighted (before the run)", "measured weighted", "tokens spent"],
                  caption="Round 0 is the initial design (no prediction); later rounds were chosen by "
                  "expected gain. Tokens: the training tokens of all distinct stages up to that round.")
    for rec in rounds:
        for run in rec["runs"]:
            pred = (run.get("predicted") or {}).get("weighted")
            measured = next((m["weighted"] for name, m in (rec.get("measured") or {}).items()
                             if name.startswith(f"runs/{run['run']}/")), None)
            table.rows.append([rec["round"], run["run"],
                               None if pred is None else Estimate(pred["mean"], pred["low"], pred["high"]),
                               measured, rec.get("tokens_spent")])
    log.debug("optimiser rounds: %s", json.dumps([r["round"] for r in rounds]))
    return table
