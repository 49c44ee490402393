"""Does ``sftmix optimise`` find the best composition a dense grid knows, for a fraction of its training,
where the answer is not "all the data", and better than simpler ways of choosing?

In the bench's own CPU lab (``bench/configs/suggest_*.yaml``: the calibrated lab
corpus with 50 held-out items per ability, two epochs) it trains a dense
reference grid -- multi-task mixtures with every ability at 1/8, 1/4, 1/2 and 1
of its data (64 runs) and DMT with k in {0, 1/32, 1/8, 1/4, 1/2, 1} -- in
``OUT/grid`` (every artefact cached there, so a rerun is cheap). Then, for each
*scenario* (a weighting of the abilities, a token budget on the recommended
composition as a fraction of the all-data composition's tokens, floors on
abilities; :data:`SCENARIOS`, plus any ``--scenario``), it runs ``sftmix
optimise`` from scratch in ``OUT/scenario-<name>`` with a spending budget of a
third of the grid's training tokens. An optimiser's study directory shares the
grid's artefact folders (links), so a run it asks for that the grid trained is
reused -- but it sees only its own runs and its tokens count every distinct
stage it asked for.

Seeds: every grid run is trained at seed 0, which is what every method sees.
The runs that decide a scenario (the ``--decide`` best that meet its
constraints, and every method's answer in it) are trained again at ``--seeds``
in ``OUT/seeds`` (the grid's artefacts linked, so seed 0 is reused) until the
best of each scenario are all at every seed; answers are judged by the mean over
the seeds a run has. More seeds later: ``--seeds 0,1,2,3`` trains only the new one.

Baselines, in the same run and at the tokens the optimiser spent
(:mod:`sftmix.suggest.benchmark`): random search over the same candidates
(``--random-seeds`` draws, 20 by default), a one-shot ridge regression over the
same random runs in RegMix's manner, and the all-data heuristic (multi-task with
every source whole, DMT at k = 1) where it fits the budget.

The last line is JSON: ``scenarios``, ``constrained_scenarios`` (scenarios whose
grid best is not an all-data run), ``regret_max``, ``all_within_interval`` (the
optimiser's answer within the grid best's 95% interval in every scenario),
``beats_random``, ``beats_all_data`` (fractions of scenarios; the latter of those
where the heuristic fits the budget), ``coverage`` (the mean over scenarios of the
share of grid runs the final fit never saw whose measured weighted score lies in
its 95% interval for one run) and ``tokens_fraction_max``; then per-scenario detail.

``--probe N`` runs only N grid runs (the cheapest multi-task, the full one and
DMT, ...) and prints the measured cost per run and the grid's projected cost.
``--quick`` does all of the above on a cut grid (fractions 1/8 and 1, k 0 and 1:
10 runs, a subset of the full grid's) with no extra seeds.

    python bench/suggest_bench.py [--out studies/suggest-bench] [--workers 2] [--probe 3 | --quick]
        [--seeds 0,1,2] [--decide 3] [--scenario "weights=general=1;floor=maths=0.5"] ...
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
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from sftmix.config import load_config
from sftmix.lab.cli import LAB_ENV, write_corpus
from sftmix.logging_setup import configure
from sftmix.results.data import load_results
from sftmix.results.pool import run_group
from sftmix.results.weights import weighted
from sftmix.study.config import StudyConfig
from sftmix.study.cost import source_stats
from sftmix.study.executor import make_executor
from sftmix.study.load import load_study
from sftmix.study.runner import run_study
from sftmix.suggest.benchmark import Grid, GridRun, all_data_answer, baselines, coverage, deciding
from sftmix.suggest.composition import MULTI_TASK, Composition
from sftmix.suggest.constraints import Constraints, Scenario, parse_scenario
from sftmix.suggest.model import fit_model
from sftmix.suggest.observations import observations
from sftmix.suggest.optimise import Optimiser, Outcome, Settings, plan_tokens
from sftmix.suggest.search import Space

HERE = Path(__file__).resolve().parent
# Written before the grid was measured: the three weightings of the first bench, two budgets
# within 0.2-0.5 of the all-data composition's tokens, and a floor on the specialist that the
# general-only weighting would otherwise starve.
SCENARIOS = [
    "name=equal;weights=maths=1,code=1,general=1",
    "name=maths3;weights=maths=3,code=1,general=1",
    "name=general3;weights=maths=1,code=1,general=3",
    "name=equal-b0.3;weights=maths=1,code=1,general=1;budget=0.3",
    "name=maths3-b0.3;weights=maths=3,code=1,general=1;budget=0.3",
    "name=general3-b0.5;weights=maths=1,code=1,general=3;budget=0.5",
    "name=general-floor;weights=general=1;floor=maths=0.5",
    "name=equal-b0.5-floor;weights=maths=1,code=1,general=1;budget=0.5;floor=code=0.3",
]
ARTEFACTS = ("models", "mixtures", "stages", "evals")
PREFIX = "grid-"
log = logging.getLogger("suggest_bench")


def runs_study(base: StudyConfig, comps: list[Composition], seeds: list[int] | None = None) -> StudyConfig:
    study = base.model_copy(deep=True)
    study.runs = [c.run_config(PREFIX) for c in comps]
    if seeds is not None:
        study.seeds = seeds
    return study


def probe_runs(space: Space, n: int) -> list[Composition]:
    """Cheap to dear: all at the lowest fraction, all at 1, DMT at a middle k, then the rest."""
    cands = space.candidates()
    low = Composition.multi_task(dict.fromkeys(space.abilities, min(space.fractions)), space.general)
    full = Composition.multi_task(dict.fromkeys(space.abilities, max(space.fractions)), space.general)
    dmt = next(c for c in cands if c.strategy == "dmt" and c.k and c.k > 0)
    order = [low, full, dmt, *(c for c in cands if c not in (low, full, dmt))]
    return order[:n]


def link_artefacts(grid_dir: Path, other: Path) -> None:
    other.mkdir(parents=True, exist_ok=True)
    for name in ARTEFACTS:
        (grid_dir / name).mkdir(parents=True, exist_ok=True)
        link = other / name
        if not link.exists():
            link.symlink_to((grid_dir / name).resolve(), target_is_directory=True)


def _group(comp: Composition, model: str) -> str:
    return f"runs/{PREFIX}{comp.name}/{model}"


def load_grid(grid_dir: Path, seeds_dir: Path | None, space: Space, model: str) -> Grid:
    """The grid's runs of ``space``: measured at seed 0 (``grid_dir``), judged by their mean over
    the seeds ``seeds_dir`` holds of them (seed 0 alone where it holds none)."""
    res = load_results(grid_dir)
    measured = {o.run: o for o in observations(res, model)}
    pooled, n_seeds = {}, {}
    if seeds_dir is not None and (seeds_dir / "results.sqlite").is_file():
        seeded = load_results(seeds_dir)
        pooled = {o.run: o for o in observations(seeded, model)}
        primary = seeded.primary
        n_seeds = primary.groupby("run")["n_seeds"].min().to_dict()
    stages = {}
    for run, keys in res.run_stages.items():
        stages.setdefault(run_group(run), tuple(keys))
    runs = {}
    for comp in space.candidates():
        g = _group(comp, model)
        if g not in measured:
            continue
        m, p = measured[g], pooled.get(g, measured[g])
        runs[comp] = GridRun(comp, m.features, m.scores, m.se, p.scores, p.se, stages[g],
                             int(n_seeds.get(g, 1)))
    return Grid(runs, {k: t for k, (_, t) in res.stage_data.items()})


def run_optimiser(base: StudyConfig, out: Path, grid_dir: Path, scenario: Scenario, cons: Constraints,
                  space: Space, budget: float, args: argparse.Namespace) -> Outcome:
    link_artefacts(grid_dir, out)
    settings = Settings(scenario.weights, budget, space, replicates=args.replicates, threshold=args.threshold,
                        floors=dict(cons.floors), run_budget=cons.budget)
    return Optimiser(base, out, settings, make_executor("local", base), progress=False).run()


def add_seeds(base: StudyConfig, grid_dir: Path, seeds_dir: Path, comps: list[Composition],
              seeds: list[int]) -> int:
    """Train ``comps`` at ``seeds`` in ``seeds_dir`` (with every run it held before); returns the
    number of jobs that ran."""
    seeds_dir.mkdir(parents=True, exist_ok=True)
    link_artefacts(grid_dir, seeds_dir)
    held = []
    if (seeds_dir / "study.yaml").is_file():
        held = load_config(seeds_dir / "study.yaml", StudyConfig).runs
    names = {r.name for r in held}
    study = runs_study(base, [], seeds)
    study.runs = held + [c.run_config(PREFIX) for c in comps if PREFIX + c.name not in names]
    started = time.monotonic()
    outcome = run_study(study, seeds_dir, make_executor("local", study))
    log.info("seeds %s of %d runs: %d jobs in %.0f s", seeds, len(study.runs), len(outcome.done),
             time.monotonic() - started)
    if not outcome.ok:
        raise SystemExit(f"the extra seeds did not finish; see 'sftmix status {seeds_dir}'")
    return len(outcome.done)


def judge(grid: Grid, scenario: Scenario, cons: Constraints, result: Outcome, model_name: str,
          grid_tokens: float, random_seeds: int, replicates: int) -> dict[str, Any]:
    """One scenario's row: the grid's best, the optimiser's answer, its calibration, the baselines."""
    w = scenario.weights
    if not grid.feasible(cons):
        return {"scenario": scenario.to_json(), "constraints": cons.to_json(), "feasible_runs": 0,
                "skipped": "no grid run meets the constraints"}
    by_group = {_opt_group(c, model_name): c for c in grid.runs}
    seen = {by_group[g] for rec in result.rounds for g in (rec.get("measured") or {}) if g in by_group}
    pick = by_group.get(result.best[0]) if result.best else None
    if pick is None and result.suggestion is not None and result.suggestion.recommended is not None:
        pick = result.suggestion.recommended.composition
    best = grid.best(w, cons)
    best_value, half = grid.value(best, w), grid.half_width(best, w)
    value = grid.judged(pick, w, cons)
    model = result.model or fit_model([grid.runs[c].observation() for c in seen], list(w), replicates)
    cov, n_unseen = coverage(model, grid, seen, w)
    unseen = [c for c in grid.runs if c not in seen]
    pred = weighted({a: d.mean(axis=0) for a, d in model.draws([grid.runs[c].features for c in unseen]).items()}, w)
    rho = float(spearmanr(pred, [float(weighted(grid.runs[c].measured, w)) for c in unseen]).statistic)
    base = baselines(grid, w, cons, result.tokens_spent, random_seeds)
    whole = all(f == 1.0 for _, f in best.fractions) and (best.strategy == MULTI_TASK or best.k == 1.0)
    return {
        "scenario": scenario.to_json(), "constraints": cons.to_json(), "feasible_runs": len(grid.feasible(cons)),
        "grid_best": {"run": best.name, "value": best_value, "half": half, "seeds": grid.runs[best].seeds},
        "grid_best_is_all_data": whole,
        "optimiser": {"run": None if pick is None else pick.name, "value": value, "regret": best_value - value,
                      "within": best_value - value <= half, "tokens_fraction": result.tokens_spent / grid_tokens,
                      "runs": len(seen), "rounds": len(result.rounds), "stop": result.stop,
                      "seeds": grid.runs[pick].seeds if pick in grid.runs else 0},
        "coverage": cov, "unseen": n_unseen, "spearman": rho,
        "random": {"mean": float(np.mean(base.random_values)), "sd": float(np.std(base.random_values)),
                   "seeds": len(base.random_values), "regret": best_value - float(np.mean(base.random_values))},
        "regression": {"mean": float(np.mean(base.regression_values)),
                       "regret": best_value - float(np.mean(base.regression_values))},
        "all_data": None if base.all_data is None else
        {"run": base.all_data.name, "value": base.all_data_value, "regret": best_value - base.all_data_value},  # type: ignore[operator]
        "beats_random": value >= float(np.mean(base.random_values)) - 1e-12,
        "beats_regression": value >= float(np.mean(base.regression_values)) - 1e-12,
        "beats_all_data": None if base.all_data_value is None else value >= base.all_data_value - 1e-12,
    }


