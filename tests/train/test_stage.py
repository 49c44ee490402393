"""A stage: published layout, reuse, and exact resume after SIGKILL of a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sftmix.artifacts import building, is_complete, read_marker
from sftmix.data.records import Example
from sftmix.errors import ConfigError, DataError
from sftmix.train.config import TrainSettings
from sftmix.train.models import build_tiny_llama
from sftmix.train.stage import last_checkpoint, read_examples, run_stage, work_dir
from sftmix.train.trainer import read_train_log
from tests.train.helpers import code_alpaca_examples, gsm8k_examples

ROOT = Path(__file__).resolve().parents[2]


def _examples(shared_data: Path, n: int = 12) -> list[Example]:
    return gsm8k_examples(shared_data, n) + code_alpaca_examples(shared_data, n)


def _base(examples: list[Example], out: Path) -> Path:
    texts = [m.content for e in examples for m in e.messages]
    return build_tiny_llama(texts, out, vocab_size=1024, hidden=64, layers=2, heads=4)


def _write_jsonl(examples: list[Example], path: Path) -> Path:
    path.write_text("".join(e.to_json() + "\n" for e in examples), encoding="utf-8")
    return path


SETTINGS = TrainSettings(max_length=384, packing=False, epochs=2, learning_rate=1e-3,
                         global_batch_size=4, per_device_batch_size=2, save_steps=4,
                         precision="fp32", seed=7)


@pytest.mark.slow
def test_stage_publishes_weights_tokenizer_config_manifest_and_log(shared_data: Path,
                                                                   tmp_path: Path) -> None:
    examples = _examples(shared_data)
    base = _base(examples, tmp_path / "base")
    settings = SETTINGS.model_copy(update={"epochs": 1.0, "packing": True})
    out = run_stage(base, examples, settings, tmp_path / "stage", name="s1")
    assert is_complete(out) and not work_dir(out).exists()
    names = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "stage_config.json",
            "data_manifest.json", "train_log.jsonl", "COMPLETE.json"} <= names
    resolved = json.loads((out / "stage_config.json").read_text())
    assert resolved["parent"] == str(base) and resolved["settings"]["learning_rate"] == 1e-3
    manifest = json.loads((out / "data_manifest.json").read_text())
    assert manifest["examples"] == len(examples)
    kept = manifest["tokenize"]["kept"]
    assert 0 < kept <= len(examples) and manifest["tokenize"]["trainable_tokens"] > 0
    records = read_train_log(out / "train_log.jsonl")
    assert [r["step"] for r in records] == list(range(1, len(records) + 1))
    # Every trainable token of the epoch is counted exactly once in the log.
    assert records[-1]["trainable_tokens"] == manifest["tokenize"]["trainable_tokens"]
    assert all(r["trainable_tokens_per_s"] > 0 and r["learning_rate"] >= 0 for r in records)
    # Trained weights differ from the parent's.
    before, after = load_file(base / "model.safetensors"), load_file(out / "model.safetensors")
    assert any(not torch.equal(before[k], after[k]) for k in before)
    # Complete: reused as is; other inputs at the same place are refused.
    marker = read_marker(out)
    assert run_stage(base, examples, settings, out, name="s1") == out
    assert read_marker(out) == marker
    with pytest.raises(ConfigError, match="other inputs"):
        run_stage(base, examples[:-1], settings, out, name="s1")


def test_a_mixture_folder_is_read_through_the_data_layer(shared_data: Path, tmp_path: Path) -> None:
    examples = _examples(shared_data, 3)
    folder = tmp_path / "mix"
    with building(folder, {"kind": "mixture"}) as tmp:  # a mixture folder: published complete
        _write_jsonl(examples, tmp / "data.jsonl")
    assert [e.id for e in read_examples(folder)] == [e.id for e in examples]
    (folder / "COMPLETE.json").unlink()
    with pytest.raises(DataError, match="not a complete mixture folder"):
        read_examples(folder)


def test_bad_data_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        read_examples(tmp_path / "missing")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.jsonl, line 1"):
        read_examples(bad)


def test_incomplete_checkpoints_are_ignored(tmp_path: Path) -> None:
    ckpts = tmp_path / "checkpoints"
    (ckpts / "checkpoint-4").mkdir(parents=True)
    (ckpts / "checkpoint-4" / "trainer_state.json").write_text("{}")
    (ckpts / "checkpoint-8").mkdir()  # killed while saving: no trainer_state.json
    assert last_checkpoint(ckpts) == ckpts / "checkpoint-4"
    assert not (ckpts / "checkpoint-8").exists()


DRIVER = textwrap.dedent("""
    import os, signal, sys
    from transformers import TrainerCallback
    from sftmix.train.config import TrainSettings
    from sftmix.train.stage import read_examples, run_stage

    base, data, out, kill_at, settings = sys.argv[1:6]

    class KillAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == int(kill_at):
                os.kill(os.getpid(), signal.SIGKILL)

    run_stage(base, read_examples(data), TrainSettings.model_validate_json(settings), out,
              callbacks=[KillAt()] if int(kill_at) else [])
