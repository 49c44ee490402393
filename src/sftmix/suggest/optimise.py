"""The optimise loop: a few cheap runs, then suggest, run, refit -- until the expected gain is small.

Every round is a study file of its own (``STUDY_DIR/optimise/round-NNN.yaml``:
the user's study with its designs replaced by the free-form runs asked for so
far) run by the study executor (``sftmix.study.runner.run_study``), so shared
stages are trained once, a killed round resumes where it stopped, and an
executor such as SLURM runs the jobs. A round is recorded before it runs
(``round-NNN.json``, status ``planned``, with the model's predictions) and
marked ``done`` with the measured scores and the tokens spent; a rerun of the
same command resumes a planned round instead of choosing again.

Round 0 is a Latin square over the fraction levels (every ability at every
level once) plus DMT at the middle k; where some of them cost more than the
recommendation may (``run_budget``), the rest of round 0 is filled with the
affordable candidates farthest from those already chosen. Each later round asks
for the model's recommended composition (when not yet measured) and the
candidates with the largest expected gain, within the constraints (a run budget,
floors on abilities). The loop stops when the largest expected gain is below the
threshold and the recommendation is measured, when no candidate is worth a run
(none has an expected gain of at least ``search.MIN_GAIN``), when no wanted run
fits the remaining token budget, or after ``max_rounds``.

A directory is locked to the settings of its first round only once a round is
done: a first try that completed nothing can be run again with other settings.

Tokens spent are the training tokens of the distinct stages of all rounds
(a stage shared by two runs -- DMT's stage 1 -- counts once), counted as
``sftmix plan`` counts them (``sftmix.study.cost``: four characters per token,
``max_steps`` respected).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sftmix.artifacts import write_json_atomic, write_text_atomic
from sftmix.config import dump_yaml
from sftmix.errors import SftmixError
from sftmix.results.weights import weighted
from sftmix.study.config import StudyConfig
from sftmix.study.cost import SourceStats, plan_cost, source_stats
from sftmix.study.executor import Executor
from sftmix.study.plan import build_plan
from sftmix.suggest.composition import Composition, features_of
from sftmix.suggest.constraints import Constraints
from sftmix.suggest.model import Observation, ResponseModel, fit_model
from sftmix.suggest.observations import SourceSizes, study_observations
from sftmix.suggest.search import (
    MIN_GAIN,
    Space,
    Suggestion,
    best_measured,
    composition_tokens,
    suggest,
)
from sftmix.train.config import resolve_settings

log = logging.getLogger(__name__)

PREFIX = "opt-"


@dataclass
class Settings:
    weights: dict[str, float]
    budget: float
    space: Space
    batch: int = 2
    threshold: float = 0.005
    max_rounds: int = 8
    replicates: int = 100
    seed: int = 0
    floors: dict[str, float] = field(default_factory=dict)  # scores the recommendation must reach
    run_budget: float | None = None  # training tokens the recommended composition may cost

    @property
    def constraints(self) -> Constraints:
        return Constraints(self.run_budget, dict(self.floors))

    def to_json(self) -> dict[str, Any]:
        out = {"weights": self.weights, "budget_tokens": self.budget, "space": self.space.to_json(),
               "batch": self.batch, "threshold": self.threshold, "max_rounds": self.max_rounds,
               "replicates": self.replicates, "seed": self.seed}
        # Written only when set, so that a directory optimised without them still resumes.
        if self.floors:
            out["floors"] = self.floors
        if self.run_budget is not None:
            out["run_budget_tokens"] = self.run_budget
        return out


@dataclass
class Outcome:
    rounds: list[dict[str, Any]]
    stop: str
    tokens_spent: float
    best: tuple[str, float] | None  # the best measured run of the optimiser and its weighted score
    suggestion: Suggestion | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    model: ResponseModel | None = None  # the last fit (on every run of the optimiser)

    def to_json(self) -> dict[str, Any]:
        sug = self.suggestion
        return {"stop": self.stop, "tokens_spent": self.tokens_spent, "rounds": len(self.rounds),
                "best": None if self.best is None else {"run": self.best[0], "weighted": self.best[1]},
                "recommended": None if sug is None or sug.recommended is None else sug.recommended.to_json(),
                "cheapest_equivalent": None if sug is None or sug.cheapest_equivalent is None
                else sug.cheapest_equivalent.to_json(),
                "warnings": [] if sug is None else sug.warnings} | self.extra


def folder(study_dir: Path) -> Path:
    return study_dir / "optimise"


def read_rounds(study_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(folder(study_dir).glob("round-*.json"))]


def initial_design(space: Space, fits: Callable[[Composition], bool] | None = None,
                   sizes: dict[str, int] | None = None) -> list[Composition]:
    """A Latin square over the fraction levels, and DMT at the middle k.

    Where ``fits`` refuses some of them (they cost more than the recommendation may), as many
    affordable candidates take their places, each the farthest (in log amounts) from those
    chosen so far, so that round 0 still spans what the budget allows.
    """
    levels = sorted(space.fractions)
    comps = []
    for j in range(len(levels)):
        comps.append(Composition.multi_task(
            {a: levels[(i + j) % len(levels)] for i, a in enumerate(space.abilities)}, space.general))
    ks = sorted(k for k in space.ks if k > 0)
    if ks and space.general is not None and len(space.abilities) > 1:
        comps.append(Composition.dmt(dict.fromkeys(space.abilities, 1.0), ks[len(ks) // 2], space.general))
    if fits is None:
        return comps
    chosen = [c for c in comps if fits(c)]
    pool = [c for c in space.candidates() if fits(c) and c not in chosen]
    sizes = sizes or dict.fromkeys(space.abilities, 1024)
    where = {c: np.array(features_of(c.recipes(), sizes).position(space.abilities)) for c in [*chosen, *pool]}
    while len(chosen) < len(comps) and pool:
        if not chosen:
            pick = pool[0]  # the candidates come cheapest-fractions first
        else:
            pick = max(pool, key=lambda c: min(float(np.linalg.norm(where[c] - where[d])) for d in chosen))
        chosen.append(pick)
        pool.remove(pick)
    return chosen


def plan_tokens(study: StudyConfig, stats: dict[str, SourceStats]) -> float:
    """Training tokens of the distinct stages of a study's plan, as ``sftmix plan`` counts them."""
    return plan_cost(build_plan(study, hash_files=False), stats=stats).plan_tokens