def _opt_group(comp: Composition, model: str) -> str:
    return f"runs/opt-{comp.name}/{model}"


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's figures over the scenarios that some grid run can meet."""
    rows = [r for r in rows if "skipped" not in r]
    applies = [r["beats_all_data"] for r in rows if r["beats_all_data"] is not None]
    covs = [r["coverage"] for r in rows if not math.isnan(r["coverage"])]
    return {
        "scenarios": len(rows),
        "constrained_scenarios": sum(not r["grid_best_is_all_data"] for r in rows),
        "regret_max": max(r["optimiser"]["regret"] for r in rows),
        "all_within_interval": all(r["optimiser"]["within"] for r in rows),
        "beats_random": sum(r["beats_random"] for r in rows) / len(rows),
        "beats_all_data": sum(applies) / len(applies) if applies else None,
        "beats_regression": sum(r["beats_regression"] for r in rows) / len(rows),
        "coverage": float(np.mean(covs)) if covs else None,
        "coverage_min": min(covs) if covs else None,
        "tokens_fraction_max": max(r["optimiser"]["tokens_fraction"] for r in rows),
        "spearman_min": min(r["spearman"] for r in rows),
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    print("| scenario | feasible runs | grid best (seeds) | optimiser | regret | tokens | coverage | "
          "random search (mean of N) | one-shot regression | all data |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "skipped" in r:
            print(f"| {r['scenario']['name']} | 0 | {r['skipped']} | | | | | | | |")
            continue
        g, o = r["grid_best"], r["optimiser"]
        alld = "n/a (over budget)" if r["all_data"] is None else f"{r['all_data']['value']:.3f}"
        print(f"| {r['scenario']['name']} | {r['feasible_runs']} | {g['value']:.3f} ± {g['half']:.3f} "
              f"{g['run']} ({g['seeds']}) | {o['value']:.3f} {o['run']} | {o['regret']:.3f}"
              f"{'' if o['within'] else ' (outside)'} | {o['tokens_fraction']:.2f} | "
              f"{r['coverage']:.2f} ({r['unseen']}) | {r['random']['mean']:.3f} ± {r['random']['sd']:.3f} | "
              f"{r['regression']['mean']:.3f} | {alld} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("studies/suggest-bench"))
    ap.add_argument("--study", type=Path, default=HERE / "configs" / "suggest_study.yaml",
                    help="the lab study whose grid is trained (default: the bench's; its data are the "
                         "bench's corpus, ${SFTMIX_LAB_DIR})")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--probe", type=int, help="run only this many grid runs and report the cost per run")
    ap.add_argument("--quick", action="store_true", help="a cut grid (fractions 1/8 and 1, k 0 and 1), seed 0 only")
    ap.add_argument("--replicates", type=int, default=100)
    ap.add_argument("--threshold", type=float, default=Settings.threshold,
                    help="the optimiser's stopping threshold on the expected gain (default: sftmix "
                         "optimise's); another value optimises in OUT/scenario-t<threshold>-<name>")
    ap.add_argument("--scenario", action="append", default=[],
                    help='another scenario, e.g. "weights=general=1;budget=0.4;floor=maths=0.5" (repeatable)')
    ap.add_argument("--seeds", default=None, help="seeds of the runs that decide a scenario (default 0,1,2; "
                    "--quick: 0)")
    ap.add_argument("--decide", type=int, default=3, help="the best N runs of each scenario get every seed")
    ap.add_argument("--random-seeds", type=int, default=20, help="draws of random search (default 20)")
    args = ap.parse_args()
    configure(0)
    corpus = write_corpus(args.out / "corpus", HERE / "configs" / "suggest_corpus.yaml")
    os.environ[LAB_ENV] = str(corpus.resolve())
    base = load_study(args.study)
    base.workers = args.workers
    full = Space(list(base.abilities), general=base.general)
    space = Space(full.abilities, (1 / 8, 1.0), (0.0, 1.0), base.general) if args.quick else full
    stats = source_stats(base)
    grid_tokens = plan_tokens(runs_study(base, full.candidates()), stats)
    grid_dir, model_name = args.out / "grid", base.models[0].name
    scenarios = [parse_scenario(s, full.abilities) for s in [*SCENARIOS, *args.scenario]]
    seeds = [int(s) for s in (args.seeds or ("0" if args.quick else "0,1,2")).split(",")]
    print(f"grid: {len(space.candidates())} runs ({len(full.candidates())} in the full grid, "
          f"{grid_tokens / 1e6:.1f}M training tokens, estimated at 4 characters each)")

    if args.probe:
        return probe(base, space, grid_dir, stats, grid_tokens, args.probe)

    started = time.monotonic()
    grid_study = runs_study(base, space.candidates())
    outcome = run_study(grid_study, grid_dir, make_executor("local", grid_study))
    if not outcome.ok:
        print(f"the grid did not finish; see 'sftmix status {grid_dir}'", file=sys.stderr)
        return 1
    print(f"grid complete in {time.monotonic() - started:.0f} s ({len(outcome.skipped)} jobs cached)")
    grid = load_grid(grid_dir, None, space, model_name)
    all_data = grid.cost(Composition.multi_task(dict.fromkeys(space.abilities, 1.0), space.general))

    tag = ("quick-" if args.quick else "") + ("" if args.threshold == Settings.threshold else f"t{args.threshold:g}-")
    results = {}
    for sc in scenarios:
        cons = sc.constraints(all_data)
        results[sc.name] = run_optimiser(base, args.out / f"scenario-{tag}{sc.name}", grid_dir, sc, cons, space,
                                         grid_tokens / 3, args)
        print(f"{sc.name}: stopped ({results[sc.name].stop}) after {len(results[sc.name].rounds)} rounds")

    seeds_dir = args.out / "seeds"
    if len(seeds) > 1:
        grid = settle_seeds(base, grid_dir, seeds_dir, space, model_name, scenarios, results, all_data, seeds,
                            args.decide)
    rows = [judge(grid, sc, sc.constraints(all_data), results[sc.name], model_name, grid_tokens,
                  args.random_seeds, args.replicates) for sc in scenarios]
    print_table(rows)
    print(json.dumps(summarise(rows) | {"skipped_scenarios": sum("skipped" in r for r in rows), "grid_runs": len(grid.runs), "seeds": seeds,
                                        "runs_with_every_seed": sum(r.seeds >= len(seeds) for r in grid.runs.values()),
                                        "per_scenario": rows}))
    return 0


def settle_seeds(base: StudyConfig, grid_dir: Path, seeds_dir: Path, space: Space, model_name: str,
                 scenarios: list[Scenario], results: dict[str, Outcome], all_data: float, seeds: list[int],
                 decide: int) -> Grid:
    """Train every seed of the runs that decide a scenario until the best ``decide`` of each, by the
    mean over their seeds, all have every seed (at most four passes)."""
    grid = load_grid(grid_dir, seeds_dir, space, model_name)
    by_group = {_opt_group(c, model_name): c for c in grid.runs}
    answers = {by_group[r.best[0]] for r in results.values() if r.best and r.best[0] in by_group}
    answers |= {c for sc in scenarios if (c := all_data_answer(grid, sc.weights, sc.constraints(all_data)))}
    for _ in range(4):
        wanted = set(answers)
        for sc in scenarios:
            wanted |= set(deciding(grid, sc.weights, sc.constraints(all_data), decide))
        missing = [c for c in space.candidates() if c in wanted and grid.runs[c].seeds < len(seeds)]
        if not missing:
            break
        print(f"seeds {seeds} for {len(missing)} runs: {', '.join(c.name for c in missing)}")
        add_seeds(base, grid_dir, seeds_dir, missing, seeds)
        grid = load_grid(grid_dir, seeds_dir, space, model_name)
    return grid


def probe(base: StudyConfig, space: Space, grid_dir: Path, stats: dict[str, Any], grid_tokens: float,
          n: int) -> int:
    chosen = probe_runs(space, n)
    study = runs_study(base, chosen)
    started = time.monotonic()
    outcome = run_study(study, grid_dir, make_executor("local", study))
    wall = time.monotonic() - started
    tokens = plan_tokens(study, stats)
    print(f"probe: {len(chosen)} runs ({', '.join(c.describe() for c in chosen)}) in {wall:.0f} s, "
          f"{tokens / 1e6:.2f}M training tokens; {len(outcome.skipped)} jobs were already complete")
    print(json.dumps({"probe_runs": len(chosen), "wall_s": round(wall, 1), "tokens": tokens,
                      "s_per_run": round(wall / len(chosen), 1), "grid_runs": len(space.candidates()),
                      "grid_tokens": grid_tokens, "cached_jobs": len(outcome.skipped)}))
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
