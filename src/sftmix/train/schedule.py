"""Schedules for ``sftmix train``: lists of stages, each starting from the previous one's weights.

A schedule is ``[stage 1, stage 2, ...]``; every stage is a full SFT run (its own
data, fresh optimiser and learning-rate schedule) whose parent is the previous
stage's output, the first one's the base model. A schedule is either a built-in
strategy (:mod:`sftmix.train.strategies`, the same ones a study's designs use)
over per-ability ``sources`` (ability -> data file(s)), or any N-stage schedule
written out as ``stages:`` in YAML.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from sftmix.config import Problems, describe_validation_error
from sftmix.errors import ConfigError
from sftmix.train.config import (
    DataPart,
    FileRef,
    FileSpec,
    ScheduleConfig,
    StageConfig,
    TrainSettings,
    resolve_settings,
)
from sftmix.train.strategies import STRATEGIES, Step

if TYPE_CHECKING:
    from sftmix.study.config import StudyConfig

log = logging.getLogger(__name__)

Sources = dict[str, FileSpec | list[FileSpec]]


def _part(sources: Sources, names: Sequence[str], fraction: float = 1.0, seed: int = 0) -> DataPart:
    files: list[FileSpec] = []
    for name in names:
        value = sources[name]
        for ref in value if isinstance(value, list) else [value]:
            # A raw file under 'code:' trains code, whatever its format's default ability.
            if isinstance(ref, FileRef) and ref.format is not None and ref.ability is None:
                ref = ref.model_copy(update={"ability": name})
            files.append(ref)
    return DataPart(path=files, fraction=fraction, seed=seed)


def strategy_stages(sources: Sources, steps: Sequence[Step], seed: int = 0) -> list[StageConfig]:
    """A strategy's steps as stages over the data files of each ability (``sources``)."""
    stages = []
    for i, step in enumerate(steps):
        data = [_part(sources, take.abilities, take.fraction) for take in step.data]
        if step.replay is not None:
            data.append(_part(sources, steps[i - 1].abilities, step.replay, seed))
        stages.append(StageConfig(name=step.name, data=data))
    return stages


@dataclass
class PlannedStage:
    index: int
    config: StageConfig
    settings: TrainSettings

    @property
    def dirname(self) -> str:
        """The name under which the stage appears in the output folder."""
        return f"{self.index:02d}-{self.config.name}"


def plan_schedule(config: ScheduleConfig, source: str = "schedule", node: Any = None) -> list[PlannedStage]:
    """The stages of a schedule with their fully resolved settings, validated before anything runs.

    ``node`` is the YAML node tree of the file (``sftmix.config.read_yaml``), for line numbers.
    """
    if config.strategy is not None:
        strategy = STRATEGIES.get(config.strategy.name)
        try:
            options = strategy.options.model_validate(config.strategy.options)
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(exc, source, node, config.strategy.where)) from None
        steps = strategy.steps(list(config.sources), options)
        stages = strategy_stages(config.sources, steps, getattr(options, "seed", 0))
    else:
        stages = list(config.stages)
    planned = []
    for i, stage in enumerate(stages):
        try:
            settings = TrainSettings.model_validate({**config.training, **stage.training})
        except ValidationError as exc:
            # Point at the stage's own override when the bad field is one, else the shared block.
            own = config.stages and any(e["loc"] and e["loc"][0] in stage.training for e in exc.errors())
            prefix: tuple[Any, ...] = ("stages", i, "training") if own else ("training",)
            raise ConfigError(describe_validation_error(exc, source, node, prefix)) from None
        planned.append(PlannedStage(i + 1, stage, settings))
    return planned


def check_files(config: ScheduleConfig, base_dir: Path, source: str = "schedule",
                node: Any = None) -> None:
    """Every local file or folder the schedule reads exists; each one missing is named with the
    line and field that give it (relative paths start at ``base_dir``, the file's folder)."""
    problems = Problems(source, node)

    def check(loc: tuple[Any, ...], spec: FileSpec | list[FileSpec], what: str) -> None:
        if isinstance(spec, list):
            for i, item in enumerate(spec):
                check((*loc, i), item, what)
            return
        value, where = (spec, loc) if isinstance(spec, str) else (spec.path, (*loc, "path"))
        if not (Path(value) if Path(value).is_absolute() else base_dir / value).exists():
            problems.add(where, f"{what} not found: {value} (relative paths start at the "
                                "schedule file's folder)")

    model = config.model
    if model.path is not None:
        check(("model", "path"), model.path, "model folder")
    if model.gguf is not None and model.gguf != "smollm2":
        check(("model", "gguf"), model.gguf, "GGUF file")
    if model.tiny is not None:
        check(("model", "tiny", "texts"), list(model.tiny.texts), "data file")
    for name, spec in config.sources.items():
        check(("abilities", name, "data"), spec, "data file")
    for s, stage in enumerate(config.stages):
        for d, part in enumerate(stage.data):
            if part.path is not None:
                check(("stages", s, "data", d, "path"), part.path, "data file")
    problems.raise_if_any()


