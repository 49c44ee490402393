"""Run a study's job graph to completion, resumably.

``run_study`` writes the resolved study and plan into the study directory, then
repeatedly submits every job whose dependencies are complete, up to the
executor's slots. A job is *done* only when its artefact directory is complete
(``COMPLETE.json``, written last and atomically), so after a crash or SIGKILL at
any moment the same command finishes the study: complete artefacts are skipped,
half-built ones are discarded (stages resume from their last checkpoint). A
failed job stops only the jobs that depend on it. Ctrl-C cancels the running
jobs and returns.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from sftmix.artifacts import clean_partials, is_complete, write_json_atomic, write_text_atomic
from sftmix.config import dump_yaml
from sftmix.secrets import split, to_env
from sftmix.study.config import StudyConfig
from sftmix.study.executor import DONE, RUNNING, Executor, Handle, LocalExecutor
from sftmix.study.jobs import Job, build_jobs, check_layout, write_layout
from sftmix.study.plan import Plan, build_plan
from sftmix.study.priority import by_priority, remaining_path, stage_weights
from sftmix.study.specs import KINDS
from sftmix.study.store import STORE_NAME, ResultsStore
from sftmix.study.worker import failed_file

log = logging.getLogger(__name__)


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
        return not (self.failed or self.blocked or self.interrupted)


def job_file(study_dir: Path, key: str) -> Path:
    return study_dir / "jobs" / f"{key}.json"


def checked_plan(study: StudyConfig) -> Plan:
    """The study's plan with its token estimate, which reads (and so validates) every source:
    bad data stops the study here, before anything is written."""
    plan = build_plan(study)
    plan.job_weights = stage_weights(plan)
    return plan


def prepare(study: StudyConfig, study_dir: Path, clean: bool = True,
            plan: Plan | None = None) -> tuple[Plan, dict[str, Job]]:
    """Plan, then write the study, plan and job files (the study directory is created here).

    ``study_dir`` is made absolute for this process; what is written inside it is relative.
    ``clean=False`` keeps half-built artefacts: jobs still running elsewhere may be building them.
    """
    study_dir = study_dir.resolve()
    check_layout(study_dir)
    plan = plan or checked_plan(study)
    jobs = build_jobs(plan, study_dir)
    study_dir.mkdir(parents=True, exist_ok=True)
    write_layout(study_dir)
    write_text_atomic(study_dir / "study.yaml", dump_yaml(study.public_dump()))
    _remove_stale_job_files(study_dir, set(jobs))
    for job in jobs.values():
        path = job_file(study_dir, job.key)
        spec = job.to_file(study_dir)
        if not path.exists() or json.loads(path.read_text()) != spec:
            write_json_atomic(path, spec)
    for kind in KINDS.values() if clean else ():
        clean_partials(study_dir / kind.folder)
    return plan, jobs


def _remove_stale_job_files(study_dir: Path, keys: set[str]) -> None:
    """Job files of an earlier version of the study (their artefacts stay: they are keyed)."""
    folder = study_dir / "jobs"
    if folder.is_dir():
        for path in folder.iterdir():
            if path.name.split(".", 1)[0] not in keys:
                path.unlink()


def run_study(study: StudyConfig, study_dir: Path, executor: Executor | None = None,
              progress: bool = True, poll_seconds: float = 0.2) -> Outcome:
    executor = executor or LocalExecutor(study.workers)
    study_dir = study_dir.resolve()
    # Secrets reach the workers through their environment only (never a job file).
    with _environment(to_env(evaluation_secrets(study))):
        if hasattr(executor, "run_graph"):  # a cluster scheduler queues the whole graph itself
            return executor.run_graph(study, study_dir, progress=progress)
        plan, jobs = prepare(study, study_dir)
        return _run(study, study_dir, plan, jobs, executor, progress, poll_seconds)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _run(study: StudyConfig, study_dir: Path, plan: Plan, jobs: dict[str, Job], executor: Executor,
         progress: bool, poll_seconds: float) -> Outcome:
    priority = remaining_path(jobs, plan.job_weights)
    store = ResultsStore(study_dir / STORE_NAME)
    outcome = Outcome()
    try:
        store.record_plan(plan)
        store.sync(jobs)
        state = {k: (DONE if j.complete else "pending") for k, j in jobs.items()}
        outcome.skipped = [k for k, s in state.items() if s == DONE]
        running: dict[str, Handle] = {}
        # A bar on a terminal; elsewhere (a log file, CI) one plain line per finished job.
        on_terminal = progress and sys.stderr.isatty()
        plain = progress and not on_terminal
        finished = len(outcome.skipped)
        bar = tqdm(total=len(jobs), initial=finished, desc=study.name, unit="job",
                   disable=not on_terminal)
        try:
            while True:
                _block_dependents(jobs, state, outcome)
                for key in by_priority([k for k, s in state.items() if s == "pending"], priority):
                    if len(running) >= executor.slots:
                        break
                    if all(state[d] == DONE for d in jobs[key].deps):
                        job = jobs[key]
                        running[key] = executor.submit(job, job_file(study_dir, key),
                                                       study_dir / "logs" / f"{key}.log")
                        state[key] = RUNNING
                        bar.set_postfix_str(f"{job.kind}: {job.label}"[:60])
                for key, handle in list(running.items()):
                    status = executor.poll(handle)
                    if status == RUNNING:
                        continue
                    del running[key]
                    job = jobs[key]
                    if status == DONE and job.complete:
                        state[key] = DONE
                        outcome.done.append(key)
                        store.record_job(job)
                    else:
                        state[key] = "failed"
                        outcome.failed.append(key)
                        _report_failure(study_dir, job, store)
                    bar.update(1)
                    finished += 1
                    if plain:
                        log.info("%s: %d/%d jobs, %s %s: %s", study.name, finished, len(jobs),
                                 "done" if state[key] == DONE else "failed", job.kind, job.label)
                if not running and not any(
                    s == "pending" and all(state[d] == DONE for d in jobs[k].deps)
                    for k, s in state.items()
                ):
                    break
                time.sleep(poll_seconds)
        except KeyboardInterrupt:
            outcome.interrupted = True
            for handle in running.values():
                executor.cancel(handle)
        finally:
            bar.close()
    finally:
        executor.close()
        store.close()
    write_json_atomic(study_dir / "last_run.json", asdict(outcome))
    return outcome


def evaluation_secrets(study: StudyConfig) -> dict[str, object]:
    """The secret part of each suite's options (suite -> secrets), for the workers' environment."""
    found = {suite: split(dict(options))[1] for suite, options in study.evaluation.items()}
    return {suite: secret for suite, secret in found.items() if secret is not None}


def _block_dependents(jobs: dict[str, Job], state: dict[str, str], outcome: Outcome) -> None:
    changed = True
    while changed:
        changed = False
        for key, job in jobs.items():
            if state[key] == "pending" and any(state[d] in ("failed", "blocked") for d in job.deps):
                state[key] = "blocked"
                outcome.blocked.append(key)
                changed = True


def _report_failure(study_dir: Path, job: Job, store: ResultsStore) -> None:
    path = failed_file(job_file(study_dir, job.key))
    reason = json.loads(path.read_text())["error"] if path.exists() else "the worker died without a report"
    log.error("%s failed (%s): %s; log: %s", job.kind, job.label, reason,
              study_dir / "logs" / f"{job.key}.log")
    for key, out in job.outputs.items():
        if job.kind in ("stage", "eval") and not is_complete(out):
            store.set_status("stages" if job.kind == "stage" else "evaluations", key, "failed")


def load_plan(study_dir: Path) -> tuple[StudyConfig, Plan, dict[str, Job]]:
    """The plan of an existing study directory (from the resolved study it holds)."""
    from sftmix.config import load_config

    check_layout(study_dir)
    study = load_config(study_dir / "study.yaml", StudyConfig)
    plan = build_plan(study)
    return study, plan, build_jobs(plan, study_dir)
