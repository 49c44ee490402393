"""What a stage shows while training: one readable line per logging step, no alarming warnings."""

from __future__ import annotations

import logging
from pathlib import Path

from transformers import Trainer, TrainerState, TrainingArguments
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from sftmix.train.progress import TIED_HEAD_WARNING, StepLineCallback, quiet_trainer, step_line
from tests.train.helpers import tiny_llama


def test_one_line_with_numbers_as_numbers() -> None:
    state = TrainerState(global_step=12, max_steps=59)
    logs = {"loss": 1.84312, "learning_rate": 0.000351, "tokens": 12240, "epoch": 0.6325,
            "grad_norm": 0.3}
    assert step_line("maths", state, logs, 2.0) == (
        "stage maths: step 12/59  loss 1.8431  lr 3.51e-04  6,120 tokens/s  epoch 0.63")


def test_quiet_trainer_swaps_the_dict_printing_and_filters_the_tied_head_warning(tmp_path: Path) -> None:
    model = tiny_llama(64, layers=1, hidden=16, heads=2, kv_heads=1)
    model.config.tie_word_embeddings = True
    args = TrainingArguments(output_dir=str(tmp_path), disable_tqdm=True, report_to="none",
                             use_cpu=True)
    trainer = Trainer(model=model, args=args)
    assert any(isinstance(c, PrinterCallback) for c in trainer.callback_handler.callbacks)
    quiet_trainer(trainer, "s", verbose=False)
    kinds = [type(c) for c in trainer.callback_handler.callbacks]
    assert PrinterCallback not in kinds and ProgressCallback not in kinds and StepLineCallback in kinds
    # transformers' loggers may not propagate to the root: listen on the logger itself.
    trainer_log = logging.getLogger("transformers.trainer")
    seen: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    trainer_log.addHandler(handler)
    try:
        trainer_log.warning(f"{TIED_HEAD_WARNING}.")
        trainer_log.warning("There were missing keys: ['model.norm.weight']")
    finally:
        trainer_log.removeHandler(handler)
    assert seen == ["There were missing keys: ['model.norm.weight']"]
    verbose = Trainer(model=model, args=args)
    quiet_trainer(verbose, "s", verbose=True)
    assert any(isinstance(c, PrinterCallback) for c in verbose.callback_handler.callbacks)


def test_a_heartbeat_at_the_first_step_then_every_interval_and_at_the_last(
        monkeypatch, caplog) -> None:
    from sftmix.train import progress

    clock = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    caplog.set_level(logging.INFO, logger=progress.log.name)
    callback = StepLineCallback("maths", every=30)
    state = TrainerState(global_step=0, max_steps=10)
    callback.on_train_begin(None, state, None)  # type: ignore[arg-type]
    for step in range(1, 11):  # 10 s and 100 tokens a step
        clock[0] += 10
        state.global_step = step
        callback.on_log(None, state, None, logs={"loss": 1.0, "tokens": 100, "epoch": step / 10})  # type: ignore[arg-type]
    lines = [r.getMessage() for r in caplog.records if r.name == progress.log.name]
    assert [line.split()[3] for line in lines] == ["1/10", "4/10", "7/10", "10/10"]
    # The rate is over the steps since the line before: 300 tokens in 30 s.
    assert "  10 tokens/s  " in lines[1] and lines[1].endswith("(40 s, about 60 s left)")
    assert lines[-1].endswith("(100 s)")
