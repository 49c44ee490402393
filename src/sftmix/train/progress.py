"""What a training stage shows while it runs: one readable line per logging step.

The Trainer's own output -- a dict per logging step with numbers formatted as
strings, next to tqdm bars -- is kept for ``-v``. Otherwise :func:`quiet_trainer`
replaces it with one log line per logging step::

    stage maths: step 12/59  loss 1.8431  lr 3.51e-04  6,120 tokens/s  epoch 0.63

and silences a warning that is expected, not alarming: resuming a model whose
``lm_head`` is tied to its input embeddings reports ``lm_head.weight`` as
"missing" from the checkpoint, though the tied weight is loaded with the
embeddings.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_callback import PrinterCallback, ProgressCallback

log = logging.getLogger(__name__)

TIED_HEAD_WARNING = "There were missing keys in the checkpoint model loaded: ['lm_head.weight']"


def step_line(name: str, state: TrainerState, logs: dict[str, Any], seconds: float) -> str:
    """``stage NAME: step S/T  loss L  lr R  N tokens/s  epoch E`` from one logging step."""
    parts = [f"stage {name}: step {state.global_step}/{state.max_steps}"]
    if "loss" in logs:
        parts.append(f"loss {float(logs['loss']):.4f}")
    if "learning_rate" in logs:
        parts.append(f"lr {float(logs['learning_rate']):.2e}")
    if "tokens" in logs and seconds > 0:
        parts.append(f"{float(logs['tokens']) / seconds:,.0f} tokens/s")
    if "epoch" in logs:
        parts.append(f"epoch {float(logs['epoch']):.2f}")
    return "  ".join(parts)


class StepLineCallback(TrainerCallback):
    """Logs :func:`step_line` for every logging step that carries a loss."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._last = time.monotonic()

    def on_train_begin(self, args: TrainingArguments, state: TrainerState,
                       control: TrainerControl, **kwargs: Any) -> None:
        self._last = time.monotonic()

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        now = time.monotonic()
        seconds, self._last = now - self._last, now
        log.info("%s", step_line(self.name, state, logs, seconds))


class _TiedHeadFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(TIED_HEAD_WARNING)


def quiet_trainer(trainer: Any, name: str, verbose: bool) -> None:
    """Unless ``verbose``: the Trainer's printed dicts and bars give way to :class:`StepLineCallback`."""
    config = getattr(getattr(trainer, "model", None), "config", None)
    if getattr(config, "tie_word_embeddings", False):
        trainer_log = logging.getLogger("transformers.trainer")
        if not any(isinstance(f, _TiedHeadFilter) for f in trainer_log.filters):
            trainer_log.addFilter(_TiedHeadFilter())
    if verbose:
        return
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(StepLineCallback(name))
