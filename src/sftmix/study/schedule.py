"""``sftmix train``'s schedule file: a study of one run, in the study file's words.

A schedule names a base ``model``, shared ``training`` settings, each ability's
``data`` (one file or several), and either a ``strategy`` of
:mod:`sftmix.train.strategies` (written as a study's ``strategies`` design writes
one: ``multi_task``, ``{sequential: {order: [...]}}``, ``{dmt: {k: 1/16}}``) or
explicit ``stages`` whose parts name abilities, as a study's stages do. Every
stage starts from the previous one's weights with a fresh optimiser and
learning-rate schedule.

:func:`to_study` turns it into a study of one run (an ability with several files
becomes one source per file), so the study machinery plans, keys, trains,
resumes and records it; :func:`run_schedule` runs that study in this process
(``sftmix.study.inline``), which works under ``accelerate launch``.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from sftmix.config import (
    FieldError,
    Problems,
    Source,
    StrictModel,
    as_source,
    describe_validation_error,
)
from sftmix.errors import ConfigError
from sftmix.study.config import DEFAULT_GENERAL, ModelConfig, RunConfig, StageConfig, StudyConfig
from sftmix.study.executor import Outcome
from sftmix.train.config import FileRef, FileSpec, ModelSource, TrainOverrides, resolve_settings
from sftmix.train.strategies import STRATEGIES, Step

log = logging.getLogger(__name__)


class ScheduleAbility(StrictModel):
    """An ability's training data: one file (a mixture folder, a JSONL file of examples, or a
    raw file with its ``format``) or a list of them."""

    data: FileSpec | list[FileSpec]

    @property
    def files(self) -> list[FileRef]:
        items = self.data if isinstance(self.data, list) else [self.data]
        return [FileRef(path=f) if isinstance(f, str) else f for f in items]


class StrategyChoice(StrictModel):
    """One strategy and its options, written ``NAME`` or ``{NAME: {option: value}}``."""

    name: str
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _written(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"name": data}
        if isinstance(data, dict) and len(data) == 1:
            ((name, options),) = data.items()
            return {"name": name, "options": {} if options in (None, True) else options}
        if isinstance(data, dict):
            raise ValueError(f"name one strategy, e.g. 'multi_task' or '{{dmt: {{k: 1/16}}}}'; "
                             f"found {sorted(data)}")
        return data


class ScheduleConfig(StrictModel):
    """What ``sftmix train`` runs."""

    model: ModelSource
    training: TrainOverrides = Field(default_factory=TrainOverrides)
    abilities: dict[str, ScheduleAbility] = Field(default_factory=dict)
    general: str | None = Field(None, description="the general ability (what DMT trains last); "
                                "default: the ability named 'general', if any")
    strategy: StrategyChoice | None = None
    stages: list[StageConfig] = Field(default_factory=list)
    output_dir: str | None = None

    @model_validator(mode="after")
    def _strategy_or_stages(self) -> ScheduleConfig:
        if (self.strategy is None) == (not self.stages):
            raise ValueError("give exactly one of 'strategy' (a built-in schedule over 'abilities') "
                             "or 'stages' (an explicit list)")
        if self.strategy is not None and not self.abilities:
            raise ValueError("a 'strategy' needs 'abilities': ability name -> {data: file(s)}")
        if self.general is None and DEFAULT_GENERAL in self.abilities:
            self.__dict__["general"] = DEFAULT_GENERAL
        elif self.general is not None and self.general not in self.abilities:
            raise FieldError(("general",), self.general,
                             f"one of the abilities under 'abilities' ({sorted(self.abilities)})")
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique, found {names}")
        for s, stage in enumerate(self.stages):
            for d, part in enumerate(stage.data):
                if part.ability not in self.abilities:
                    raise FieldError(("stages", s, "data", d, "ability"), part.ability,
                                     f"one of the abilities under 'abilities' ({sorted(self.abilities)}); "
                                     f"stage '{stage.name}' takes ability '{part.ability}', which it does not name")
        return self


def strategy_steps(config: ScheduleConfig, source: Source | str = "schedule") -> list[Step]:
    """The steps of the schedule's strategy, its options validated (errors name their field)."""
    assert config.strategy is not None
    strategy = STRATEGIES.get(config.strategy.name)
    try:
        options = strategy.options.model_validate(config.strategy.options)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, source, ("strategy", config.strategy.name))) from None
    return strategy.steps(list(config.abilities), config.general, options)


def stage_configs(steps: list[Step], amounts: dict[str, float] | None = None) -> list[StageConfig]:
    """A strategy's steps as a run's stages, in a study file's words; ``amounts`` scales each
    ability's fraction (``sftmix suggest``'s candidates)."""
    scale = amounts or {}
    stages: list[StageConfig] = []
    for step in steps:
        data = [{"ability": a, "fraction": take.fraction * scale.get(a, 1.0)}
                for take in step.data for a in take.abilities if take.fraction * scale.get(a, 1.0) > 0]
        replay = {"stage": stages[-1].name, "fraction": step.replay} if step.replay else None
        stages.append(StageConfig.model_validate({"name": step.name, "data": data, "replay": replay}))
    return stages


def stages_of(config: ScheduleConfig, source: Source | str = "schedule") -> list[StageConfig]:
    """The run's stages, written out or from the strategy."""
    return stage_configs(strategy_steps(config, source)) if config.strategy else list(config.stages)


