"""Checkpoint and stop when a scheduler warns that the job is about to end.

A cluster scheduler announces a preemption or the end of a time limit with a
signal (SLURM: ``--signal=USR2@<seconds>``). When the variable
``SFTMIX_CHECKPOINT_SIGNAL`` names a signal (``USR2``), a stage catches it and,
at the end of the optimiser step under way, saves a regular Trainer checkpoint
and stops with :class:`Preempted`; nothing is published, and the next run of
the stage resumes from that checkpoint as from any other. Stopping between
steps, never inside one, keeps the checkpoint consistent; with several
processes they agree (one all-reduce per step) on the step to stop after, since
each receives the signal at its own moment.
"""

from __future__ import annotations

import logging
import signal
from typing import Any

log = logging.getLogger(__name__)

SIGNAL_ENV = "SFTMIX_CHECKPOINT_SIGNAL"
PREEMPTED_EXIT = 75  # EX_TEMPFAIL: the job should run again


class Preempted(Exception):
    """Training stopped after saving a checkpoint because the job is about to be ended."""


def checkpoint_signal() -> signal.Signals | None:
    from sftmix.settings import current

    name = current().checkpoint_signal
    if not name:
        return None
    try:
        return signal.Signals[name if name.startswith("SIG") else "SIG" + name]
    except KeyError:
        raise ValueError(f"{SIGNAL_ENV}={name!r} is not a signal name (expected e.g. USR2)") from None


def checkpoint_on_signal() -> list[Any]:
    """The callback when the environment asks for one, else nothing.

    Built here so that importing :class:`Preempted` (the worker does, for every job) does
    not import transformers.
    """
    signum = checkpoint_signal()
    if signum is None:
        return []
    from transformers import TrainerCallback

    class CheckpointOnSignal(TrainerCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.requested = False
            self.stopping = False

        def _handler(self, signum: int, frame: Any) -> None:
            self.requested = True

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            signal.signal(signum, self._handler)

        def _agreed(self, args: Any) -> bool:
            if args.world_size <= 1:
                return self.requested
            import torch
            import torch.distributed as dist

            flag = torch.tensor([int(self.requested)], device=args.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            return bool(flag.item())

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if not self.stopping and self._agreed(args):
                log.warning("%s received: saving a checkpoint at step %d and stopping",
                            signum.name, state.global_step)
                self.stopping = True
                control.should_save = True

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.stopping:
                raise Preempted(f"checkpoint saved at step {state.global_step} after {signum.name}")

    return [CheckpointOnSignal()]
