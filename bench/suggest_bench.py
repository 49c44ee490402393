"""Does ``sftmix optimise`` find the grid's best composition for a fraction of its training?

In the bench's own CPU lab (``bench/configs/suggest_*.yaml``: the calibrated lab
corpus with 50 held-out items per ability, two epochs) it runs a dense reference
grid -- multi-task mixtures with every ability at 1/8, 1/4, 1/2 and 1 of its data
(64 runs) and DMT with k in {0, 1/32, 1/8, 1/4, 1/2, 1} -- in ``OUT/grid`` (every
artefact cached there, so a rerun is cheap), then ``sftmix optimise`` from
scratch for three weightings, each in ``OUT/opt-<name>`` with a budget of a third
of the grid's training tokens. An optimiser's study directory shares the grid's
artefact folders (``models``, ``mixtures``, ``stages``, ``evals`` are links), so a
run it asks for that the grid trained is reused -- but it sees only its own runs
and its tokens count every distinct stage it asked for.

For each weighting it prints the optimiser's measured weighted score (its best
run), the grid's best with its 95% interval, and the fraction of the grid's
training tokens the optimiser spent; the last line is JSON with ``regret`` (grid
best minus the optimiser's, the worst of the three), ``tokens_fraction`` (the
largest) and ``spearman`` (rank correlation of predicted and measured weighted
scores on the grid runs each optimiser's final fit never saw; the lowest). The
prediction is the one ``sftmix suggest`` reports: the mean over the model's
bootstrap replicates.

``--probe N`` runs only N grid runs (the cheapest multi-task, the full one and
DMT, ...) and prints the measured cost per run and the grid's projected cost,
for a machine where the whole grid does not fit.

    python bench/suggest_bench.py [--out studies/suggest-bench] [--workers 2] [--probe 3 | --quick]
                                  [--threshold 0.005]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from pathlib import Path

from scipy.stats import spearmanr

from sftmix.lab.cli import LAB_ENV, write_corpus
from sftmix.logging_setup import configure
from sftmix.results.weights import weighted
from sftmix.study.config import StudyConfig
from sftmix.study.cost import source_stats
from sftmix.study.executor import make_executor
from sftmix.study.load import load_study
from sftmix.study.runner import run_study
from sftmix.suggest.composition import Composition
from sftmix.suggest.model import Observation, fit_model
from sftmix.suggest.observations import study_observations
from sftmix.suggest.optimise import Optimiser, Settings, plan_tokens
from sftmix.suggest.search import Space

HERE = Path(__file__).resolve().parent
WEIGHTINGS = {
    "equal": {"maths": 1.0, "code": 1.0, "general": 1.0},
    "maths3": {"maths": 3.0, "code": 1.0, "general": 1.0},
    "general3": {"maths": 1.0, "code": 1.0, "general": 3.0},
}
ARTEFACTS = ("models", "mixtures", "stages", "evals")
log = logging.getLogger("suggest_bench")


def grid_study(base: StudyConfig, space: Space) -> StudyConfig:
    study = base.model_copy(deep=True)
    study.runs = [c.run_config("grid-") for c in space.candidates()]
    return study


def probe_runs(space: Space, n: int) -> list[Composition]:
    """Cheap to dear: all at 1/8, all at 1, DMT at a middle k, then the rest of the grid."""
    cands = space.candidates()
    low = Composition.multi_task(dict.fromkeys(space.abilities, min(space.fractions)), space.general)
    full = Composition.multi_task(dict.fromkeys(space.abilities, max(space.fractions)), space.general)
    dmt = next(c for c in cands if c.strategy == "dmt" and c.k and c.k > 0)
    order = [low, full, dmt, *(c for c in cands if c not in (low, full, dmt))]
    return order[:n]


def link_artefacts(grid_dir: Path, opt_dir: Path) -> None:
    opt_dir.mkdir(parents=True, exist_ok=True)
    for name in ARTEFACTS:
        (grid_dir / name).mkdir(parents=True, exist_ok=True)
        link = opt_dir / name
        if not link.exists():
            link.symlink_to((grid_dir / name).resolve(), target_is_directory=True)


def weighted_interval(o: Observation, w: dict[str, float]) -> tuple[float, float]:
    value = float(weighted(o.scores, w))
    half = 1.96 * math.sqrt(sum((w[a] * o.se[a]) ** 2 for a in w)) / sum(w.values())
    return value, half


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("studies/suggest-bench"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--probe", type=int, help="run only this many grid runs and report the cost per run")
    ap.add_argument("--quick", action="store_true", help="the same as --probe 1")
    ap.add_argument("--replicates", type=int, default=100)
    ap.add_argument("--threshold", type=float, default=Settings.threshold,
                    help="the optimiser's stopping threshold on the expected gain (default: sftmix "
                         "optimise's); another value optimises in OUT/opt-<weighting>-t<threshold>")
    args = ap.parse_args()
    if args.quick:
        args.probe = args.probe or 1
    configure(0)
    corpus = write_corpus(args.out / "corpus", HERE / "configs" / "suggest_corpus.yaml")
    os.environ[LAB_ENV] = str(corpus.resolve())
    base = load_study(HERE / "configs" / "suggest_study.yaml")
    base.workers = args.workers
    space = Space(list(base.abilities), general=base.general)
    grid = grid_study(base, space)
    stats = source_stats(base)
    grid_tokens = plan_tokens(grid, stats)
    grid_dir = args.out / "grid"
    print(f"grid: {len(grid.runs)} runs, {grid_tokens / 1e6:.1f}M training tokens (estimated, 4 characters each)")

    if args.probe:
        chosen = probe_runs(space, args.probe)
        study = base.model_copy(deep=True)
        study.runs = [c.run_config("grid-") for c in chosen]
        started = time.monotonic()
        outcome = run_study(study, grid_dir, make_executor("local", study))
        wall = time.monotonic() - started
        tokens = plan_tokens(study, stats)
        print(f"probe: {len(chosen)} runs ({', '.join(c.describe() for c in chosen)}) in {wall:.0f} s, "
              f"{tokens / 1e6:.2f}M training tokens; {len(outcome.skipped)} jobs were already complete")
        print(json.dumps({"probe_runs": len(chosen), "wall_s": round(wall, 1), "tokens": tokens,
                          "s_per_run": round(wall / len(chosen), 1), "grid_runs": len(grid.runs),
                          "grid_tokens": grid_tokens, "cached_jobs": len(outcome.skipped)}))
        return 0 if outcome.ok else 1

    started = time.monotonic()
    outcome = run_study(grid, grid_dir, make_executor("local", grid))
    if not outcome.ok:
        print(f"the grid did not finish; see 'sftmix status {grid_dir}'", file=sys.stderr)
        return 1
    print(f"grid complete in {time.monotonic() - started:.0f} s ({len(outcome.skipped)} jobs cached)")
    _, _, grid_obs = study_observations(grid_dir)
    by_name = {o.run: o for o in grid_obs}

    summary = {"regret": -math.inf, "tokens_fraction": 0.0, "spearman": math.inf}
    per = {}
    for name, w in WEIGHTINGS.items():
        best = max(grid_obs, key=lambda o: weighted(o.scores, w))
        g_value, g_half = weighted_interval(best, w)
        suffix = "" if args.threshold == Settings.threshold else f"-t{args.threshold:g}"
        opt_dir = args.out / f"opt-{name}{suffix}"
        link_artefacts(grid_dir, opt_dir)
        settings = Settings(w, grid_tokens / 3, space, replicates=args.replicates, threshold=args.threshold)
        result = Optimiser(base, opt_dir, settings, make_executor("local", base), progress=False).run()
        assert result.best is not None
        own = {r["run"] for rec in result.rounds for r in rec["runs"]}
        _, _, own_obs = study_observations(opt_dir)
        own_obs = [o for o in own_obs if o.run.split("/")[1] in own]
        model = fit_model(own_obs, space.abilities, args.replicates)
        seen = {o.features.key() for o in own_obs}
        unseen = [o for o in by_name.values() if o.features.key() not in seen]
        # The predicted score is the one `sftmix suggest` prints: the mean over the model's replicates
        # (for a handful of runs, the single least-squares fit is the noisier estimate).
        pred = {a: d.mean(axis=0) for a, d in model.draws([o.features for o in unseen]).items()}
        rho = float(spearmanr([weighted({a: pred[a][i] for a in w}, w) for i in range(len(unseen))],
                              [weighted(o.scores, w) for o in unseen]).statistic)
        frac = result.tokens_spent / grid_tokens
        regret = g_value - result.best[1]
        within = abs(regret) <= g_half
        print(f"{name} {w}: optimiser {result.best[1]:.3f} ({result.best[0]}, {len(result.rounds)} rounds, "
              f"stop: {result.stop}); grid best {g_value:.3f} ± {g_half:.3f} ({best.run}); "
              f"{'within' if within else 'outside'} its interval; tokens {frac:.2f} of the grid's; "
              f"Spearman on {len(unseen)} unseen grid runs {rho:.2f}")
        per[name] = {"optimiser": result.best[1], "grid_best": g_value, "grid_half": g_half, "regret": regret,
                     "within": within, "tokens_fraction": frac, "spearman": rho}
        summary["regret"] = max(summary["regret"], regret)
        summary["tokens_fraction"] = max(summary["tokens_fraction"], frac)
        summary["spearman"] = min(summary["spearman"], rho)
    summary["all_within_interval"] = all(p["within"] for p in per.values())
    print(json.dumps(summary | {"weightings": per}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
