"""Failpoints: kill a whole study at a named moment, to prove that it resumes.

``SFTMIX_CRASH_AT=<point>[,<point>...]`` in the environment makes the first
process that reaches one of those points SIGKILL the study's executor (whose
pid the executor exports as ``SFTMIX_EXECUTOR_PID``) and itself -- the same
as a power cut, as far as the study directory can tell. Workers die with the
executor (they ask the kernel for that when they start). Without the variable
a failpoint costs one dictionary lookup.

The points are the rows of :data:`POINTS`, in the order a study reaches them;
the code, ``docs/studies.md`` and the crash test all take them from there.
"""

from __future__ import annotations

import contextlib
import os
import signal

ENV = "SFTMIX_CRASH_AT"
EXECUTOR_ENV = "SFTMIX_EXECUTOR_PID"

POINTS: dict[str, str] = {
    "publish:model": "a base model (a tiny Llama built, or a GGUF imported) is fully written "
                     "but not yet marked complete",
    "publish:mixture": "a mixture is fully written but not yet marked complete",
    "train:step": "after an optimiser step past the first checkpoint",
    "publish:stage": "a training stage is fully written but not yet marked complete",
    "train:checkpoint": "in the middle of writing a checkpoint: weights written, trainer state not yet",
    "publish:eval": "an evaluation is fully written but not yet marked complete",
    "store:commit": "inside a results-store transaction, before its commit",
}

# The ``kind`` an artefact's marker records -> the point that fires before it is published.
PUBLISH_POINTS = {
    "mixture": "publish:mixture",
    "tiny-llama": "publish:model",
    "gguf-import": "publish:model",
    "stage": "publish:stage",
    "eval": "publish:eval",
}


def crashpoint(name: str) -> None:
    if name not in POINTS:
        raise ValueError(f"unknown failpoint {name!r}; add it to sftmix.faults.POINTS")
    from sftmix.settings import current

    settings = current()
    if name not in settings.crash_at:
        return
    executor = settings.executor_pid
    if executor is not None and executor != os.getpid():
        with contextlib.suppress(ProcessLookupError):
            os.kill(executor, signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)
