"""Run one job of a study: ``python -m sftmix.study.worker JOB.json``.

The job file says what to build and where. The worker marks itself running
(with its pid) next to the job file, and on failure leaves a ``.failed.json``
with the error; the artefact itself is only ever published complete.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from pathlib import Path

from sftmix.artifacts import write_json_atomic
from sftmix.errors import SftmixError
from sftmix.logging_setup import configure


def running_file(job_file: Path) -> Path:
    return job_file.with_suffix(".running")


def failed_file(job_file: Path) -> Path:
    return job_file.with_suffix(".failed.json")


def main(argv: list[str]) -> int:
    configure()
    job_file = Path(argv[0])
    job = json.loads(job_file.read_text())
    failed_file(job_file).unlink(missing_ok=True)
    running_file(job_file).write_text(str(os.getpid()))
    try:
        from sftmix.study import tasks

        tasks.run(job["kind"], job["payload"], Path(job["out"]))
    except BaseException as exc:
        user = isinstance(exc, SftmixError)
        message = str(exc) if user else f"{type(exc).__name__}: {exc}"
        write_json_atomic(failed_file(job_file), {
            "error": message,
            "traceback": None if user else traceback.format_exc(),
        })
        logging.getLogger(__name__).error("job %s failed: %s", job["key"], message)
        return 1
    finally:
        running_file(job_file).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