def schedule_study(config: ScheduleConfig, name: str = "train", base_dir: Path | None = None,
                   source: str = "schedule") -> StudyConfig:
    """The schedule as a study of one run: its files become abilities' sources, its stages
    (or its strategy's steps, DMT's replay included) the run's stages."""
    from sftmix.study.config import ModelConfig, StudyConfig

    def local(p: str) -> str:
        return p if base_dir is None or Path(p).is_absolute() else str(base_dir / p)

    abilities: dict[str, dict[str, Any]] = {}
    known: dict[tuple[str, str | None, str], str] = {}

    def ability(ref: FileRef, hint: str) -> str:
        source_ = _source(ref, local(ref.path), source)
        ident = (source_["path"], source_["format"], source_["on_error"])
        if ident not in known:
            base = re.sub(r"\W", "_", hint) or "data"
            label, n = base, 1
            while label in abilities:
                n += 1
                label = f"{base}_{n}"
            abilities[label] = {"data": source_}
            known[ident] = label
        return known[ident]

    stages: list[dict[str, Any]] = []
    if config.strategy is not None:
        strategy = STRATEGIES.get(config.strategy.name)
        options = strategy.options.model_validate(config.strategy.options)
        files = {n: _refs(v) for n, v in config.sources.items()}
        for i, step in enumerate(strategy.steps(list(config.sources), options)):
            data = [{"ability": ability(ref, n), "fraction": take.fraction}
                    for take in step.data for n in take.abilities for ref in files[n]]
            stage: dict[str, Any] = {"name": step.name, "data": data}
            if step.replay:
                stage["replay"] = {"stage": stages[i - 1]["name"], "fraction": step.replay}
            stages.append(stage)
    for stage_config in config.stages:
        data = []
        for part in stage_config.data:
            if part.seed:
                log.warning("stage %s: a part's 'seed' is no longer used; parts are drawn with the "
                            "training seed", stage_config.name)
            named = [(ref, part.ability) for ref in _refs(config.sources[part.ability])] if part.ability \
                else [(ref, Path(ref.path).stem) for ref in part.files]
            data.extend({"ability": ability(ref, hint), "fraction": part.fraction}
                        for ref, hint in named if part.fraction > 0)
        stages.append({"name": stage_config.name, "data": data, "training": stage_config.training})
    model = config.model.model_dump(exclude_unset=True, exclude_none=True)
    for key in ("path", "gguf"):
        if key in model and model[key] != "smollm2":
            model[key] = local(model[key])
    if config.model.tiny is not None and config.model.tiny.texts:
        # The tokenizer reads every source of the study: the run's data and these texts.
        for ref in _refs(config.model.tiny.texts):
            ability(ref, "texts")
        model["tiny"].pop("texts")
    seed = resolve_settings(config.training).seed
    return StudyConfig.model_validate({
        "name": re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "train",
        "abilities": abilities, "models": [ModelConfig.model_validate({"name": "model", **model})],
        "seeds": [seed], "training": config.training,
        "runs": [{"name": "train", "stages": stages}]})


def _refs(value: FileSpec | list[FileSpec]) -> list[FileRef]:
    items = value if isinstance(value, list) else [value]
    return [FileRef(path=f) if isinstance(f, str) else f for f in items]


def _source(ref: FileRef, path: str, source: str) -> dict[str, Any]:
    """A data layer source for a schedule's file: a raw file with its reader, or examples
    (a JSONL file of them, or a mixture folder) read as chat messages."""
    if ref.format is not None:
        return {"path": path, "format": ref.format, "on_error": ref.on_error}
    if Path(path).suffix in (".yaml", ".yml"):
        raise ConfigError(f"{source}: data file {ref.path} is a mixture spec; build it first "
                          f"(sftmix data mix {ref.path} -o FOLDER) and give the folder")
    if Path(path).is_dir():
        path = str(Path(path) / "data.jsonl")
    return {"path": path, "format": "messages", "on_error": ref.on_error}


def run_schedule(config: ScheduleConfig, out_dir: str | Path, *, base_dir: Path | None = None,
                 source: str = "schedule", name: str = "train", overwrite: bool = False) -> list[Path]:
    """Run the schedule as a study of one run, in this process (under ``accelerate launch``
    every process trains each stage; the main one makes models and mixtures). Complete
    artefacts are reused. Returns the run's stages as ``<out>/NN-<name>``, links to their
    keyed folders.

    ``overwrite`` is accepted for older scripts: stage folders are keyed by their inputs,
    so none ever holds a stage trained from other ones.
    """
    import contextlib

    from sftmix.study import tasks
    from sftmix.study.jobs import build_jobs
    from sftmix.study.load import check_study
    from sftmix.study.plan import build_plan
    from sftmix.study.runner import prepare
    from sftmix.train.stage import process_state

    out_dir = Path(out_dir).resolve()
    study = schedule_study(config, name, base_dir, source)
    check_study(study, source)
    state = process_state()
    if state.is_main_process:
        plan, jobs = prepare(study, out_dir)
    state.wait_for_everyone()
    if not state.is_main_process:
        plan = build_plan(study)
        jobs = build_jobs(plan, out_dir)
    for job in jobs.values():
        if not job.complete and (job.kind == "stage" or state.is_main_process):
            log.info("%s: %s", job.kind, job.label)
            with contextlib.chdir(out_dir):
                tasks.run(job.kind, job.spec, job.out.relative_to(out_dir), job.label)
        state.wait_for_everyone()
    (run,) = plan.runs
    named = []
    for index, (stage, key) in enumerate(zip(study.runs[0].stages, run.stages, strict=True), start=1):
        named.append(out_dir / f"{index:02d}-{stage.name}")
        if state.is_main_process:
            _link(named[-1], Path("stages") / f"s-{key}")
    state.wait_for_everyone()
    return named


def _link(path: Path, target: Path) -> None:
    """``path`` -> ``target`` (relative, so the folder can move), replaced atomically."""
    if path.exists() and not path.is_symlink():
        log.warning("%s is a folder of an earlier sftmix; the stage is at %s", path,
                    path.parent / target)
        return
    tmp = path.with_name(path.name + ".partial-link")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target, target_is_directory=True)
    os.replace(tmp, path)
