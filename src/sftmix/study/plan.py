"""Expand a study's designs into runs, and merge every stage and evaluation they share.

A *run* is a chain of stages from a base model; its final weights are evaluated
on every ability's suites. The planner builds the typed spec of every artefact
(:mod:`sftmix.study.specs`) once: a stage's spec names its parent (the previous
stage, or the base model), its mixture (sources with their file hashes, amounts,
replay, seed) and its fully resolved training settings; an evaluation's names
the model and the suite with its options (secrets removed). The key of each is
``job_key(kind, spec)`` (``sftmix.study.kinds``). Two designs that ask for the same work produce the same key,
so it is planned, trained and evaluated once:

* DMT's stage 1 is mixed sequential's stage 1 for every k, and DMT(k=0)'s
  stage 2 is mixed sequential's stage 2;
* RQ2's full mixture is RQ4's multi-task and RQ3's k = 1 for setups a and b;
  RQ3 setup c at k = its general fraction is RQ2 at that fraction;
* RQ1's full single sources are RQ4's single-ability baselines and the first
  stage of the sequential strategy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sftmix.data.spec import SourcePath
from sftmix.keys import source_fingerprint
from sftmix.secrets import public
from sftmix.study.config import ModelConfig, StageConfig, StudyConfig
from sftmix.study.kinds import artefact, job_key
from sftmix.study.specs import (
    BaseModelSpec,
    EvalSpec,
    MixturePart,
    MixtureSpec,
    Replay,
    StageSpec,
    SuiteSpec,
)
from sftmix.train.config import ModelSource, TrainSettings, resolve_settings
from sftmix.train.strategies import Step


@dataclass(frozen=True)
class Part:
    """An ability's source at a fraction (``kind='fraction'``) or an absolute count."""

    ability: str
    amount: float
    kind: str = "fraction"


@dataclass(frozen=True)
class Recipe:
    """The data of one stage: parts of sources, plus optionally a fraction of an earlier recipe."""

    parts: tuple[Part, ...]
    seed: int
    replay: tuple[Recipe, float] | None = None

    @staticmethod
    def of(parts: list[Part], seed: int, replay: tuple[Recipe, float] | None = None) -> Recipe:
        if replay is not None and replay[1] == 0:
            replay = None  # k = 0 replays nothing: DMT(0) is mixed sequential
        return Recipe(tuple(sorted(parts, key=lambda p: (p.ability, p.kind))), seed, replay)

    def counts(self, sizes: dict[str, int]) -> dict[str, int]:
        """Examples of each ability the recipe's mixture holds (its replay included), given the
        examples of each ability's source: the data layer's nested amounts."""
        from sftmix.data.sampling import amount_count

        counts: dict[str, int] = {}
        for part in self.parts:
            counts[part.ability] = counts.get(part.ability, 0) + amount_count(
                sizes[part.ability], part.amount, part.kind)  # type: ignore[arg-type]
        if self.replay is not None:
            replayed, k = self.replay
            for ability, c in replayed.counts(sizes).items():
                counts[ability] = counts.get(ability, 0) + (amount_count(c, k) if c else 0)
        return counts

    def describe(self) -> str:
        text = " + ".join(f"{p.ability}×{_amount(p)}" for p in self.parts)
        if self.replay:
            text += f" + replay {fmt_amount(self.replay[1])} of ({self.replay[0].describe()})"
        return text


@dataclass
class StageNode:
    key: str
    parent: str | None  # key of the stage whose weights it starts from; None: the base model
    model: str
    recipe: Recipe
    mixture: str  # key of the stage's mixture
    spec: StageSpec
    label: str

    @property
    def training(self) -> TrainSettings:
        return self.spec.training


@dataclass
class EvalNode:
    key: str
    stage: str | None  # None: the base model itself
    model: str
    suite: str
    ability: str
    spec: EvalSpec

    @property
    def options(self) -> dict[str, Any]:
        return self.spec.suite.options


