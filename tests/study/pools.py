"""A worker pool for tests that settles each job inside ``submit``: the local executor's
other calls then have nothing left to do."""

from __future__ import annotations

from pathlib import Path

from sftmix.study.executor import State
from sftmix.study.jobs import Job
from sftmix.study.pool import Handle


class SettledAtSubmit:
    """Subclasses give ``submit``, returning a handle whose ``ref`` is the job's final state."""

    slots = 1

    def submit(self, job: Job, job_file: Path, log_file: Path) -> Handle:
        raise NotImplementedError

    def poll(self, handle: Handle) -> State:
        return State(handle.ref)

    def cancel(self, handle: Handle) -> None:
        pass

    def close(self) -> None:
        pass
