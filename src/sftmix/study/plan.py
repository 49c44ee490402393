"""Expand a study's designs into runs, and merge every stage and evaluation they share.

A *run* is a chain of stages from a base model; its final weights are evaluated
on every ability's suites. The planner builds the typed spec of every artefact
(:mod:`sftmix.study.specs`) once: a stage's spec names its parent (the previous
stage, or the base model), its mixture (sources with their file hashes, amounts,
replay, seed) and its fully resolved training settings; an evaluation's names
the model and the suite with its options (secrets removed). The key of each is
``spec_key(spec)``. Two designs that ask for the same work produce the same key,
so it is planned, trained and evaluated once:

* DMT's stage 1 is mixed sequential's stage 1 for every k, and DMT(k=0)'s
  stage 2 is mixed sequential's stage 2;
* RQ2's full mixture is RQ4's multi-task and RQ3's k = 1 for setups a and b;
  RQ3 setup c at k = its general fraction is RQ2 at that fraction;
* RQ1's full single sources are RQ4's single-ability baselines and the first
  stage of the sequential strategy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from sftmix.config import StrictModel
from sftmix.hashing import config_hash, file_sha256
from sftmix.secrets import public
from sftmix.study.config import GENERAL, ModelConfig, StageConfig, StudyConfig
from sftmix.study.specs import (
    BaseModelSpec,
    EvalSpec,
    MixturePart,
    MixtureSpec,
    Replay,
    StageSpec,
    SuiteSpec,
    artefact,
    spec_key,
)
from sftmix.train.config import ModelSource, TrainSettings, resolve_settings
from sftmix.train.strategies import (
    STRATEGIES,
    DmtOptions,
    MixedSequentialOptions,
    NoOptions,
    SequentialOptions,
    Step,
)


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

    def describe(self) -> str:
        text = " + ".join(f"{p.ability}×{_amount(p)}" for p in self.parts)
        if self.replay:
            text += f" + replay {_fmt(self.replay[1])} of ({self.replay[0].describe()})"
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
    # Estimated training tokens per stage job (``s-<key>``), for ordering: set by the runner's
    # ``prepare``, which reads (and so validates) every source before writing anything.
    job_weights: dict[str, float] = field(default_factory=dict)

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


def _fmt(x: float) -> str:
    if x >= 1 or x == 0:
        return f"{x:g}"
    inv = 1 / x
    return f"1/{round(inv)}" if abs(inv - round(inv)) < 1e-9 else f"{x:g}"


def _amount(p: Part) -> str:
    return _fmt(p.amount) if p.kind == "fraction" else f"{int(p.amount)} samples"


@cache
def _sha(path: str) -> str:
    p = Path(path)
    return file_sha256(p) if p.is_file() else "dir:" + config_hash(sorted(str(x.relative_to(p)) for x in p.rglob("*")))


class Planner:
    def __init__(self, study: StudyConfig, hash_files: bool = True) -> None:
        self.study = study
        self.plan = Plan(study)
        self.hash_files = hash_files

    # -- specs and keys ------------------------------------------------------------------
    def _sha(self, path: str | None) -> str | None:
        return _sha(path) if self.hash_files and path is not None else None

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
            key = "b-" + spec_key(spec)
            self.plan.models[key] = spec
            folder = artefact("model", key)
        self.plan.model_dirs[model.name] = folder
        return folder

    def mixture(self, recipe: Recipe) -> str:
        replay = None
        if recipe.replay is not None:
            replay = Replay(mixture=artefact("mixture", self.mixture(recipe.replay[0])),
                            fraction=recipe.replay[1])
        parts = []
        for p in recipe.parts:
            data = self.study.abilities[p.ability].data
            parts.append(MixturePart(source=data.named(p.ability), sha256=self._sha(data.path),
                                     kind=p.kind, amount=p.amount))  # type: ignore[arg-type]
        spec = MixtureSpec(parts=parts, seed=recipe.seed, replay=replay)
        key = "m-" + spec_key(spec)
        self.plan.mixtures.setdefault(key, (spec, recipe))
        return key

    def stage(self, model: ModelConfig, parent: str | None, recipe: Recipe, seed: int,
              overrides: Any = None, label: str = "") -> str:
        mixture = self.mixture(recipe)
        spec = StageSpec(
            parent=artefact("stage", f"s-{parent}") if parent else self.base_model(model),
            mixture=artefact("mixture", mixture),
            training=resolve_settings(self.study.training, overrides or {}, seed=seed))
        key = spec_key(spec)
        if key not in self.plan.stages:
            self.plan.stages[key] = StageNode(key, parent, model.name, recipe, mixture, spec,
                                              label or recipe.describe())
        return key

    def evaluation(self, model: ModelConfig, stage: str | None) -> list[str]:
        keys = []
        target = artefact("stage", f"s-{stage}") if stage else self.base_model(model)
        for ability, cfg in self.study.abilities.items():
            for suite in cfg.evals:
                options = public(dict(self.study.evaluation.get(suite, {})))
                spec = EvalSpec(model=target, suite=SuiteSpec(suite=suite, options=options))
                key = spec_key(spec)
                self.plan.evals.setdefault(key, EvalNode(key, stage, model.name, suite, ability, spec))
                keys.append(key)
        return keys

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
    pl = Planner(study, hash_files)
    for model in study.models:
        for seed in study.seeds:
            suffix = f"{model.name}/s{seed}"
            if study.evaluate_base:
                pl.run(f"base/{suffix}", "base", model, seed, [], {})
            for expand in _DESIGNS:
                expand(pl, model, seed, suffix)
            _free_runs(pl, model, seed, suffix)
    return pl.plan


def _full(abilities: list[str], f: float = 1.0) -> list[Part]:
    return [Part(a, f) for a in abilities]


def _scaling(pl: Planner, model: ModelConfig, seed: int, suffix: str) -> None:
    d = pl.study.designs.scaling
    if d is None:
        return
    for ability in d.abilities or list(pl.study.abilities):
        for f in d.fractions:
            stages = pl.chain(model, seed, [Recipe.of([Part(ability, f)], seed)])
            pl.run(f"scaling/{ability}/{_fmt(f)}/{suffix}", "scaling", model, seed, stages,
                   {"ability": ability, "fraction": f})


def _mixed(pl: Planner, model: ModelConfig, seed: int, suffix: str) -> None:
    d = pl.study.designs.mixed
    if d is None:
        return
    for f in d.fractions:
        stages = pl.chain(model, seed, [Recipe.of(_full(list(pl.study.abilities), f), seed)])
        pl.run(f"mixed/{_fmt(f)}/{suffix}", "mixed", model, seed, stages, {"fraction": f})


def _ratio(pl: Planner, model: ModelConfig, seed: int, suffix: str) -> None:
    d = pl.study.designs.ratio
    if d is None:
        return
    spec = pl.study.specialist
    for setup in d.setups:
        for k in d.ks:
            if setup == "a":
                parts = [Part(GENERAL, 1.0), *_full(spec, k)]
            elif setup == "b":
                parts = [Part(GENERAL, k), *_full(spec)]
            else:
                parts = [Part(GENERAL, d.general_fraction), *_full(spec, k)]
            stages = pl.chain(model, seed, [Recipe.of(parts, seed)])
            pl.run(f"ratio/{setup}/{_fmt(k)}/{suffix}", "ratio", model, seed, stages,
                   {"setup": setup, "k": k})


def _recipes(steps: list[Step], seed: int) -> list[Recipe]:
    """A strategy's steps (:mod:`sftmix.train.strategies`) as recipes of the study's sources."""
    recipes: list[Recipe] = []
    for step in steps:
        parts = [Part(a, take.fraction) for take in step.data for a in take.abilities]
        replay = (recipes[-1], step.replay) if step.replay is not None else None
        recipes.append(Recipe.of(parts, seed, replay))
    return recipes


def _strategies(pl: Planner, model: ModelConfig, seed: int, suffix: str) -> None:
    d = pl.study.designs.strategies
    if d is None:
        return
    abilities = list(pl.study.abilities)

    def add(strategy: str, options: StrictModel, **coords: Any) -> None:
        steps = STRATEGIES.get(strategy.replace("-", "_")).steps(abilities, options)
        name = f"strategies/{strategy}" + "".join(f"/{_fmt(v)}" for v in coords.values())
        pl.run(f"{name}/{suffix}", "strategies", model, seed,
               pl.chain(model, seed, _recipes(steps, seed)), {"strategy": strategy, **coords})

    if d.baselines:
        for ability in abilities:
            pl.run(f"strategies/{ability}-only/{suffix}", "strategies", model, seed,
                   pl.chain(model, seed, [Recipe.of([Part(ability, 1.0)], seed)]),
                   {"strategy": f"{ability}-only"})
    if d.multi_task:
        add("multi-task", NoOptions())
    if d.sequential:
        add("sequential", SequentialOptions(order=d.sequential.order))
    if d.mixed_sequential:
        add("mixed-sequential", MixedSequentialOptions(general=GENERAL))
    if d.dmt:
        for k in d.dmt.ks:
            add("dmt", DmtOptions(k=k, general=GENERAL), k=k)


_DESIGNS: list[Callable[[Planner, ModelConfig, int, str], None]] = [_scaling, _mixed, _ratio, _strategies]


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
