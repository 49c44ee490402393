"""Executors by name: ``local`` (default) and ``slurm``."""

from __future__ import annotations

from collections.abc import Callable

from sftmix.registry import Registry
from sftmix.study.config import StudyConfig
from sftmix.study.executor import Executor, LocalExecutor

EXECUTORS: Registry[Callable[[StudyConfig], Executor]] = Registry("executor")
EXECUTORS.add("local", lambda study: LocalExecutor(study.workers))


def _slurm(study: StudyConfig) -> Executor:
    from sftmix.study.slurm import SlurmExecutor  # imports submitit only when asked for

    return SlurmExecutor(study.executor)  # type: ignore[return-value]


EXECUTORS.add("slurm", _slurm)


def make_executor(name: str, study: StudyConfig) -> Executor:
    return EXECUTORS.get(name)(study)
