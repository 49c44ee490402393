"""The one table of job kinds: what each kind builds, where, with what, and by which function.

A study's work is a graph of jobs; every job is of one kind. A kind carries

* ``prefix`` -- the start of its jobs' keys (``s-`` for a stage), so a key says its kind;
* ``folder`` -- where its artefacts live in the study directory (``stages/s-...``);
* ``spec`` -- the typed spec a job of this kind holds (``sftmix.study.specs``);
* ``function`` -- what runs a job, as a lazy ``"module:function"`` entry: the function
  takes ``(spec, out, label)`` and publishes ``out`` complete, or raises;
* ``resources`` -- what a job asks a cluster for unless the study's ``executor`` block
  says otherwise (the SLURM executor reads it).

A new kind is one :func:`add_kind` and one function; the planner, the job files, the
worker, the results store and the executors read everything else from here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from sftmix.config import StrictModel
from sftmix.keys import artefact_key
from sftmix.study.specs import BaseModelSpec, EvalSpec, MixtureSpec, Spec, StageSpec
from sftmix.study.time_limits import check_time


class Resources(StrictModel):
    """What one kind of job asks a cluster for."""

    cpus: int = Field(1, ge=1, description="CPUs per job (sbatch --cpus-per-task)")
    gpus: int = Field(0, ge=0, description="GPUs per job (sbatch --gpus-per-node)")
    nodes: int = Field(1, ge=1, description="nodes per job (sbatch --nodes); a stage's training "
                                            "processes run on every node, in one rendezvous")
    mem_gb: float | None = Field(None, gt=0, description="memory per job; default: the partition's")
    time: str | None = Field(None, description="time limit; default: the executor's 'time'")
    processes: int | None = Field(
        None, ge=1, description="training processes of a stage on each node (accelerate launch); "
                                "default: one per GPU")
    accelerate_config: str | None = Field(
        None, description="accelerate config file for multi-process stages (FSDP, DeepSpeed)")
    sbatch: dict[str, str | int | bool] = Field(default_factory=dict,
                                                description="extra sbatch options for this kind")

    @field_validator("time", mode="before")
    @classmethod
    def _time(cls, value: str | int | None) -> str | None:
        return check_time(value)

    @property
    def launch_processes(self) -> int:
        return self.processes if self.processes is not None else max(1, self.gpus)


class JobKind(StrictModel):
    name: str
    prefix: str = Field(pattern=r"^[a-z]+-$")
    folder: str = Field(pattern=r"^[a-z_]+$")
    spec: type[Spec]
    function: str = Field(pattern=r"^[\w.]+:\w+$")
    resources: Resources = Field(default_factory=Resources)

    def run(self, spec: Spec, out: Path, label: str) -> None:
        """Run one job of this kind (in the worker, inside the study directory)."""
        module, _, name = self.function.partition(":")
        function: Callable[[Any, Path, str], None] = getattr(importlib.import_module(module), name)
        function(spec, out, label)


# The table, in the order a study's work flows.
KINDS: dict[str, JobKind] = {}


def add_kind(kind: JobKind) -> JobKind:
    """Register a job kind; its name and prefix must be new."""
    for other in KINDS.values():
        if other.name == kind.name or other.prefix == kind.prefix or other.folder == kind.folder:
            raise ValueError(f"job kind {kind.name!r} clashes with {other.name!r} "
                             "(names, key prefixes and folders are unique)")
    KINDS[kind.name] = kind
    return kind


def kind_of(key: str) -> JobKind:
    """The kind of a job, from its key's prefix."""
    for kind in KINDS.values():
        if key.startswith(kind.prefix):
            return kind
    raise KeyError(f"no job kind has the key prefix of {key!r}")


def job_key(kind: str, spec: Spec) -> str:
    """The key of the job (and of its artefact) that builds ``spec``."""
    return KINDS[kind].prefix + artefact_key(spec.identity())


def artefact(key: str) -> str:
    """An artefact's folder relative to the study directory, from its key."""
    return f"{kind_of(key).folder}/{key}"


def key_of_artefact(folder: str) -> str | None:
    """The key of the job that builds ``folder`` (relative to the study directory), or None
    for a folder no job of the study builds (a model folder used in place)."""
    head, _, key = folder.partition("/")
    kind = next((k for k in KINDS.values() if k.folder == head), None)
    return key if kind is not None and key.startswith(kind.prefix) and "/" not in key else None


add_kind(JobKind(name="model", prefix="b-", folder="models", spec=BaseModelSpec,
                 function="sftmix.study.work:make_model", resources=Resources(cpus=2)))
add_kind(JobKind(name="mixture", prefix="m-", folder="mixtures", spec=MixtureSpec,
                 function="sftmix.study.work:make_mixture", resources=Resources(cpus=2)))
add_kind(JobKind(name="stage", prefix="s-", folder="stages", spec=StageSpec,
                 function="sftmix.study.work:train_stage", resources=Resources(cpus=4, gpus=1)))
add_kind(JobKind(name="eval", prefix="e-", folder="evals", spec=EvalSpec,
                 function="sftmix.study.work:evaluate", resources=Resources(cpus=4, gpus=1)))
