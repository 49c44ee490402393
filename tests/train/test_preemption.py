"""A stage warned by the scheduler saves a checkpoint, stops, and resumes to the same weights."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from sftmix.artifacts import is_complete, read_marker
from sftmix.train.preemption import SIGNAL_ENV, Preempted, checkpoint_on_signal
from sftmix.train.stage import last_checkpoint, run_stage, work_dir
from tests.train.test_stage import SETTINGS, _base, _examples


class _WarnAt(TrainerCallback):
    """Sends this process SIGUSR2 at the end of one step, as ``scancel --signal=USR2`` would."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGUSR2)


def test_no_callback_without_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SIGNAL_ENV, raising=False)
    assert checkpoint_on_signal() == []
    monkeypatch.setenv(SIGNAL_ENV, "NOPE")
    with pytest.raises(ValueError, match="not a signal name"):
        checkpoint_on_signal()


@pytest.mark.slow
def test_warned_stage_checkpoints_stops_and_resumes_to_the_same_weights(
        shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """24 examples, global batch 4, 2 epochs: 12 steps, checkpoints every 4. Warned at the
    end of step 5, the stage saves checkpoint-5 (off the regular schedule) and stops
    without publishing; run again, it resumes there and ends bit for bit where an
    uninterrupted run ends."""
    examples = _examples(shared_data)
    base = _base(examples, tmp_path / "base")
    monkeypatch.setenv("SFTMIX_PROGRESS", "0")
    previous = signal.getsignal(signal.SIGUSR2)
    try:
        monkeypatch.setenv(SIGNAL_ENV, "USR2")
        warned = tmp_path / "warned"
        with pytest.raises(Preempted, match="step 5"):
            run_stage(base, examples, SETTINGS, warned, callbacks=[_WarnAt(5)])
        assert not warned.exists()
        assert last_checkpoint(work_dir(warned) / "checkpoints").name == "checkpoint-5"
        run_stage(base, examples, SETTINGS, warned)
        monkeypatch.delenv(SIGNAL_ENV)
        straight = run_stage(base, examples, SETTINGS, tmp_path / "straight")
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert is_complete(warned) and not work_dir(warned).exists()
    assert read_marker(warned)["key"] == read_marker(straight)["key"]
    a, b = load_file(warned / "model.safetensors"), load_file(straight / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[name], b[name]) for name in a)
