"""Run jobs of a study: ``python -m sftmix.study.worker JOB.json`` runs one and exits;
``python -m sftmix.study.worker --serve FD`` runs job after job.

A job file says what to build and where, with paths relative to its study
directory (``STUDY/jobs/KEY.json``); the worker runs each job inside that
directory, so the study runs wherever it is mounted. It marks the job running
(with its pid) next to the job file and, on failure, leaves a ``.failed.json``
with the error; the artefact itself is only ever published complete.

In serve mode the worker reads lines ``JOB_FILE<TAB>LOG_FILE`` from standard
input, runs each job with its output sent to its log file, and answers
``KEY<TAB>0`` or ``KEY<TAB>1`` on the file descriptor it was given. Keeping the
process saves the import of torch and transformers for every job, which is
most of the cost of a small job.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

from sftmix.artifacts import write_json_atomic
from sftmix.errors import SftmixError
from sftmix.logging_setup import configure
from sftmix.settings import freeze


def running_file(job_file: Path) -> Path:
    return job_file.with_suffix(".running")


def failed_file(job_file: Path) -> Path:
    return job_file.with_suffix(".failed.json")


def run_job(job_file: Path) -> int:
    job_file = job_file.resolve()
    study_dir = job_file.parent.parent
    failed_file(job_file).unlink(missing_ok=True)
    running_file(job_file).write_text(str(os.getpid()))
    key = job_file.stem
    from sftmix.train.preemption import PREEMPTED_EXIT, Preempted

    try:
        from sftmix.study.jobs import read_job
        from sftmix.study.kinds import KINDS

        job = read_job(job_file)
        key = job.key
        # Inside the study directory every path a job reads or records is relative to it.
        with contextlib.chdir(study_dir):
            KINDS[job.kind].run(job.spec, job.out.relative_to(study_dir), job.label)
    except Preempted as exc:  # checkpointed on the scheduler's warning; to be run again
        logging.getLogger(__name__).warning("job %s stopped: %s", key, exc)
        return PREEMPTED_EXIT
    except Exception as exc:
        user = isinstance(exc, SftmixError)
        message = str(exc) if user else f"{type(exc).__name__}: {exc}"
        write_json_atomic(failed_file(job_file), {
            "error": message,
            "traceback": None if user else traceback.format_exc(),
        })
        logging.getLogger(__name__).error("job %s failed: %s", key, message)
        return 1
    finally:
        running_file(job_file).unlink(missing_ok=True)
        gc.collect()
    return 0


@contextlib.contextmanager
def output_to(log_file: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (fds 1 and 2) to ``log_file`` for a while."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (fd, *saved):
            os.close(f)


def serve(answer_fd: int) -> int:
    with os.fdopen(answer_fd, "w", buffering=1) as answers:
        for line in sys.stdin:
            job_path, _, log_path = line.rstrip("\n").partition("\t")
            job_file = Path(job_path)
            with output_to(Path(log_path)):
                code = run_job(job_file)
            answers.write(f"{job_file.stem}\t{code}\n")
    return 0


def main(argv: list[str]) -> int:
    freeze()  # the environment the executor gave this worker, read once
    configure()
    if argv[:1] == ["--serve"]:
        return serve(int(argv[1]))
    return run_job(Path(argv[0]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