def _round_study(base: StudyConfig, comps: list[Composition]) -> StudyConfig:
    study = base.model_copy(deep=True)
    study.runs = [c.run_config(PREFIX) for c in comps]
    return study


def _groups(base: StudyConfig, comps: list[Composition]) -> set[str]:
    return {f"runs/{PREFIX}{c.name}/{m.name}" for c in comps for m in base.models}


def check_settings(study_dir: Path, settings: Settings) -> None:
    """The settings of a directory's first round hold once a round is done; before that, a new
    command replaces them (and the rounds it had planned: their finished artefacts stay keyed)."""
    path = folder(study_dir) / "settings.json"
    new = json.loads(json.dumps(settings.to_json()))
    if path.exists():
        old = json.loads(path.read_text())
        if old == new:
            return
        if any(r.get("status") == "done" for r in read_rounds(study_dir)):
            raise SftmixError(
                f"{path}: this study directory was optimised with other settings ({json.dumps(old)}); "
                "run with the same --weights, --budget, --floor, --run-budget and search space to resume, "
                "or use a new study directory")
        log.warning("%s: no round of the earlier settings was completed; planning again with these", path)
        for planned in folder(study_dir).glob("round-*"):
            planned.unlink()
    write_json_atomic(path, new)


class Optimiser:
    def __init__(self, study: StudyConfig, study_dir: Path, settings: Settings,
                 executor: Executor | None = None, progress: bool = True,
                 on_round: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.on_round = on_round  # told of each round as it ends
        self.base = study.model_copy(deep=True)
        self.base.designs = {}
        self.base.runs = []
        self.study_dir = study_dir
        self.settings = settings
        self.executor = executor
        self.progress = progress
        self.stats = source_stats(self.base)
        self.sizes = SourceSizes({a: s.examples for a, s in self.stats.items()},
                                 {a: s.tokens_per_example for a, s in self.stats.items()}, False)
        self.training = resolve_settings(self.base.training)
        self.epochs = self.training.epochs

    # -- one round ---------------------------------------------------------------------
    def _run_round(self, record: dict[str, Any], comps_so_far: list[Composition]) -> dict[str, Any]:
        from sftmix.study.runner import run_study

        study = _round_study(self.base, comps_so_far)
        n = record["round"]
        write_text_atomic(folder(self.study_dir) / f"round-{n:03d}.yaml", dump_yaml(study.public_dump()))
        outcome = run_study(study, self.study_dir, self.executor, progress=self.progress)
        if outcome.interrupted:
            raise KeyboardInterrupt
        if not outcome.ok:
            raise SftmixError(f"round {n} of the optimiser: {len(outcome.failed)} job(s) failed "
                              f"(see {self.study_dir / 'jobs'}/*.failed.json and the logs in "
                              f"{self.study_dir / 'logs'}); fix the cause and run the same command to resume")
        own = [Composition.from_json(r["composition"]) for r in record["runs"]]
        _, _, obs = study_observations(self.study_dir, runs=_groups(self.base, own))
        record["measured"] = {o.run: {"scores": o.scores, "se": o.se,
                                      "weighted": float(weighted(o.scores, self.settings.weights))}
                              for o in obs}
        record["tokens_spent"] = plan_tokens(study, self.stats)
        record["status"] = "done"
        write_json_atomic(folder(self.study_dir) / f"round-{n:03d}.json", record)
        if self.on_round is not None:
            self.on_round(record)
        return record

    def _observations(self, comps: list[Composition]) -> list[Observation]:
        if not comps:
            return []
        _, _, obs = study_observations(self.study_dir, runs=_groups(self.base, comps))
        return obs

    def _affordable(self, wanted: list[Composition], done: list[Composition]) -> list[Composition]:
        """The wanted compositions, in order, that fit the remaining budget together."""
        chosen: list[Composition] = []
        for comp in wanted:
            if comp in chosen or comp in done:
                continue
            cost = plan_tokens(_round_study(self.base, [*done, *chosen, comp]), self.stats)
            if cost <= self.settings.budget:
                chosen.append(comp)
            if len(chosen) >= max(self.settings.batch, 1) and done:
                break
        return chosen

    # -- the loop ----------------------------------------------------------------------
    def run(self) -> Outcome:
        s = self.settings
        folder(self.study_dir).mkdir(parents=True, exist_ok=True)
        check_settings(self.study_dir, s)
        rounds = read_rounds(self.study_dir)
        comps = [Composition.from_json(r["composition"]) for rec in rounds for r in rec["runs"]]
        if rounds and rounds[-1]["status"] == "planned":
            log.info("resuming round %d", rounds[-1]["round"])
            rounds[-1] = self._run_round(rounds[-1], comps)
        sug: Suggestion | None = None
        model: ResponseModel | None = None
        stop = ""
        while not stop:
            obs = self._observations(comps)
            if not rounds:
                wanted, predicted = initial_design(s.space, self._fits, self.sizes.examples), {}
            else:
                model = fit_model(obs, s.space.abilities, s.replicates, s.seed)
                sug = suggest(model, s.space, s.weights, self.sizes.examples, self.sizes.tokens_per_example,
                              self.epochs, n_next=s.batch, constraints=s.constraints, training=self.training)
                rec = sug.recommended
                wanted = ([rec.composition] if rec is not None and not rec.measured else [])
                wanted += [p.composition for p in sug.next_runs]
                predicted = {p.composition.name: p.to_json() for p in sug.predictions
                             if p.composition in wanted}
                if sug.max_gain < s.threshold and (rec is None or rec.measured):
                    stop = f"expected gain {sug.max_gain:.4f} below the threshold {s.threshold}"
                    break
                if not wanted:
                    stop = (f"no run is worth its tokens (no candidate within the constraints has an expected "
                            f"gain of {MIN_GAIN} or more)")
                    break
            if len(rounds) >= s.max_rounds:
                stop = f"{s.max_rounds} rounds"
                break
            chosen = self._affordable(wanted, comps)
            if not chosen:
                stop = "the token budget is spent (no wanted run fits what is left)"
                break
            record = {"round": len(rounds), "status": "planned",
                      "runs": [{"run": PREFIX + c.name, "composition": c.to_json(),
                                "describe": c.describe(), "predicted": predicted.get(c.name)} for c in chosen],
                      "expected_gain": None if sug is None else sug.max_gain}
            write_json_atomic(folder(self.study_dir) / f"round-{len(rounds):03d}.json", record)
            comps += chosen
            rounds.append(self._run_round(record, comps))
        obs = self._observations(comps)
        best = best_measured(obs, s.weights, s.constraints)
        spent = rounds[-1]["tokens_spent"] if rounds else 0.0
        outcome = Outcome(rounds, stop, spent, best, sug, {"constraints": s.constraints.to_json()}, model)
        write_json_atomic(folder(self.study_dir) / "result.json", outcome.to_json())
        return outcome

    def _fits(self, comp: Composition) -> bool:
        return self.settings.constraints.fits(
            composition_tokens(comp, self.sizes.examples, self.sizes.tokens_per_example, self.epochs,
                               self.training))
