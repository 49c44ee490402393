"""The plan as a graph of jobs: make a base model, build a mixture, train a stage, evaluate.

Every job has a key (its kind's prefix and the content hash of what it produces,
see :mod:`sftmix.study.kinds`), the keys it depends on, a typed spec (everything
the worker needs) and the artefact directories it publishes. Mixtures are jobs of
their own so that a recipe shared by several stages (or replayed by DMT's stage
2) is built once. A job file (``jobs/<key>.json``) holds the job with every path
relative to the study directory; :func:`read_job` reads one back, validated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sftmix.artifacts import is_complete
from sftmix.errors import ConfigError
from sftmix.study.kinds import KINDS, artefact, key_of_artefact
from sftmix.study.plan import Plan
from sftmix.study.specs import LAYOUT, Spec


@dataclass
class Job:
    key: str
    kind: str
    deps: list[str]
    spec: Spec
    out: Path  # absolute: the study directory joined with the artefact's folder
    label: str
    # Artefacts this job publishes, by key (an evaluation job publishes one per suite).
    outputs: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.outputs:
            self.outputs = {self.key: self.out}

    @property
    def complete(self) -> bool:
        return all(is_complete(p) for p in self.outputs.values())

    @property
    def payload(self) -> dict[str, Any]:
        """The spec as plain JSON."""
        return self.spec.model_dump(mode="json")

    def to_file(self, study_dir: Path) -> dict[str, Any]:
        """The job file's content: paths relative to ``study_dir``."""
        return {"layout": LAYOUT, "key": self.key, "kind": self.kind, "deps": self.deps,
                "spec": self.payload, "label": self.label,
                "out": _relative(self.out, study_dir),
                "outputs": {k: _relative(p, study_dir) for k, p in self.outputs.items()}}


def _relative(path: Path, study_dir: Path) -> str:
    return path.relative_to(study_dir).as_posix()


def artefact_dir(study_dir: Path, key: str) -> Path:
    return study_dir / artefact(key)


def read_job(job_file: Path) -> Job:
    """A job file read back and validated; its paths are joined to its study directory."""
    study_dir = job_file.resolve().parent.parent
    try:
        data = json.loads(job_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{job_file}: not a readable job file ({exc})") from None
    if not isinstance(data, dict) or data.get("layout") != LAYOUT:
        raise ConfigError(f"{job_file}: a job file of another layout of sftmix study directories "
                          f"(found layout {data.get('layout', 1) if isinstance(data, dict) else '?'}, "
                          f"expected {LAYOUT}); run the study again with this version (sftmix run)")
    kind = KINDS.get(data.get("kind", ""))
    if kind is None:
        raise ConfigError(f"{job_file}, field 'kind': found {data.get('kind')!r}, expected one of "
                          f"{', '.join(KINDS)}")
    try:
        spec = kind.spec.model_validate(data["spec"])
    except ValidationError as exc:
        raise ConfigError(f"{job_file}, field 'spec': not a valid {kind.name} job ({exc})") from None
    except KeyError:
        raise ConfigError(f"{job_file}: no 'spec' field") from None
    return Job(data["key"], kind.name, list(data.get("deps", [])), spec, study_dir / data["out"],
               data.get("label", ""), {k: study_dir / v for k, v in data.get("outputs", {}).items()})


def build_jobs(plan: Plan, study_dir: Path) -> dict[str, Job]:
    """Jobs in an order where every dependency comes first."""
    jobs: dict[str, Job] = {}

    def add(key: str, kind: str, deps: list[str], spec: Spec, label: str) -> None:
        jobs.setdefault(key, Job(key, kind, deps, spec, artefact_dir(study_dir, key), label))

    def after(folder: str) -> list[str]:
        """The job that makes ``folder``, if one does (a model folder outside makes none)."""
        key = key_of_artefact(folder)
        return [key] if key is not None else []

    names = {folder: name for name, folder in plan.model_dirs.items()}
    for key, spec in plan.models.items():
        add(key, "model", [], spec, f"base model {names[artefact(key)]}")
    for key, (mspec, recipe) in plan.mixtures.items():
        deps = after(mspec.replay.mixture) if mspec.replay else []
        seed = f" (seed {recipe.seed})" if len(plan.study.seeds) > 1 else ""  # else two share a label
        add(key, "mixture", deps, mspec, recipe.describe() + seed)
    for key in plan.stage_order():
        node = plan.stages[key]
        add(key, "stage", [node.mixture, *after(node.spec.parent)], node.spec, node.label)
    for key, ev in plan.evals.items():
        target = plan.stages[ev.stage].label if ev.stage else f"{ev.model} (base)"
        add(key, "eval", after(ev.spec.model), ev.spec, f"{ev.suite} on {target}")
    for extra in plan.jobs:
        add(extra.key, extra.kind, list(extra.deps), extra.spec, extra.label)
    return jobs


LAYOUT_FILE = "layout.json"


def check_layout(study_dir: Path) -> None:
    """Refuse a study directory written by an earlier layout: its artefacts are keyed by
    other hashes, so running on would silently redo every job next to the old ones."""
    marker = study_dir / LAYOUT_FILE
    if marker.is_file():
        found = json.loads(marker.read_text(encoding="utf-8")).get("layout")
        if found == LAYOUT:
            return
    elif not (study_dir / "jobs").is_dir():
        return  # a new study directory
    else:
        found = 1
    raise ConfigError(
        f"{study_dir}: a study directory of an earlier sftmix layout (layout {found}; this version "
        f"writes layout {LAYOUT}: artefacts keyed by their resolved settings, paths relative to "
        "the study directory). Its artefacts cannot be reused under the new keys, and nothing in "
        "it was changed. Run the study into a new directory (sftmix run STUDY.yaml -o NEW_DIR); "
        "its results stay readable with 'sftmix results' as they are.")


def write_layout(study_dir: Path) -> None:
    from sftmix import __version__
    from sftmix.artifacts import write_json_atomic

    write_json_atomic(study_dir / LAYOUT_FILE, {"layout": LAYOUT, "sftmix": __version__})
