"""The local executor: worker processes on this machine, fed ready jobs until the graph is done.

Every job whose dependencies are complete is *ready*; ready jobs start, longest
remaining path first (``sftmix.study.priority``), as long as a worker slot is
free. A job is done when its worker says so *and* its artefacts are complete; a
failed job blocks only the jobs that depend on it. Ctrl-C cancels the running
jobs and returns what was finished, which a rerun keeps.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from sftmix.study.executor import Executor, Outcome, State
from sftmix.study.jobs import Job
from sftmix.study.pool import Handle, Pool, ProcessPool
from sftmix.study.priority import by_priority
from sftmix.study.store import ResultsStore
from sftmix.study.worker import failed_file

# The logger of a stage's heartbeat lines (``sftmix.train.progress``; not imported here: it
# brings transformers into the executor), and how often the executor passes them on.
PROGRESS_LOGGER = "sftmix.train.progress"
HEARTBEAT_SECONDS = 30.0

if TYPE_CHECKING:
    from sftmix.study.config import StudyConfig
    from sftmix.study.runner import StudyRun

log = logging.getLogger(__name__)


def last_progress_line(path: Path) -> str | None:
    """The message of the last progress line (a stage's heartbeat) in a job's log, if any."""
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, fh.seek(0, 2) - 8192))
            tail = fh.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return None
    marker = f" {PROGRESS_LOGGER}: "
    found = next((line for line in reversed(tail) if marker in line), None)
    return found.split(marker, 1)[1].strip() if found else None


class LocalExecutor(Executor):
    """Runs jobs in ``study.workers`` worker processes (or in any :class:`Pool` given)."""

    def __init__(self, study: StudyConfig, wait: bool = False, pool: Pool | None = None,
                 poll_seconds: float = 0.2) -> None:
        super().__init__(study, wait)
        self.pool = pool
        self.poll_seconds = poll_seconds

    def run(self, run: StudyRun) -> Outcome:
        jobs = run.prepare()
        pool = self.pool or ProcessPool(self.study.workers, run.env)
        store = run.open_store(jobs)
        try:
            return _GraphLoop(run, jobs, pool, store, self.poll_seconds).run()
        finally:
            pool.close()
            store.close()


class _GraphLoop:
    """One pass over the graph: start ready jobs, collect finished ones, until nothing can run."""

    def __init__(self, run: StudyRun, jobs: dict[str, Job], pool: Pool, store: ResultsStore,
                 poll_seconds: float) -> None:
        self.run_, self.jobs, self.pool, self.store = run, jobs, pool, store
        self.poll_seconds = poll_seconds
        self.priority = run.priority(jobs)
        self.state = {k: (State.DONE if j.complete else State.PENDING) for k, j in jobs.items()}
        self.outcome = Outcome(skipped=[k for k, s in self.state.items() if s == State.DONE])
        self.running: dict[str, Handle] = {}
        self.progress = _Progress(run, len(jobs), len(self.outcome.skipped))

    def run(self) -> Outcome:
        try:
            while True:
                self._start_ready()
                self._collect_finished()
                self._block_dependents()  # before the end: the last failure blocks its dependents too
                self.progress.heartbeat(self.jobs, self.running)
                if not self.running and not self._ready():
                    break
                time.sleep(self.poll_seconds)
        except KeyboardInterrupt:
            self.outcome.interrupted = True
            for handle in self.running.values():
                self.pool.cancel(handle)
        finally:
            self.progress.close()
        return self.outcome

    def _ready(self) -> list[str]:
        return [k for k, s in self.state.items()
                if s == State.PENDING and all(self.state[d] == State.DONE for d in self.jobs[k].deps)]

    def _start_ready(self) -> None:
        for key in by_priority(self._ready(), self.priority):
            if len(self.running) >= self.pool.slots:
                break
            job = self.jobs[key]
            self.running[key] = self.pool.submit(job, self.run_.job_file(key), self.run_.log_file(key))
            self.state[key] = State.RUNNING
            self.progress.started(job)

    def _collect_finished(self) -> None:
        for key, handle in list(self.running.items()):
            status = self.pool.poll(handle)
            if status == State.RUNNING:
                continue
            del self.running[key]
            job = self.jobs[key]
            if status == State.DONE and job.complete:
                self.state[key] = State.DONE
                self.outcome.done.append(key)
                self.store.record_job(job)
            else:
                self.state[key] = State.FAILED
                self.outcome.failed.append(key)
                self._report_failure(job)
            self.progress.finished(job, self.state[key])

    def _block_dependents(self) -> None:
        changed = True
        while changed:
            changed = False
            for key, job in self.jobs.items():
                if self.state[key] == State.PENDING and any(
                        self.state[d] in (State.FAILED, State.BLOCKED) for d in job.deps):
                    self.state[key] = State.BLOCKED
                    self.outcome.blocked.append(key)
                    changed = True

    def _report_failure(self, job: Job) -> None:
        path = failed_file(self.run_.job_file(job.key))
        reason = json.loads(path.read_text())["error"] if path.exists() else "the worker died without a report"
        log.error("%s failed (%s): %s; log: %s", job.kind, job.label, reason, self.run_.log_file(job.key))
        self.store.record_failure(job)


class _Progress:
    """A bar on a terminal; elsewhere (a log file, CI) one plain line per finished job, and
    every ``HEARTBEAT_SECONDS`` the latest progress line of each running job's log."""

    def __init__(self, run: StudyRun, total: int, finished: int) -> None:
        on_terminal = run.progress and sys.stderr.isatty()
        self.plain = run.progress and not on_terminal
        self.run = run
        self.name, self.total, self.count = run.study.name, total, finished
        self.bar = tqdm(total=total, initial=finished, desc=run.study.name, unit="job",
                        disable=not on_terminal)
        self._beat = time.monotonic()
        self._shown: dict[str, str] = {}

    def heartbeat(self, jobs: dict[str, Job], running: dict[str, Handle]) -> None:
        if not self.plain or time.monotonic() - self._beat < HEARTBEAT_SECONDS:
            return
        self._beat = time.monotonic()
        for key in running:
            line = last_progress_line(self.run.log_file(key))
            if line and self._shown.get(key) != line:
                self._shown[key] = line
                job = jobs[key]
                named = line.startswith(f"{job.kind} {job.label}: ")  # a stage's line names it
                log.info("%s: %s", self.name, line if named else f"{job.kind} {job.label}: {line}")

    def started(self, job: Job) -> None:
        self.bar.set_postfix_str(f"{job.kind}: {job.label}"[:60])

    def finished(self, job: Job, state: State) -> None:
        self.bar.update(1)
        self.count += 1
        if self.plain:
            log.info("%s: %d/%d jobs, %s %s: %s", self.name, self.count, self.total,
                     state.value, job.kind, job.label)

    def close(self) -> None:
        self.bar.close()
