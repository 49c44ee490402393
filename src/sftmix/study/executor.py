"""The executor seam: one interface that runs a study's job graph, chosen by name.

An :class:`Executor` takes a prepared :class:`~sftmix.study.runner.StudyRun` (the
study, its directory, its plan, what the workers' environment must carry) and
returns an :class:`Outcome`. The implementations are registered in
:data:`EXECUTORS`, lazily so that naming one imports nothing:

* ``local`` (:mod:`sftmix.study.local`) -- a pool of worker processes on this
  machine, fed ready jobs longest remaining path first, until the graph is done;
* ``slurm`` (:mod:`sftmix.study.slurm`) -- the whole graph queued with ``sbatch``
  through submitit, dependencies as SLURM dependencies; it returns once queued,
  or follows the jobs to the end when asked to ``wait``;
* ``inline`` (:mod:`sftmix.study.inline`) -- every job in this process, in order
  (``sftmix train``, under ``accelerate launch`` if need be).

The study file's ``executor: {name: ...}`` is validated against this registry,
so an executor registered here (``EXECUTORS.add_lazy("pbs", "my.module:PbsExecutor")``)
is one a study can name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar

from sftmix.registry import Registry

if TYPE_CHECKING:
    from sftmix.study.config import StudyConfig
    from sftmix.study.runner import StudyRun


class State(StrEnum):
    """Where a job stands in one run of the graph."""

    PENDING = "pending"  # not started; waits for its dependencies or a free worker
    RUNNING = "running"
    DONE = "done"  # its artefacts are complete
    FAILED = "failed"
    BLOCKED = "blocked"  # a dependency failed, so it never started


@dataclass
class Outcome:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # complete before this run started
    failed: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)  # a dependency failed
    queued: list[str] = field(default_factory=list)  # left in a cluster's queue (not waited for)
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        """Every job is complete: nothing failed, was blocked, interrupted or left queued."""
        return not (self.failed or self.blocked or self.interrupted or self.queued)


class Executor(ABC):
    """Runs a study's job graph; see the module docstring."""

    # True: ``run`` returns only when every job has ended. False: it may return with jobs
    # queued elsewhere, unless the executor was made with ``wait=True``.
    waits: ClassVar[bool] = True

    def __init__(self, study: StudyConfig, wait: bool = False) -> None:
        self.study = study
        self.wait = wait or self.waits

    @classmethod
    def stage_processes(cls, study: StudyConfig) -> int:
        """The training processes of one stage on this executor (its batch arithmetic is
        checked for them before the first job): one worker process by default."""
        return 1

    @abstractmethod
    def run(self, run: StudyRun) -> Outcome:
        """Run (or queue) every job of ``run`` that is not complete; returns what happened."""


EXECUTORS: Registry[type[Executor]] = Registry("executor")
EXECUTORS.add_lazy("local", "sftmix.study.local:LocalExecutor")
EXECUTORS.add_lazy("slurm", "sftmix.study.slurm:SlurmExecutor")
EXECUTORS.add_lazy("inline", "sftmix.study.inline:InlineExecutor")


def make_executor(name: str, study: StudyConfig, wait: bool = False) -> Executor:
    return EXECUTORS.get(name)(study, wait=wait)
