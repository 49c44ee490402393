"""Run a study's job graph to completion, resumably, on the executor it names.

``run_study`` plans the study (reading, and so validating, every source before
anything is written) and hands a :class:`StudyRun` to an executor
(:mod:`sftmix.study.executor`), which writes the study directory
(:meth:`StudyRun.prepare`) and runs or queues every job that is not complete. A
job is *done* only when its artefact directory is complete (``COMPLETE.json``,
written last and atomically), so after a crash or SIGKILL at any moment the same
command finishes the study: complete artefacts are skipped, half-built ones are
discarded (stages resume from their last checkpoint). A failed job stops only
the jobs that depend on it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sftmix.artifacts import clean_partials, write_json_atomic, write_text_atomic
from sftmix.config import dump_yaml
from sftmix.secrets import split, to_env
from sftmix.study.config import StudyConfig
from sftmix.study.cost import plan_cost
from sftmix.study.executor import Executor, Outcome, make_executor
from sftmix.study.jobs import Job, build_jobs, check_layout, write_layout
from sftmix.study.kinds import KINDS
from sftmix.study.plan import Plan, build_plan
from sftmix.study.priority import remaining_path
from sftmix.study.store import STORE_NAME, ResultsStore

log = logging.getLogger(__name__)


def job_file(study_dir: Path, key: str) -> Path:
    return study_dir / "jobs" / f"{key}.json"


def log_file(study_dir: Path, key: str) -> Path:
    return study_dir / "logs" / f"{key}.log"


def checked_plan(study: StudyConfig) -> Plan:
    """The study's plan with its cost, whose estimate reads (and so validates) every source:
    bad data stops the study here, before anything is written."""
    plan = build_plan(study)
    plan.cost = plan_cost(plan)
    return plan


@dataclass
class StudyRun:
    """One run of a study's graph: what an executor needs, and the steps every executor shares."""

    study: StudyConfig
    study_dir: Path  # absolute
    plan: Plan
    env: dict[str, str] = field(default_factory=dict)  # added to every worker's environment (secrets)
    progress: bool = True

    def job_file(self, key: str) -> Path:
        return job_file(self.study_dir, key)

    def log_file(self, key: str) -> Path:
        return log_file(self.study_dir, key)

    def prepare(self, clean: bool = True) -> dict[str, Job]:
        """Write the study, its layout and its job files; returns the jobs, dependencies first.

        ``clean=False`` keeps half-built artefacts: jobs still running elsewhere may be building them.
        """
        return prepare(self.study, self.study_dir, clean, self.plan)

    def priority(self, jobs: dict[str, Job]) -> dict[str, float]:
        """Key -> the cost of the job's longest remaining path (start the largest chains first)."""
        return remaining_path(jobs, self.plan.cost.stage_tokens if self.plan.cost else {})

    def open_store(self, jobs: dict[str, Job]) -> ResultsStore:
        """The results store with the plan and every artefact already complete recorded."""
        store = ResultsStore(self.study_dir / STORE_NAME)
        store.record_plan(self.plan)
        store.sync(jobs)
        return store

    def finish(self, outcome: Outcome) -> Outcome:
        write_json_atomic(self.study_dir / "last_run.json", asdict(outcome))
        return outcome


def prepare(study: StudyConfig, study_dir: Path, clean: bool = True,
            plan: Plan | None = None) -> dict[str, Job]:
    """Plan (unless given), then write the study, plan and job files (the study directory is
    created here). What is written inside ``study_dir`` is relative to it."""
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
    return jobs


def _remove_stale_job_files(study_dir: Path, keys: set[str]) -> None:
    """Job files of an earlier version of the study (their artefacts stay: they are keyed)."""
    folder = study_dir / "jobs"
    if folder.is_dir():
        for path in folder.iterdir():
            if path.name.split(".", 1)[0] not in keys:
                path.unlink()


def evaluation_secrets(study: StudyConfig) -> dict[str, object]:
    """The secret part of each suite's options (suite -> secrets), for the workers' environment."""
    found = {suite: split(dict(options))[1] for suite, options in study.evaluation.items()}
    return {suite: secret for suite, secret in found.items() if secret is not None}


def run_study(study: StudyConfig, study_dir: Path, executor: Executor | None = None,
              progress: bool = True, plan: Plan | None = None) -> Outcome:
    """Run (or queue) every job of ``study`` that is not complete, on ``executor``
    (default: the study's own); ``plan``: its :func:`checked_plan`, when already made.
    Secrets reach the workers through their environment only."""
    executor = executor or make_executor(study.executor.name, study)
    run = StudyRun(study, study_dir.resolve(), plan or checked_plan(study),
                   env=to_env(evaluation_secrets(study)), progress=progress)
    return run.finish(executor.run(run))


def load_plan(study_dir: Path) -> tuple[StudyConfig, Plan, dict[str, Job]]:
    """The plan of an existing study directory (from the resolved study it holds)."""
    from sftmix.config import load_config

    check_layout(study_dir)
    study = load_config(study_dir / "study.yaml", StudyConfig)
    plan = build_plan(study)
    return study, plan, build_jobs(plan, study_dir)
