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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sftmix.config import Problems, describe_validation_error
from sftmix.errors import ConfigError
from sftmix.hashing import config_hash
from sftmix.train.config import (
    DataPart,
    FileRef,
    FileSpec,
    ModelSource,
    ScheduleConfig,
    StageConfig,
    TrainSettings,
)
from sftmix.train.strategies import STRATEGIES, Step

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
            raise ConfigError(describe_validation_error(exc, source, node, ("strategy", "options"))) from None
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
        check(("sources", name), spec, "data file")
    for s, stage in enumerate(config.stages):
        for d, part in enumerate(stage.data):
            check(("stages", s, "data", d, "path"), part.path, "data file")
    problems.raise_if_any()


def _texts(examples_of: Iterator[Any]) -> Iterator[str]:
    for example in examples_of:
        for message in example.messages:
            yield message.content


def resolve_base_model(model: ModelSource, out_dir: Path, stages: Sequence[PlannedStage],
                       base_dir: Path | None = None) -> Path:
    """A Hugging Face folder for the schedule's base model (imported or built under ``out_dir``)."""
    from sftmix.train.models import make_base_model, resolve_gguf
    from sftmix.train.stage import read_file

    def local(p: str) -> str:
        return p if base_dir is None or Path(p).is_absolute() else str(base_dir / p)

    if model.path is not None:
        return make_base_model(model.model_copy(update={"path": local(model.path)}), out_dir, iter)
    if model.gguf is not None:
        gguf = resolve_gguf(model.gguf if model.gguf == "smollm2" else local(model.gguf))
        return make_base_model(model.model_copy(update={"gguf": str(gguf)}),
                               out_dir / f"base-{config_hash({'gguf': gguf.name})}", iter)
    assert model.tiny is not None
    tiny = model.tiny
    refs = [FileRef(path=t) if isinstance(t, str) else t for t in tiny.texts] or list(
        {ref.model_dump_json(): ref for s in stages for part in s.config.data for ref in part.files}.values())
    key = config_hash({"tiny": tiny.model_dump(mode="json"), "texts": refs})
    return make_base_model(model, out_dir / f"base-{key}",
                           lambda: _texts(ex for ref in refs for ex in read_file(ref, base_dir)[0]))


def run_schedule(config: ScheduleConfig, out_dir: str | Path, *, base_dir: Path | None = None,
                 source: str = "schedule", callbacks: Sequence[Any] = (),
                 overwrite: bool = False) -> list[Path]:
    """Run every stage in order (completed ones are reused); returns the stage folders.

    ``overwrite`` replaces a stage folder that holds a stage trained from other inputs.
    """
    from sftmix.train.stage import process_state, resolve_parts, run_stage

    out_dir = Path(out_dir)
    stages = plan_schedule(config, source)
    state = process_state()
    # Only the main process builds or imports the base model; the others wait for it.
    if state.is_main_process:
        parent = resolve_base_model(config.model, out_dir, stages, base_dir)
    state.wait_for_everyone()
    parent = resolve_base_model(config.model, out_dir, stages, base_dir)
    outputs = []
    for stage in stages:
        examples, parts = resolve_parts(stage.config.data, base_dir)
        log.info("stage %d/%d %s: %d examples", stage.index, len(stages), stage.config.name, len(examples))
        parent = run_stage(parent, examples, stage.settings, out_dir / stage.dirname,
                           data_manifest={"parts": parts}, callbacks=callbacks, name=stage.config.name,
                           overwrite=overwrite)
        outputs.append(parent)
    return outputs
