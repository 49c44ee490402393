"""The SLURM executor: the whole job graph queued at once, through submitit.

``sftmix run STUDY.yaml --executor slurm`` plans the study as the local executor
does, then submits every job that is not complete with ``sbatch`` (through
submitit), each depending on the SLURM ids of its unfinished dependencies
(``--dependency=afterok:...``, ``--kill-on-invalid-dep=yes``: a job whose
dependency failed is cancelled rather than left pending forever). Nothing needs
to stay alive on the submitting machine; ``--wait`` follows the jobs to the end
and records the results.

A rerun submits only what is neither complete nor queued or running, so it
resubmits what failed or was cancelled, and never submits a job twice: the
decision and the submission happen under a lock on the study directory, and
every id is recorded (``sftmix.study.slurm_queue``) before the lock is released.
"""

from __future__ import annotations

import getpass
import logging
import subprocess
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sftmix.artifacts import write_json_atomic
from sftmix.errors import SftmixError
from sftmix.study.config import StudyConfig
from sftmix.study.executor_config import ExecutorConfig
from sftmix.study.jobs import Job
from sftmix.study.priority import by_priority, remaining_path
from sftmix.study.runner import Outcome, checked_plan, job_file, prepare
from sftmix.study.slurm_queue import (
    ACTIVE,
    FINAL,
    is_active,
    refresh,
    slurm_dir,
    study_lock,
    write_record,
)
from sftmix.study.slurm_task import SlurmTask
from sftmix.study.store import STORE_NAME, ResultsStore

log = logging.getLogger(__name__)


def submission_order(jobs: dict[str, Job], priority: dict[str, float]) -> list[str]:
    """Every dependency before its dependents; otherwise longest remaining path first."""
    order: list[str] = []
    placed: set[str] = set()
    waiting = by_priority(jobs, priority)
    while waiting:
        key = next(k for k in waiting if all(d in placed or d not in jobs for d in jobs[k].deps))
        waiting.remove(key)
        placed.add(key)
        order.append(key)
    return order