@dataclass
class RunNode:
    name: str
    design: str
    model: str
    seed: int
    stages: list[str]
    evals: list[str]
    coords: dict[str, Any] = field(default_factory=dict)  # e.g. {"ability": "maths", "fraction": 0.25}


@dataclass(frozen=True)
class PlannedJob:
    """A job of another kind than the four a study always has (``sftmix.study.kinds``), added by
    a design: its key, kind, spec, the keys it waits for and its label."""

    key: str
    kind: str
    spec: Any
    deps: tuple[str, ...]
    label: str


@dataclass
class Plan:
    study: StudyConfig
    runs: list[RunNode] = field(default_factory=list)
    stages: dict[str, StageNode] = field(default_factory=dict)
    evals: dict[str, EvalNode] = field(default_factory=dict)
    # Base models to make (by job key) and the folder each named model is used from.
    models: dict[str, BaseModelSpec] = field(default_factory=dict)
    model_dirs: dict[str, str] = field(default_factory=dict)
    mixtures: dict[str, tuple[MixtureSpec, Recipe]] = field(default_factory=dict)
    jobs: list[PlannedJob] = field(default_factory=list)
    # What it costs (``sftmix.study.cost``): set by the runner's ``checked_plan``, which reads
    # (and so validates) every source before anything is written.
    cost: Any = None

    @property
    def naive_stages(self) -> int:
        return sum(len(r.stages) for r in self.runs)

    @property
    def naive_evals(self) -> int:
        return sum(len(r.evals) for r in self.runs)

    def stage_order(self) -> list[str]:
        """Stage keys with every parent before its children."""
        order: list[str] = []
        done: set[str] = set()

        def visit(key: str) -> None:
            if key in done:
                return
            node = self.stages[key]
            if node.parent:
                visit(node.parent)
            done.add(key)
            order.append(key)

        for key in self.stages:
            visit(key)
        return order


def fmt_amount(x: float) -> str:
    if x >= 1 or x == 0:
        return f"{x:g}"
    inv = 1 / x
    return f"1/{round(inv)}" if abs(inv - round(inv)) < 1e-9 else f"{x:g}"


def _amount(p: Part) -> str:
    return fmt_amount(p.amount) if p.kind == "fraction" else f"{int(p.amount)} samples"


