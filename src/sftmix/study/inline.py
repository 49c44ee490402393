"""The inline executor: every job in this process, one after another, dependencies first.

It is what ``sftmix train`` runs a schedule with, so that the schedule works under
``accelerate launch`` (or ``torchrun``): every process of the launch takes part in
each stage (DDP, FSDP), while the main process alone makes base models and
mixtures, evaluates and writes the study directory; the others wait for it. A
study can name it too (``--executor inline``): no worker processes, tracebacks in
the terminal, for debugging. A failed job stops the run (the next ones would need it).
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

from sftmix.study.executor import Executor, Outcome
from sftmix.study.jobs import build_jobs
from sftmix.study.kinds import KINDS

if TYPE_CHECKING:
    from sftmix.study.runner import StudyRun

log = logging.getLogger(__name__)

# Kinds every process of a multi-process launch runs together; the main process runs the rest.
ALL_PROCESSES = frozenset({"stage"})


class InlineExecutor(Executor):
    def run(self, run: StudyRun) -> Outcome:
        from sftmix.train.stage import process_state

        state = process_state()
        main = state.is_main_process
        jobs = run.prepare() if main else None
        state.wait_for_everyone()
        if jobs is None:
            jobs = build_jobs(run.plan, run.study_dir)
        store = run.open_store(jobs) if main else None
        outcome = Outcome(skipped=[k for k, j in jobs.items() if j.complete])
        try:
            for job in jobs.values():
                if not job.complete and (main or job.kind in ALL_PROCESSES):
                    log.info("%s: %s", job.kind, job.label)
                    with contextlib.chdir(run.study_dir):
                        KINDS[job.kind].run(job.spec, job.out.relative_to(run.study_dir), job.label)
                state.wait_for_everyone()
                if job.key not in outcome.skipped:
                    outcome.done.append(job.key)
                    if store is not None:
                        store.record_job(job)
        finally:
            if store is not None:
                store.close()
        return outcome
