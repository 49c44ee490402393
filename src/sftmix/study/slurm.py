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

import contextlib
import getpass
import logging
import os
import shlex
import subprocess
import time
import unicodedata
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from sftmix.errors import SftmixError
from sftmix.study.config import StudyConfig
from sftmix.study.executor import Executor, Outcome
from sftmix.study.jobs import Job
from sftmix.study.priority import by_priority
from sftmix.study.runner import StudyRun, job_file, log_file
from sftmix.study.slurm_node import NodeCommand
from sftmix.study.slurm_queue import (
    ACTIVE,
    FINAL,
    is_active,
    refresh,
    slurm_dir,
    study_lock,
    write_record,
)
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


class SlurmExecutor(Executor):
    """Submits a study's jobs to SLURM; see the module docstring."""

    waits = False  # returns once the graph is queued, unless made with wait=True

    def __init__(self, study: StudyConfig, wait: bool = False, poll_seconds: float = 2.0) -> None:
        super().__init__(study, wait)
        self.config = study.executor
        self.poll_seconds = poll_seconds

    @classmethod
    def stage_processes(cls, study: StudyConfig) -> int:
        stage = study.executor.kind("stage")
        return stage.launch_processes * stage.nodes  # one rendezvous over every node's processes

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
        # submitit writes 'python' into the script as given: quoted, it is one path, as on the node.
        python = shlex.quote(self.config.python) if self.config.python else None
        return submitit.SlurmExecutor(folder=slurm_dir(study_dir) / "logs" / "%j",
                                      python=python, max_num_timeout=0)

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
        if res.nodes > 1:  # srun starts one task per node: each runs the launcher of its node
            params.update(nodes=res.nodes, ntasks_per_node=1)
        return params

    def command(self, job: Job, study_dir: Path) -> NodeCommand:
        """What runs on the node for ``job``."""
        res = self.config.kind(job.kind)
        processes = res.launch_processes if job.kind == "stage" else 1
        command = NodeCommand(key=job.key, job_file=str(job_file(study_dir, job.key)),
                              log_file=str(log_file(study_dir, job.key)), cpus=res.cpus,
                              processes=processes, accelerate_config=res.accelerate_config,
                              nodes=res.nodes if job.kind == "stage" else 1,
                              checkpoint_on_warning=job.kind == "stage" and self.config.warning_seconds > 0,
                              max_requeues=self.config.max_requeues)
        if self.config.python:
            command.python = self.config.python
        return command

    def _submit(self, executor: Any, job: Job, run: StudyRun, dep_ids: list[str]) -> str:
        from submitit.core.utils import FailedJobError

        study_dir = run.study_dir
        executor.update_parameters(**self.sbatch_options(job, run.study, dep_ids))
        try:
            with _environment(run.env):  # sbatch hands its environment to the job
                submitted = executor.submit(self.command(job, study_dir))
        except FailedJobError as exc:  # sbatch refused it: a partition, account or request it rejects
            raise SftmixError(f"sbatch refused {job.kind} {job.label}: {' '.join(str(exc).split())[-800:]}; "
                              "jobs submitted before it stay queued (sftmix status / cancel)") from None
        record = {"job_id": str(submitted.job_id), "kind": job.kind, "label": job.label,
                  "submitted_at": time.time(), "state": "PENDING", "reason": "",
                  "log": str(run.log_file(job.key)),
                  "slurm_log": str(slurm_dir(study_dir) / "logs" / str(submitted.job_id)),
                  "deps": dep_ids}
        write_record(study_dir, job.key, record)
        log.info("submitted %s %s as SLURM job %s", job.kind, job.label, submitted.job_id)
        return str(submitted.job_id)

    def run(self, run: StudyRun) -> Outcome:
        study_dir = run.study_dir
        outcome = Outcome()
        check_script_path(study_dir)
        executor = self._executor(study_dir)  # fails before anything is written without SLURM
        slurm_dir(study_dir).mkdir(parents=True, exist_ok=True)
        with study_lock(study_dir):
            records = refresh(study_dir)
            active = {k for k, r in records.items() if is_active(r)}
            jobs = run.prepare(clean=not active)
            run.open_store(jobs).close()
            ids = self._submit_graph(executor, run, jobs, records, active, outcome)
        outcome.queued = list(ids)
        if self.wait and ids:
            self._follow(study_dir, jobs, ids, outcome, run.progress)
        return outcome

    def _submit_graph(self, executor: Any, run: StudyRun, jobs: dict[str, Job],
                      records: dict[str, dict[str, Any]], active: set[str], outcome: Outcome
                      ) -> dict[str, str]:
        """Submit every job that is neither complete nor queued; returns key -> SLURM id of
        every job the graph waits on (just submitted or already in the queue)."""
        ids: dict[str, str] = {}
        submitted = 0
        for key in submission_order(jobs, run.priority(jobs)):
            job = jobs[key]
            if job.complete:
                outcome.skipped.append(key)
            elif key in active:
                ids[key] = records[key]["job_id"]  # already queued or running: not again
            else:
                ids[key] = self._submit(executor, job, run, [ids[d] for d in job.deps if d in ids])
                submitted += 1
        log.debug("%d jobs submitted now, %d already in the queue, %d complete", submitted,
                 len(ids) - submitted, len(outcome.skipped))
        return ids

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


def check_script_path(study_dir: Path) -> None:
    """The study directory names the jobs' log files in their sbatch options: a control
    character in it would add lines to the script."""
    bad = sorted({c for c in str(study_dir) if unicodedata.category(c) == "Cc"})
    if bad:
        raise SftmixError(f"-o/--out {str(study_dir)!r}: the SLURM executor writes this path into "
                          f"sbatch options, and it holds control characters ({', '.join(map(repr, bad))}); "
                          "expected a path without them")


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` in this process's environment while ``sbatch`` runs, and only then."""
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