class Planner:
    def __init__(self, study: StudyConfig, hash_files: bool = True) -> None:
        self.study = study
        self.plan = Plan(study)
        self.hash_files = hash_files

    # -- specs and keys ------------------------------------------------------------------
    def _sha(self, path: SourcePath | None) -> str | None:
        return source_fingerprint(path) if self.hash_files and path is not None else None

    def base_model(self, model: ModelConfig) -> str:
        """The folder the model's first stages start from (made by a job unless a HF folder)."""
        if model.name in self.plan.model_dirs:
            return self.plan.model_dirs[model.name]
        if model.path is not None:
            folder = model.path  # a Hugging Face folder, used in place
        else:
            source = ModelSource.model_validate(model.model_dump(exclude={"name"}, exclude_none=True))
            spec = BaseModelSpec(model=source)
            if model.tiny is not None:
                # The tokenizer is trained on the study's own training texts.
                spec.texts = [a.data.named(n) for n, a in self.study.abilities.items()]
                spec.texts_sha256 = [self._sha(a.data.path) for a in self.study.abilities.values()]
            key = job_key("model", spec)
            self.plan.models[key] = spec
            folder = artefact(key)
        self.plan.model_dirs[model.name] = folder
        return folder

    def mixture(self, recipe: Recipe) -> str:
        replay = None
        if recipe.replay is not None:
            replay = Replay(mixture=artefact(self.mixture(recipe.replay[0])),
                            fraction=recipe.replay[1])
        parts = []
        for p in recipe.parts:
            data = self.study.abilities[p.ability].data
            parts.append(MixturePart(source=data.named(p.ability), sha256=self._sha(data.path),
                                     kind=p.kind, amount=p.amount))  # type: ignore[arg-type]
        spec = MixtureSpec(parts=parts, seed=recipe.seed, replay=replay)
        key = job_key("mixture", spec)
        self.plan.mixtures.setdefault(key, (spec, recipe))
        return key

    def stage(self, model: ModelConfig, parent: str | None, recipe: Recipe, seed: int,
              overrides: Any = None, label: str = "") -> str:
        mixture = self.mixture(recipe)
        spec = StageSpec(
            parent=artefact(parent) if parent else self.base_model(model),
            mixture=artefact(mixture),
            training=resolve_settings(self.study.training, overrides or {}, seed=seed))
        key = job_key("stage", spec)
        if key not in self.plan.stages:
            # Unnamed stages are named once every run is known (``name_stages``).
            self.plan.stages[key] = StageNode(key, parent, model.name, recipe, mixture, spec, label)
        return key

    def evaluation(self, model: ModelConfig, stage: str | None) -> list[str]:
        keys = []
        target = artefact(stage) if stage else self.base_model(model)
        for ability, cfg in self.study.abilities.items():
            for suite in cfg.evals:
                options = public(dict(self.study.evaluation.get(suite, {})))
                spec = EvalSpec(model=target, suite=SuiteSpec(suite=suite, options=options))
                key = job_key("eval", spec)
                self.plan.evals.setdefault(key, EvalNode(key, stage, model.name, suite, ability, spec))
                keys.append(key)
        return keys

    def job(self, kind: str, spec: Any, deps: tuple[str, ...], label: str) -> str:
        """Add a job of another kind (``sftmix.study.kinds``) to the plan; returns its key."""
        key = job_key(kind, spec)
        if all(j.key != key for j in self.plan.jobs):
            self.plan.jobs.append(PlannedJob(key, kind, spec, deps, label))
        return key

    def run(self, name: str, design: str, model: ModelConfig, seed: int, stages: list[str],
            coords: dict[str, Any]) -> None:
        evals = self.evaluation(model, stages[-1] if stages else None)
        self.plan.runs.append(RunNode(name, design, model.name, seed, stages, evals, coords))

    def chain(self, model: ModelConfig, seed: int, recipes: list[Recipe]) -> list[str]:
        keys: list[str] = []
        for recipe in recipes:
            keys.append(self.stage(model, keys[-1] if keys else None, recipe, seed))
        return keys


def build_plan(study: StudyConfig, hash_files: bool = True) -> Plan:
    """Expand every design for every model and seed; shared work is merged by key."""
    from sftmix.study.designs import DESIGNS

    pl = Planner(study, hash_files)
    for model in study.models:
        for seed in study.seeds:
            suffix = f"{model.name}/s{seed}"
            if study.evaluate_base:
                pl.run(f"base/{suffix}", "base", model, seed, [], {})
            for name, block in study.designs.items():
                DESIGNS.get(name).expand(pl, block, model, seed, suffix)
            _free_runs(pl, model, seed, suffix)
    name_stages(pl.plan)
    return pl.plan


def run_purpose(run: RunNode) -> str:
    """What a run is for, in a few words: its strategy or design and the coordinates that its
    data does not already say (``dmt k=1/8``, ``ratio a k=1/4``, ``scaling``)."""
    coords = dict(run.coords)
    words = [str(coords.pop("strategy", run.design))]
    for name, value in coords.items():
        if name in ("ability", "fraction"):
            continue  # the stage's data says it
        if name == "setup":
            words.append(str(value))
        else:
            words.append(f"{name}={fmt_amount(value) if isinstance(value, float) else value}")
    return " ".join(words)