""")


def _drive(tmp_path: Path, base: Path, data: Path, out: Path, kill_at: int) -> int:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER, encoding="utf-8")
    env = {**os.environ, "SFTMIX_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(script), str(base), str(data), str(out),
                           str(kill_at), SETTINGS.model_dump_json()],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return proc.returncode


@pytest.mark.slow
def test_sigkilled_stage_resumes_to_the_same_weights(shared_data: Path, tmp_path: Path) -> None:
    """CPU fp32, same seed: resumed and uninterrupted runs agree to rtol 1e-5 / atol 1e-6
    (in practice bit for bit: the checkpoint restores weights, optimiser, scheduler,
    RNG states and the position in the data)."""
    examples = _examples(shared_data)
    base = _base(examples, tmp_path / "base")
    data = _write_jsonl(examples, tmp_path / "data.jsonl")
    # 24 examples, global batch 4, 2 epochs = 12 steps; checkpoints every 4 steps.
    # Killed at the end of step 9 (in epoch 2), after checkpoint-8 was written.
    killed = tmp_path / "killed"
    assert _drive(tmp_path, base, data, killed, kill_at=9) == -9
    assert not killed.exists()
    assert last_checkpoint(work_dir(killed) / "checkpoints").name == "checkpoint-8"
    partial_log = read_train_log(work_dir(killed) / "train_log.jsonl")
    assert partial_log[-1]["step"] == 8  # step 9's log line was never written
    assert _drive(tmp_path, base, data, killed, kill_at=0) == 0
    # The uninterrupted run finds a leftover of a stage with other inputs in its work
    # folder: it must start afresh rather than resume from it.
    straight = tmp_path / "straight"
    (work_dir(straight) / "checkpoints" / "checkpoint-8").mkdir(parents=True)
    (work_dir(straight) / "checkpoints" / "checkpoint-8" / "trainer_state.json").write_text("{}")
    (work_dir(straight) / "stage_key").write_text("0123456789abcdef\n")
    assert _drive(tmp_path, base, data, straight, kill_at=0) == 0

    assert is_complete(killed) and not work_dir(killed).exists()
    resumed, reference = load_file(killed / "model.safetensors"), load_file(straight / "model.safetensors")
    assert resumed.keys() == reference.keys()
    for name in reference:
        torch.testing.assert_close(resumed[name], reference[name], rtol=1e-5, atol=1e-6)
    log_a, log_b = read_train_log(killed / "train_log.jsonl"), read_train_log(straight / "train_log.jsonl")
    assert [r["step"] for r in log_a] == list(range(1, 13))
    torch.testing.assert_close([r["loss"] for r in log_a], [r["loss"] for r in log_b],
                               rtol=1e-5, atol=1e-6)
    assert [r["trainable_tokens"] for r in log_a] == [r["trainable_tokens"] for r in log_b]


def test_max_steps_caps_the_epochs_and_never_adds_any(shared_data: Path, tmp_path: Path) -> None:
    examples = _examples(shared_data, 4)  # 8 rows, 2 per optimiser step: 4 steps an epoch
    base = _base(examples, tmp_path / "base")
    one_epoch = SETTINGS.model_copy(update={"epochs": 1.0, "max_steps": 300, "global_batch_size": 2})
    assert one_epoch.optimiser_steps(8) == 4
    capped = one_epoch.model_copy(update={"epochs": 3.0, "max_steps": 3})
    assert capped.optimiser_steps(8) == 3
    for settings, steps in ((one_epoch, 4), (capped, 3)):
        out = run_stage(base, examples, settings, tmp_path / f"stage-{steps}")
        records = read_train_log(out / "train_log.jsonl")
        assert [r["step"] for r in records] == list(range(1, steps + 1))
        assert records[-1]["epoch"] <= 1.0


def test_precisions_keep_fp32_master_weights_unless_asked(shared_data: Path,
                                                          tmp_path: Path) -> None:
    # bf16 autocast trains fp32 weights (what a stage publishes); bf16_weights keeps the
    # weights (and AdamW's state) in bf16 and publishes them so. Both train.
    examples = _examples(shared_data, 4)
    base = _base(examples, tmp_path / "base")
    before = load_file(base / "model.safetensors")
    for precision, dtype in (("bf16", torch.float32), ("bf16_weights", torch.bfloat16)):
        settings = SETTINGS.model_copy(update={"precision": precision, "epochs": 1.0})
        after = load_file(run_stage(base, examples, settings, tmp_path / precision)
                          / "model.safetensors")
        assert {t.dtype for t in after.values()} == {dtype}, precision
        assert any(not torch.equal(before[k].to(dtype), after[k]) for k in before), precision
