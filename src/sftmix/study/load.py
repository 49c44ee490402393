"""Load a study file: schema validation, then the checks that span several fields.

Each problem is reported with the file, the line and the field path; nothing is
written anywhere before the whole study is valid.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sftmix.config import Override, Source, read_yaml, validate
from sftmix.config import Problems as _Problems
from sftmix.data.spec import declared_formats, source_files
from sftmix.errors import SftmixError
from sftmix.study import spellings
from sftmix.study.config import CREATED_PATHS, PATH_OPTIONS, StudyConfig


def load_study(path: str | Path, overrides: Sequence[Override] = (),
               variables: Mapping[str, str] | None = None) -> StudyConfig:
    """A study file, with ``overrides`` (``--set``) applied, validated and checked; ``variables``
    are given to its ``${NAME}`` references before the environment."""
    path = Path(path)
    data, source = read_yaml(path, overrides, variables)
    study = validate(StudyConfig, spellings.study(data), source)
    written = study.model_copy(deep=True)
    study.resolve_paths(path.resolve().parent)
    check_study(study, source, written)
    return study


def check_study(study: StudyConfig, source: Source | str = "<study>",
                written: StudyConfig | None = None) -> None:
    """Every check that spans fields; ``written`` is the study before its paths were resolved,
    so that a missing file is named as the user wrote it."""
    p = _Problems(source)
    names = set(study.abilities)
    _check_sources(study, p)
    _check_evaluation_paths(study, written or study, p)
    _check_models(study, p)
    _check_designs(study, p)
    _check_runs(study, names, p)
    _check_registries(study, p)
    _check_training(study, p)
    _check_executor(study, written or study, p)
    _check_limits(study, p)
    if not p.items:
        _check_evaluation(study, p)
    p.raise_if_any()


def check_prerequisites(study: StudyConfig, processes: int, source: Source | str = "<study>") -> None:
    """What a run needs beyond a valid file, checked before its first job: each evaluation's
    own needs (a judge's key and endpoint) and batch arithmetic for the ``processes`` each
    stage trains with. ``sftmix plan`` does not ask for them; ``sftmix run`` does."""
    p = _Problems(source)
    _check_batches(study, processes, p)
    _check_preflight(study, p)
    p.raise_if_any()


def _check_sources(study: StudyConfig, p: _Problems) -> None:
    for name, ability in study.abilities.items():
        data = ability.data
        for i, (path, _) in enumerate(source_files(data.path, data.format)):
            if not Path(path).exists():
                several = (i,) if isinstance(data.path, list) else ()
                p.add(("abilities", name, "data", "path", *several), f"data file not found: {path}")
                _data_get_hint(path, p)


def _data_get_hint(path: str, p: _Problems) -> None:
    """For a missing file where ``sftmix data get`` writes (the paper configs read there): how to get it."""
    from sftmix.data.get import DEFAULT_OUT

    if f"/{DEFAULT_OUT.as_posix()}/" in Path(path).as_posix():
        p.note(f"'sftmix data get', run at the top of the checkout, writes the reference study's data to "
               f"{DEFAULT_OUT} (docs/data.md); or point the config at your own files")


def _check_models(study: StudyConfig, p: _Problems) -> None:
    seen: set[str] = set()
    for i, model in enumerate(study.models):
        if model.name in seen:
            p.add(("models", i, "name"), f"duplicate model name {model.name!r}")
        seen.add(model.name)
        if model.tiny is not None and model.tiny.texts:
            p.add(("models", i, "tiny", "texts"), "a study's tiny model trains its tokenizer on the "
                  "study's own data; remove 'texts'")
        if model.gguf is not None and model.gguf != "smollm2" and not Path(model.gguf).is_file():
            p.add(("models", i, "gguf"), f"GGUF file not found: {model.gguf}")
        if model.path is not None and not Path(model.path, "config.json").is_file():
            p.add(("models", i, "path"), "expected a Hugging Face model folder (with config.json); "
                  f"found {model.path} (a .gguf file or 'smollm2' is written 'gguf: ...')")
    if len(set(study.seeds)) != len(study.seeds):
        p.add(("seeds",), f"duplicate seeds in {study.seeds}")


def _check_designs(study: StudyConfig, p: _Problems) -> None:
    from sftmix.study.designs import check_designs

    check_designs(study, p.add)


def _check_runs(study: StudyConfig, names: set[str], p: _Problems) -> None:
    run_names: dict[str, int] = {}
    for r, run in enumerate(study.runs):
        if run.name in run_names:
            p.add(("runs", r, "name"), f"duplicate run name {run.name!r}")
        run_names[run.name] = r
        stage_names: set[str] = set()
        for s, stage in enumerate(run.stages):
            if stage.name in stage_names:
                p.add(("runs", r, "stages", s, "name"), f"duplicate stage name {stage.name!r} in run {run.name!r}")
            stage_names.add(stage.name)
            for e, entry in enumerate(stage.data):
                if entry.ability not in names:
                    p.add(("runs", r, "stages", s, "data", e, "ability"), study.unknown_ability(entry.ability))
    # Stage references: resolve to (run, stage) and look for cycles.
    graph: dict[tuple[str, str], tuple[str, str] | None] = {}
    for r, run in enumerate(study.runs):
        for s, stage in enumerate(run.stages):
            parent: tuple[str, str] | None = (run.name, run.stages[s - 1].name) if s else None
            if stage.after is not None:
                parent = _resolve_ref(stage.after, run.name, study, p, ("runs", r, "stages", s, "after"))
            graph[(run.name, stage.name)] = parent
            if stage.replay is not None:
                _resolve_ref(stage.replay.stage, run.name, study, p, ("runs", r, "stages", s, "replay", "stage"))
    for start in graph:
        seen, cur = [start], graph[start]
        while cur is not None and cur in graph:
            if cur in seen:
                r = run_names[start[0]]
                cycle = " -> ".join(".".join(x) for x in [*seen, cur])
                p.add(("runs", r, "name"), f"stages form a cycle: {cycle}")
                break
            seen.append(cur)
            cur = graph[cur]


def _resolve_ref(ref: str, run: str, study: StudyConfig, p: _Problems, loc: tuple[Any, ...]) -> tuple[str, str] | None:
    run_name, _, stage_name = ref.rpartition(".")
    run_name = run_name or run
    target = next((x for x in study.runs if x.name == run_name), None)
    if target is None or all(s.name != stage_name for s in target.stages):
        known = sorted(f"{x.name}.{s.name}" for x in study.runs for s in x.stages)
        p.add(loc, f"unknown stage {ref!r}; known stages: {', '.join(known)}")
        return None
    return (run_name, stage_name)


def _check_registries(study: StudyConfig, p: _Problems) -> None:
    from sftmix.data.formats import READERS
    from sftmix.eval.base import TASKS

    suites = TASKS.names()
    for name, ability in study.abilities.items():
        for i, suite in enumerate(ability.evals):
            if suite not in suites:
                p.add(("abilities", name, "evals", i), f"unknown evaluation suite {suite!r}; available: {', '.join(suites)}")
    for suite in study.evaluation:
        if suite not in suites:
            p.add(("evaluation", suite), f"unknown evaluation suite {suite!r}; available: {', '.join(suites)}")
    for name, ability in study.abilities.items():
        for loc, fmt in declared_formats(ability.data.path, ability.data.format):
            if fmt not in READERS:
                p.add(("abilities", name, "data", *loc),
                      f"unknown data format {fmt!r}; available: {', '.join(READERS.names())}")


def _training_blocks(study: StudyConfig) -> list[tuple[tuple[Any, ...], list[Any]]]:
    """Where each stage's settings are written, and their layers (shared block, then the
    stage's overrides): designs' stages take the shared block."""
    blocks: list[tuple[tuple[Any, ...], list[Any]]] = [(("training",), [study.training])]
    for r, run in enumerate(study.runs):
        for s, stage in enumerate(run.stages):
            blocks.append((("runs", r, "stages", s, "training"), [study.training, stage.training]))
    return blocks


def _check_training(study: StudyConfig, p: _Problems) -> None:
    """Each stage's resolved settings."""
    from sftmix.train.config import resolve_settings

    for loc, layers in _training_blocks(study):
        try:
            resolve_settings(*layers)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                p.add(loc + tuple(err["loc"]), f"found {err.get('input')!r}, expected: {err['msg']}")


def _check_batches(study: StudyConfig, processes: int, p: _Problems) -> None:
    """A global batch the stage's processes cannot split evenly fails inside the stage's job."""
    from sftmix.train.config import resolve_settings

    for loc, layers in _training_blocks(study):
        try:
            resolve_settings(*layers).gradient_accumulation(processes)
        except ValidationError:
            continue  # reported by _check_training
        except ValueError as exc:
            p.add((*loc, "global_batch_size"), f"{exc}; expected a multiple of that product "
                  "(gradient accumulation makes up the rest)")


def _check_executor(study: StudyConfig, written: StudyConfig, p: _Problems) -> None:
    """Files the SLURM executor hands to every job: a wrong path would fail on the node."""
    python = study.executor.python
    if python is not None and not _is_program(python):
        p.add(("executor", "python"), f"not found: {python}; expected a Python interpreter "
              "(a path, or a name on PATH)")
    for kind, res in (study.executor.__pydantic_extra__ or {}).items():
        if res.accelerate_config is not None and not Path(res.accelerate_config).is_file():
            given = written.executor.kind(kind).accelerate_config
            shown = res.accelerate_config if given == res.accelerate_config else \
                f"{given} (that is, {res.accelerate_config})"
            p.add(("executor", kind, "accelerate_config"), f"accelerate config file not found: {shown}")


def _is_program(name: str) -> bool:
    path = Path(name).expanduser()
    if "/" in name:
        return path.is_file() and os.access(path, os.X_OK)
    return shutil.which(name) is not None


def _check_limits(study: StudyConfig, p: _Problems) -> None:
    """``limit``: the first N items of a suite; 0 would publish an empty evaluation as complete."""
    for suite, options in study.evaluation.items():
        limit = options.get("limit")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            p.add(("evaluation", suite, "limit"), f"found {limit!r}, expected a whole number of "
                  "items >= 1 (leave 'limit' out to evaluate every item)")


def _check_preflight(study: StudyConfig, p: _Problems) -> None:
    """Each suite the study evaluates says what it lacks (MT-Bench: a judge's key, a usable
    endpoint) before a model is trained for it."""
    from sftmix.eval.runner import build_suite

    used = {s for a in study.abilities.values() for s in a.evals}
    for suite in sorted(used):
        options = study.evaluation.get(suite, {})
        try:
            build_suite(suite, {k: v for k, v in options.items() if k not in ("limit", "generator")}).preflight()
        except SftmixError as exc:
            p.add(("evaluation", suite), str(exc))


def _check_evaluation_paths(study: StudyConfig, written: StudyConfig, p: _Problems) -> None:
    """Benchmark files must exist before any training: a typo would otherwise surface at the end."""
    used = {s for a in study.abilities.values() for s in a.evals}
    for suite, options in study.evaluation.items():
        for key, value in options.items():
            if (suite in used and isinstance(value, str) and key.endswith(PATH_OPTIONS)
                    and key not in CREATED_PATHS and not Path(value).exists()):
                as_written = written.evaluation[suite][key]
                shown = value if as_written == value else f"{as_written} (that is, {value})"
                p.add(("evaluation", suite, key), f"not found: {shown}")
                _data_get_hint(value, p)


def _check_evaluation(study: StudyConfig, p: _Problems) -> None:
    """Build every suite once with its options, so a wrong option fails before any work."""
    from sftmix.eval.runner import build_suite

    used = {s for a in study.abilities.values() for s in a.evals}
    for suite in sorted(used):
        try:
            options = study.evaluation.get(suite, {})
            build_suite(suite, {k: v for k, v in options.items() if k not in ("limit", "generator")})
        except SftmixError as exc:
            p.add(("evaluation", suite), str(exc))
