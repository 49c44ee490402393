"""Worker processes on this machine: the slots the local executor fills with jobs.

A :class:`ProcessPool` keeps ``slots`` long-lived worker processes
(``python -m sftmix.study.worker --serve``), one GPU each when there are GPUs, and
hands each a job file; keeping the process saves the import of torch and
transformers for every job. A worker that dies is replaced for the next job. Any
object with the same four methods (``submit``, ``poll``, ``cancel``, ``close``)
and ``slots`` can stand in for it (tests run jobs in process that way).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sftmix.faults import EXECUTOR_ENV
from sftmix.study.executor import State
from sftmix.study.jobs import Job


@dataclass
class Handle:
    job: Job
    ref: object


class Pool(Protocol):
    slots: int

    def submit(self, job: Job, job_file: Path, log_file: Path) -> Handle: ...

    def poll(self, handle: Handle) -> State: ...

    def cancel(self, handle: Handle) -> None: ...

    def close(self) -> None: ...


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


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def worker_env(gpu: str | None, slots: int, base: Mapping[str, str] | None = None,
               extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of one worker process.

    On CPU the workers share the machine's cores: each gets ``cpus // slots``
    threads. Left alone, every worker's torch would start one thread per core,
    and ``slots`` workers would then fight for the same cores; on a 2-core
    machine two such workers trained 2.3 times slower than two one-thread
    workers, and up to 12 times with other work running (spin-waiting threads;
    docs/lab.md). A user's own
    ``OMP_NUM_THREADS`` is kept. ``extra`` is added as given (the secrets a job needs).
    """
    env = dict(os.environ if base is None else base)
    env.update(extra or {})
    env[EXECUTOR_ENV] = str(os.getpid())
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    if "OMP_NUM_THREADS" not in env:
        threads = str(max(1, usable_cpus() // max(1, slots)))
        for name in THREAD_VARIABLES:
            env.setdefault(name, threads)
    return env


class _Server:
    """A long-lived worker process (``worker --serve``) that runs one job at a time."""

    def __init__(self, gpu: str | None, slots: int = 1, extra: Mapping[str, str] | None = None) -> None:
        self.gpu = gpu
        env = worker_env(gpu, slots, extra=extra)
        read_fd, write_fd = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sftmix.study.worker", "--serve", str(write_fd)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=env, pass_fds=(write_fd,), preexec_fn=_die_with_parent, text=True)
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        self.answers = os.fdopen(read_fd, "r")
        self.job: str | None = None
        self._buffer = ""

    def start(self, job_file: Path, log_file: Path) -> None:
        assert self.proc.stdin is not None
        self.job = job_file.stem
        self.proc.stdin.write(f"{job_file}\t{log_file}\n")
        self.proc.stdin.flush()

    def poll(self) -> State:
        try:
            chunk = self.answers.read()
        except (BlockingIOError, TypeError):
            chunk = None
        if chunk:
            self._buffer += chunk
        if "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            self.job = None
            return State.DONE if line.split("\t")[1] == "0" else State.FAILED
        if self.proc.poll() is not None:  # died in the middle of a job (killed, out of memory)
            self.job = None
            return State.FAILED
        return State.RUNNING

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, kill: bool = False) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.answers.close()


class ProcessPool:
    """``workers`` long-lived worker processes on this machine, one GPU each when there are
    GPUs; ``env`` is added to each worker's environment."""

    def __init__(self, workers: int = 1, env: Mapping[str, str] | None = None) -> None:
        self.gpus = visible_gpus()
        self.slots = max(1, min(workers, len(self.gpus)) if self.gpus else workers)
        self.env = dict(env or {})
        self._servers: list[_Server | None] = [None] * self.slots

    def submit(self, job: Job, job_file: Path, log_file: Path) -> Handle:
        for i, server in enumerate(self._servers):
            if server is None or not server.alive:
                if server is not None:
                    server.stop()
                server = self._servers[i] = _Server(self.gpus[i] if self.gpus else None, self.slots,
                                                    self.env)
            if server.job is None:
                server.start(job_file, log_file)
                return Handle(job, server)
        raise RuntimeError("no free worker: the scheduler submitted more jobs than slots")

    def poll(self, handle: Handle) -> State:
        server: _Server = handle.ref  # type: ignore[assignment]
        return server.poll()

    def cancel(self, handle: Handle) -> None:
        server: _Server = handle.ref  # type: ignore[assignment]
        server.stop()
        self._servers = [None if s is server else s for s in self._servers]

    def close(self) -> None:
        for server in self._servers:
            if server is not None:
                server.stop()
        self._servers = [None] * self.slots