class _Sources:
    """The study's abilities: one per distinct data file, named after the schedule's ability."""

    def __init__(self, base_dir: Path | None, source: str) -> None:
        self.base_dir, self.source = base_dir, source
        self.abilities: dict[str, dict[str, Any]] = {}
        self._known: dict[tuple[str, str | None, str], str] = {}

    def local(self, path: str) -> str:
        return path if self.base_dir is None or Path(path).is_absolute() else str(self.base_dir / path)

    def known(self, ref: FileRef) -> str | None:
        spec = _source(ref, self.local(ref.path), self.source)
        return self._known.get((spec["path"], spec["format"], spec["on_error"]))

    def name(self, ref: FileRef, hint: str) -> str:
        spec = _source(ref, self.local(ref.path), self.source)
        ident = (spec["path"], spec["format"], spec["on_error"])
        if ident not in self._known:
            base = re.sub(r"\W", "_", hint) or "data"
            label, n = base, 1
            while label in self.abilities:
                n += 1
                label = f"{base}_{n}"
            self.abilities[label] = {"data": spec}
            self._known[ident] = label
        return self._known[ident]


def to_study(config: ScheduleConfig, name: str = "train", base_dir: Path | None = None,
             source: Source | str = "schedule") -> StudyConfig:
    """The schedule as a study of one run named ``train``: its sources are the files its stages
    read, in the order they first read them (the order a tiny model's tokenizer reads them)."""
    sources = _Sources(base_dir, as_source(source).name)
    files = {ability: spec.files for ability, spec in config.abilities.items()}
    stages = []
    for stage in stages_of(config, source):
        data = [{"ability": sources.name(ref, part.ability), **_amount(part)}
                for part in stage.data for ref in files[part.ability]]
        stages.append({**stage.model_dump(exclude_unset=True, exclude={"data"}), "data": data})
    model = config.model.model_dump(exclude_unset=True, exclude_none=True)
    for key in ("path", "gguf"):
        if key in model and model[key] != "smollm2":
            model[key] = sources.local(model[key])
    if config.model.tiny is not None and config.model.tiny.texts:
        # The tokenizer reads every source of the study: the run's data and these texts.
        for ref in (FileRef(path=f) if isinstance(f, str) else f for f in config.model.tiny.texts):
            sources.name(ref, "texts")
        model["tiny"].pop("texts")
    # The general ability is the study's too, where a stage reads it.
    label = sources.known(files[config.general][0]) if config.general is not None else None
    general = {"general": label} if label is not None else {}
    return StudyConfig.model_validate({
        "name": re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "train",
        **general, "abilities": sources.abilities, "models": [ModelConfig.model_validate({"name": "model", **model})],
        "seeds": [resolve_settings(config.training).seed],
        "training": config.training.model_dump(exclude_unset=True),
        "runs": [RunConfig.model_validate({"name": "train", "stages": stages})]})


def _amount(part: Any) -> dict[str, Any]:
    return {"count": part.count} if part.count is not None else {"fraction": part.fraction}


def _source(ref: FileRef, path: str, source: str) -> dict[str, Any]:
    """A study source for a schedule's file: a raw file with its reader, or examples (a JSONL
    file of them, or a mixture folder) read as chat messages."""
    if ref.format is not None:
        return {"path": path, "format": ref.format, "on_error": ref.on_error}
    if Path(path).suffix in (".yaml", ".yml"):
        raise ConfigError(f"{source}: data file {ref.path} is a mixture spec; build it first "
                          f"(sftmix data mix {ref.path} -o FOLDER) and give the folder")
    if Path(path).is_dir():
        path = str(Path(path) / "data.jsonl")
    return {"path": path, "format": "messages", "on_error": ref.on_error}


def check_files(config: ScheduleConfig, base_dir: Path, source: Source | str = "schedule",
                origins: dict[str, tuple[Any, ...]] | None = None) -> None:
    """Every local file or folder the schedule reads exists; each one missing is named with the
    line and field that give it (relative paths start at ``base_dir``, the file's folder;
    ``origins``: where a stage named a file that became an ability, ``spellings``)."""
    problems = Problems(source)

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
    for name, spec in config.abilities.items():
        check((origins or {}).get(name, ("abilities", name, "data")), spec.data, "data file")
    problems.raise_if_any()


def run_schedule(study: StudyConfig, out_dir: Path) -> tuple[Outcome, list[Path]]:
    """Run a schedule's study in this process; returns the outcome and the run's stages as
    ``<out>/NN-<name>``, relative links to their keyed folders."""
    from sftmix.secrets import to_env
    from sftmix.study.inline import InlineExecutor
    from sftmix.study.kinds import artefact
    from sftmix.study.runner import StudyRun, checked_plan, evaluation_secrets
    from sftmix.train.stage import process_state

    out_dir = out_dir.resolve()
    plan = checked_plan(study)
    run = StudyRun(study, out_dir, plan, env=to_env(evaluation_secrets(study)), progress=False)
    outcome = run.finish(InlineExecutor(study).run(run))
    (node,) = plan.runs
    state = process_state()
    named = []
    for index, (stage, key) in enumerate(zip(study.runs[0].stages, node.stages, strict=True), start=1):
        named.append(out_dir / f"{index:02d}-{stage.name}")
        if state.is_main_process:
            _link(named[-1], Path(artefact(key)))
    state.wait_for_everyone()
    return outcome, named


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
