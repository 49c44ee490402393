"""Executors run jobs somewhere and report back; the scheduler never cares where.

The interface is small on purpose: ``submit`` a job (with its resources),
``poll`` its state, ``cancel`` it. The local executor runs each job as a
subprocess of the current machine; a cluster executor (SLURM) submits the same
worker command to a queue.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sftmix.study.jobs import Job

RUNNING, DONE, FAILED = "running", "done", "failed"


@dataclass
class Handle:
    job: Job
    ref: object


class Executor(Protocol):
    slots: int

    def submit(self, job: Job, job_file: Path, log_file: Path) -> Handle: ...

    def poll(self, handle: Handle) -> str: ...

    def cancel(self, handle: Handle) -> None: ...


def worker_command(job_file: Path) -> list[str]:
    return [sys.executable, "-m", "sftmix.study.worker", str(job_file)]


def _die_with_parent() -> None:
    """In the child: be killed when the executor dies, so a crash leaves no orphan training."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    os.setpgrp()  # Ctrl-C in the terminal reaches the executor only; it stops the jobs itself


def visible_gpus() -> list[str]:
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g for g in env.split(",") if g.strip()]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:  # torch without CUDA support
        return []


class LocalExecutor:
    """Runs jobs as subprocesses: ``workers`` at a time, one GPU each when there are GPUs."""

    def __init__(self, workers: int = 1) -> None:
        self.gpus = visible_gpus()
        self.slots = max(1, min(workers, len(self.gpus)) if self.gpus else workers)
        self._free_gpus = list(self.gpus)

    def submit(self, job: Job, job_file: Path, log_file: Path) -> Handle:
        env = dict(os.environ)
        gpu = None
        if self.gpus and job.resources.get("gpus", 0) > 0 and self._free_gpus:
            gpu = self._free_gpus.pop(0)
            env["CUDA_VISIBLE_DEVICES"] = gpu
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "ab") as log:
            proc = subprocess.Popen(worker_command(job_file), stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env, preexec_fn=_die_with_parent)
        return Handle(job, (proc, gpu))

    def poll(self, handle: Handle) -> str:
        proc, gpu = handle.ref  # type: ignore[misc]
        code = proc.poll()
        if code is None:
            return RUNNING
        if gpu is not None and gpu not in self._free_gpus:
            self._free_gpus.append(gpu)
        return DONE if code == 0 else FAILED

    def cancel(self, handle: Handle) -> None:
        proc, _ = handle.ref  # type: ignore[misc]
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
