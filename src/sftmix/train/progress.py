"""What a training stage shows while it runs: a readable heartbeat line.

The Trainer's own output -- a dict per logging step with numbers formatted as
strings, next to tqdm bars -- is kept for ``-v``. Otherwise :func:`quiet_trainer`
replaces it with a log line at the first logging step, then once every
:data:`HEARTBEAT_SECONDS` and at the last step (every step is in the stage's
``train_log.jsonl``); the rate is over the steps since the line before::

    stage maths: step 312/768  loss 0.4231  lr 1.20e-03  6,120 tokens/s  epoch 1.22  (50 s, about 73 s left)

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
# Seconds between two heartbeat lines of a stage: a sign of life, not a log of every step.
HEARTBEAT_SECONDS = 30.0


def step_line(name: str, state: TrainerState, logs: dict[str, Any], seconds: float,
              tokens: float | None = None) -> str:
    """``stage NAME: step S/T  loss L  lr R  N tokens/s  epoch E`` from one logging step;
    ``tokens`` trained in the last ``seconds`` (default: the step's own)."""
    parts = [f"stage {name}: step {state.global_step}/{state.max_steps}"]
    if "loss" in logs:
        parts.append(f"loss {float(logs['loss']):.4f}")
    if "learning_rate" in logs:
        parts.append(f"lr {float(logs['learning_rate']):.2e}")
    tokens = float(logs["tokens"]) if tokens is None and "tokens" in logs else tokens
    if tokens is not None and seconds > 0:
        parts.append(f"{tokens / seconds:,.0f} tokens/s")
    if "epoch" in logs:
        parts.append(f"epoch {float(logs['epoch']):.2f}")
    return "  ".join(parts)


class StepLineCallback(TrainerCallback):
    """Logs :func:`step_line` at the first logging step with a loss, then every ``every``
    seconds and at the last step, with the time spent and an estimate of the time left."""

    def __init__(self, name: str, every: float = HEARTBEAT_SECONDS) -> None:
        self.name, self.every = name, every
        self._begin = self._last = time.monotonic()
        self._first_step = 0
        self._tokens = 0.0
        self._shown = False

    def on_train_begin(self, args: TrainingArguments, state: TrainerState,
                       control: TrainerControl, **kwargs: Any) -> None:
        self._begin = self._last = time.monotonic()
        self._first_step = state.global_step  # a resumed stage counts from its checkpoint
        self._tokens, self._shown = 0.0, False

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        self._tokens += float(logs.get("tokens", 0))
        now = time.monotonic()
        last = state.global_step >= state.max_steps
        if self._shown and not last and now - self._last < self.every:
            return
        line = step_line(self.name, state, logs, now - self._last, self._tokens)
        log.info("%s  (%s)", line, self._timing(state, now))
        self._last, self._tokens, self._shown = now, 0.0, True

    def _timing(self, state: TrainerState, now: float) -> str:
        spent = now - self._begin
        done = state.global_step - self._first_step
        if done <= 0 or state.global_step >= state.max_steps:
            return f"{spent:.0f} s"
        left = spent / done * (state.max_steps - state.global_step)
        return f"{spent:.0f} s, about {left:.0f} s left"


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
