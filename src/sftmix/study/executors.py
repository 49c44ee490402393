"""Executors by name: ``local`` (default); cluster executors register here too."""

from __future__ import annotations

from collections.abc import Callable

from sftmix.registry import Registry
from sftmix.study.config import StudyConfig
from sftmix.study.executor import Executor, LocalExecutor

EXECUTORS: Registry[Callable[[StudyConfig], Executor]] = Registry("executor")
EXECUTORS.add("local", lambda study: LocalExecutor(study.workers))


def make_executor(name: str, study: StudyConfig) -> Executor:
    return EXECUTORS.get(name)(study)
