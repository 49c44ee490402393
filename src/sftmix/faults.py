"""Failpoints: kill a whole study at a named moment, to prove that it resumes.

``SFTMIX_CRASH_AT=<point>[,<point>...]`` in the environment makes the first
process that reaches one of those points SIGKILL the study's executor (whose
pid the executor exports as ``SFTMIX_EXECUTOR_PID``) and itself -- the same
as a power cut, as far as the study directory can tell. Workers die with the
executor (they ask the kernel for that when they start). Without the variable
a failpoint costs one dictionary lookup.

Points: ``publish:<kind>`` (an artefact is fully written but not yet marked
complete; kinds: mixture, stage, eval, model), ``train:step`` (after an
optimiser step past the first checkpoint), ``train:checkpoint`` (in the middle
of writing a checkpoint: weights written, trainer state not yet),
``store:commit`` (inside a results-store transaction, before its commit).
"""

from __future__ import annotations

import contextlib
import os
import signal

ENV = "SFTMIX_CRASH_AT"
EXECUTOR_ENV = "SFTMIX_EXECUTOR_PID"


def crashpoint(name: str) -> None:
    spec = os.environ.get(ENV)
    if not spec or name not in spec.split(","):
        return
    executor = os.environ.get(EXECUTOR_ENV)
    if executor and executor.isdigit() and int(executor) != os.getpid():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(executor), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)