def name_stages(plan: Plan) -> None:
    """Give every stage that its design did not name a label that says what it trains and what
    for: ``general×1 (sequential, stage 3 of 3)``; a stage several runs share says so
    (``code×1 + maths×1 (mixed-sequential, stage 1 of 2; shared by 4 runs)``), and the model and
    seed are named when the study has several. Labels are unique within the plan."""
    uses: dict[str, list[tuple[RunNode, int]]] = {}
    for run in plan.runs:
        for position, key in enumerate(run.stages):
            uses.setdefault(key, []).append((run, position))
    several = len(plan.study.models) > 1 or len(plan.study.seeds) > 1
    for key, node in plan.stages.items():
        if node.label or key not in uses:
            node.label = node.label or node.recipe.describe()
            continue
        run, position = uses[key][0]
        words = run_purpose(run)
        if len(run.stages) > 1:
            words += f", stage {position + 1} of {len(run.stages)}"
        runs = {r.name for r, _ in uses[key]}
        if len(runs) > 1:
            words += f"; shared by {len(runs)} runs"
        if several:
            words += f"; {run.model}, seed {run.seed}"
        node.label = f"{node.recipe.describe()} ({words})"
    _unique_labels(plan)


def _unique_labels(plan: Plan) -> None:
    """A label two stages would share (names a design gave twice) gets the stage's key."""
    seen: dict[str, int] = {}
    for node in plan.stages.values():
        seen[node.label] = seen.get(node.label, 0) + 1
    for key, node in plan.stages.items():
        if seen[node.label] > 1:
            node.label = f"{node.label} [{key}]"


def recipes_of(steps: list[Step], seed: int, amounts: dict[str, float] | None = None) -> list[Recipe]:
    """A strategy's steps (:mod:`sftmix.train.strategies`) as recipes of the study's sources;
    ``amounts`` scales each ability's fraction (a candidate composition of ``sftmix suggest``)."""
    scale = amounts or {}
    recipes: list[Recipe] = []
    for step in steps:
        parts = [Part(a, take.fraction * scale.get(a, 1.0)) for take in step.data for a in take.abilities
                 if take.fraction * scale.get(a, 1.0) > 0]
        replay = (recipes[-1], step.replay) if step.replay is not None else None
        recipes.append(Recipe.of(parts, seed, replay))
    return recipes


def _free_runs(pl: Planner, model: ModelConfig, seed: int, suffix: str) -> None:
    """Free-form runs; stages may start from, or replay, stages of other runs."""
    keys: dict[tuple[str, str], str] = {}
    recipes: dict[tuple[str, str], Recipe] = {}
    runs = {r.name: r for r in pl.study.runs}

    def resolve(run: str, stage: StageConfig, index: int) -> str:
        ident = (run, stage.name)
        if ident in keys:
            return keys[ident]
        stages = runs[run].stages
        parent: str | None = None
        if stage.after is not None:
            prun, _, pstage = stage.after.rpartition(".")
            prun = prun or run
            pidx = next(i for i, s in enumerate(runs[prun].stages) if s.name == pstage)
            parent = resolve(prun, runs[prun].stages[pidx], pidx)
        elif index > 0:
            parent = resolve(run, stages[index - 1], index - 1)
        replay = None
        if stage.replay is not None:
            rrun, _, rstage = stage.replay.stage.rpartition(".")
            rrun = rrun or run
            ridx = next(i for i, s in enumerate(runs[rrun].stages) if s.name == rstage)
            resolve(rrun, runs[rrun].stages[ridx], ridx)
            replay = (recipes[(rrun, rstage)], stage.replay.fraction)
        parts = [Part(e.ability, e.fraction if e.count is None else float(e.count),
                      "fraction" if e.count is None else "count") for e in stage.data]
        recipe = Recipe.of(parts, seed, replay)
        recipes[ident] = recipe
        keys[ident] = pl.stage(model, parent, recipe, seed, stage.training, f"{run}.{stage.name}")
        return keys[ident]

    for run in pl.study.runs:
        chain: list[str] = []
        for i, stage in enumerate(run.stages):
            chain.append(resolve(run.name, stage, i))
        # A run's chain is its last stage and every ancestor of it.
        lineage = [chain[-1]]
        while (parent := pl.plan.stages[lineage[-1]].parent) is not None:
            lineage.append(parent)
        pl.run(f"runs/{run.name}/{suffix}", "runs", model, seed, lineage[::-1], {"run": run.name})