class SlurmExecutor:
    """Submits a study's jobs to SLURM; see the module docstring."""

    slots = 0  # the scheduler is SLURM's; the local scheduling loop is not used

    def __init__(self, config: ExecutorConfig, wait: bool = False, poll_seconds: float = 2.0) -> None:
        self.config = config
        self.wait = wait
        self.poll_seconds = poll_seconds

    # -- submission ------------------------------------------------------------------------
    def _executor(self, study_dir: Path) -> Any:
        """submitit's executor, once the SLURM controller has answered (nothing is written before)."""
        import submitit

        try:
            probe = subprocess.run(["squeue", "-h", "-u", getpass.getuser(), "-o", "%i"],
                                   capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SftmixError(f"the SLURM executor needs the SLURM client commands (sbatch, squeue, "
                              f"scancel) on this machine: {exc}") from None
        if probe.returncode != 0:
            raise SftmixError("the SLURM controller did not answer 'squeue': "
                              + " ".join(probe.stderr.split())[-500:])
        return submitit.SlurmExecutor(folder=slurm_dir(study_dir) / "logs" / "%j",
                                      python=self.config.python, max_num_timeout=0)

    def sbatch_options(self, job: Job, study: StudyConfig, dep_ids: list[str]) -> dict[str, Any]:
        """The submitit parameters of one job (sbatch options, setup lines)."""
        cfg = self.config
        res = cfg.kind(job.kind)
        extra: dict[str, Any] = {"time": res.time or cfg.time}
        for name in ("account", "qos"):
            if getattr(cfg, name):
                extra[name] = getattr(cfg, name)
        if res.mem_gb is not None:
            extra["mem"] = f"{int(res.mem_gb * 1024)}M"
        if dep_ids:
            extra["dependency"] = "afterok:" + ":".join(dep_ids)
            extra["kill-on-invalid-dep"] = "yes"
        if job.kind == "stage":
            extra["requeue"] = True  # it may requeue itself on the warning signal
        extra.update(cfg.sbatch)
        extra.update(res.sbatch)
        params: dict[str, Any] = {
            "job_name": f"sftmix-{study.name}-{job.key}",
            "cpus_per_task": res.cpus,
            "signal_delay_s": cfg.warning_seconds or 60,
            "setup": list(cfg.setup),
            "additional_parameters": extra,
        }
        if cfg.partition:
            params["partition"] = cfg.partition
        if res.gpus:
            params["gpus_per_node"] = res.gpus
        return params

    def task(self, job: Job, study_dir: Path) -> SlurmTask:
        res = self.config.kind(job.kind)
        processes = res.launch_processes if job.kind == "stage" else 1
        task = SlurmTask(key=job.key, job_file=str(job_file(study_dir, job.key)),
                         log_file=str(study_dir / "logs" / f"{job.key}.log"), cpus=res.cpus,
                         processes=processes, accelerate_config=res.accelerate_config,
                         checkpoint_on_warning=job.kind == "stage" and self.config.warning_seconds > 0,
                         max_requeues=self.config.max_requeues)
        if self.config.python:
            task.python = self.config.python
        return task

    def _submit(self, executor: Any, job: Job, study: StudyConfig, study_dir: Path,
                dep_ids: list[str]) -> str:
        from submitit.core.utils import FailedJobError

        executor.update_parameters(**self.sbatch_options(job, study, dep_ids))
        try:
            submitted = executor.submit(self.task(job, study_dir))
        except FailedJobError as exc:  # sbatch refused it: a partition, account or request it rejects
            raise SftmixError(f"sbatch refused {job.kind} {job.label}: {' '.join(str(exc).split())[-800:]}; "
                              "jobs submitted before it stay queued (sftmix status / cancel)") from None
        record = {"job_id": str(submitted.job_id), "kind": job.kind, "label": job.label,
                  "submitted_at": time.time(), "state": "PENDING", "reason": "",
                  "log": str(study_dir / "logs" / f"{job.key}.log"),
                  "slurm_log": str(slurm_dir(study_dir) / "logs" / str(submitted.job_id)),
                  "deps": dep_ids}
        write_record(study_dir, job.key, record)
        log.info("submitted %s %s as SLURM job %s", job.kind, job.label, submitted.job_id)
        return str(submitted.job_id)

    def run_graph(self, study: StudyConfig, study_dir: Path, progress: bool = True) -> Outcome:
        study_dir = study_dir.resolve()
        outcome = Outcome()
        executor = self._executor(study_dir)  # fails before anything is written without SLURM
        plan = checked_plan(study)  # and so does bad input
        slurm_dir(study_dir).mkdir(parents=True, exist_ok=True)
        with study_lock(study_dir):
            records = refresh(study_dir)
            active = {k for k, r in records.items() if is_active(r)}
            plan, jobs = prepare(study, study_dir, clean=not active, plan=plan)
            store = ResultsStore(study_dir / STORE_NAME)
            try:
                store.record_plan(plan)
                store.sync(jobs)
            finally:
                store.close()
            priority = remaining_path(jobs, plan.job_weights)
            ids: dict[str, str] = {}
            submitted = 0
            for key in submission_order(jobs, priority):
                job = jobs[key]
                if job.complete:
                    outcome.skipped.append(key)
                elif key in active:
                    ids[key] = records[key]["job_id"]  # already queued or running: not again
                else:
                    deps = [ids[d] for d in job.deps if d in ids]
                    ids[key] = self._submit(executor, job, study, study_dir, deps)
                    submitted += 1
        outcome.queued = list(ids)
        log.info("%d jobs submitted now, %d already in the queue, %d complete", submitted,
                 len(ids) - submitted, len(outcome.skipped))
        if self.wait and ids:
            self._follow(study_dir, jobs, ids, outcome, progress)
        write_json_atomic(study_dir / "last_run.json", asdict(outcome))
        return outcome

    # -- waiting ---------------------------------------------------------------------------
    def _follow(self, study_dir: Path, jobs: dict[str, Job], ids: dict[str, str], outcome: Outcome,
                progress: bool) -> None:
        """Poll until every queued job has ended; record what completed."""
        from tqdm import tqdm

        waiting = set(ids)
        bar = tqdm(total=len(ids), desc="slurm", unit="job", disable=not progress)
        store = ResultsStore(study_dir / STORE_NAME)
        try:
            while waiting:
                with study_lock(study_dir, blocking=False) as locked:
                    records = refresh(study_dir, persist=locked)
                for key in sorted(waiting):
                    record = records.get(key, {})
                    state = record.get("state")
                    if record.get("job_id") and record["job_id"] != ids[key]:
                        ids[key] = record["job_id"]  # resubmitted by another run meanwhile: follow it
                        continue
                    if state in ACTIVE:
                        continue
                    job = jobs[key]
                    if state == "COMPLETED" and job.complete:
                        outcome.done.append(key)
                        store.record_job(job)
                    elif state in FINAL or state == "UNKNOWN":
                        reason = record.get("reason", "")
                        (outcome.blocked if "Dependency" in reason else outcome.failed).append(key)
                        log.error("%s %s ended %s%s; log: %s", job.kind, job.label, state,
                                  f" ({reason})" if reason and reason != "None" else "", record.get("log"))
                    else:
                        continue
                    waiting.discard(key)
                    bar.update(1)
                if waiting:
                    time.sleep(self.poll_seconds)
        except KeyboardInterrupt:
            outcome.interrupted = True
        finally:
            bar.close()
            store.close()
        outcome.queued = sorted(waiting)


def make_slurm_executor(study: StudyConfig, wait: bool = False) -> SlurmExecutor:
    return SlurmExecutor(study.executor, wait=wait)
