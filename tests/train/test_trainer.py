"""The Trainer subclass: its loss is sft_loss, accumulation is exact, the JSONL log is right."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerControl, TrainerState, TrainingArguments

from sftmix.data.records import Example
from sftmix.templates import get_template
from sftmix.train.collate import build_train_dataset, make_collator
from sftmix.train.config import TrainSettings
from sftmix.train.loss import full_logits_loss
from sftmix.train.models import build_tiny_llama, load_model, load_tokenizer
from sftmix.train.stage import run_stage
from sftmix.train.tokenize import tokenize_examples
from sftmix.train.trainer import (
    TOKENS_KEY,
    JsonlLogCallback,
    SftTrainer,
    TokenCountingCollator,
    read_train_log,
)
from tests.train.helpers import code_alpaca_examples, gsm8k_examples


def _setup(shared_data: Path, tmp_path: Path) -> tuple[list[Example], Path]:
    examples = gsm8k_examples(shared_data, 8) + code_alpaca_examples(shared_data, 8)
    texts = [m.content for e in examples for m in e.messages]
    base = build_tiny_llama(texts, tmp_path / "base", vocab_size=1024, hidden=64, layers=2, heads=4)
    return examples, base


def test_compute_loss_is_the_mean_over_trainable_tokens(shared_data: Path, tmp_path: Path) -> None:
    examples, base = _setup(shared_data, tmp_path)
    tokenizer = load_tokenizer(base)
    tokenized, _ = tokenize_examples(examples, tokenizer, get_template("vicuna_v1.1", tokenizer), 384)
    dataset = build_train_dataset(tokenized, packing=True, max_length=384, seed=0)
    collator = TokenCountingCollator(make_collator(True, tokenizer.pad_token_id))
    batch = collator([dataset[i] for i in range(len(dataset))])
    assert batch[TOKENS_KEY] == sum(len(t) for t in tokenized)
    model = load_model(base)
    args = TrainingArguments(output_dir=str(tmp_path / "out"), use_cpu=True, report_to="none")
    trainer = SftTrainer(model=model, args=args, train_dataset=dataset, data_collator=collator)
    with torch.no_grad():
        loss = trainer.compute_loss(model, dict(batch))
        reference = full_logits_loss(model, {k: v for k, v in batch.items() if k != TOKENS_KEY})
    torch.testing.assert_close(loss, reference, rtol=1e-5, atol=1e-6)
    assert trainer._trainable == sum(t.num_trainable for t in tokenized)


@pytest.mark.slow
def test_gradient_accumulation_gives_the_weights_of_one_big_batch(shared_data: Path,
                                                                  tmp_path: Path) -> None:
    """Global batch 8 as 1 x 8 and as 4 accumulated micro-batches of 2 (unpacked, so the
    micro-batches hold different numbers of trainable tokens): same weights, fp32 rtol 1e-4."""
    examples, base = _setup(shared_data, tmp_path)
    common = dict(max_length=384, packing=False, epochs=1, learning_rate=1e-3, global_batch_size=8,
                  precision="fp32", seed=3)
    one = run_stage(base, examples, TrainSettings(per_device_batch_size=8, **common), tmp_path / "a")
    acc = run_stage(base, examples, TrainSettings(per_device_batch_size=2, **common), tmp_path / "b")
    wa, wb = load_file(one / "model.safetensors"), load_file(acc / "model.safetensors")
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=1e-4, atol=1e-5)
    la, lb = read_train_log(one / "train_log.jsonl"), read_train_log(acc / "train_log.jsonl")
    assert len(la) == len(lb) == 2
    torch.testing.assert_close([r["loss"] for r in la], [r["loss"] for r in lb], rtol=1e-5, atol=1e-6)
    assert [r["tokens"] for r in la] == [r["tokens"] for r in lb]


def _state(step: int) -> TrainerState:
    state = TrainerState()
    state.global_step = step
    return state


def test_log_callback_truncates_on_resume_and_keeps_cumulative_counts(tmp_path: Path) -> None:
    path = tmp_path / "train_log.jsonl"
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    control = TrainerControl()
    cb = JsonlLogCallback(path)
    cb.on_train_begin(args, _state(0), control)
    for step in (1, 2, 3):
        cb.on_log(args, _state(step), control, logs={"loss": 1.0 / step, "learning_rate": 0.1,
                                                     "tokens": 100, "trainable_tokens": 40})
    cb.on_log(args, _state(3), control, logs={"train_runtime": 1.0})  # the summary is not a step
    with open(path, "a") as f:
        f.write('{"step": 4, "loss"')  # a line cut by SIGKILL
    resumed = JsonlLogCallback(path)
    resumed.on_train_begin(args, _state(2), control)  # the checkpoint is at step 2
    resumed.on_log(args, _state(3), control, logs={"loss": 0.5, "tokens": 10, "trainable_tokens": 4})
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]
    assert [r["tokens"] for r in records] == [100, 200, 210]
    assert [r["trainable_tokens"] for r in records] == [40, 80, 84]
    assert records[2]["loss"] == 0.5


@pytest.mark.slow
def test_bf16_autocast_trains_and_saves_fp32_weights(shared_data: Path, tmp_path: Path) -> None:
    examples, base = _setup(shared_data, tmp_path)
    settings = TrainSettings(max_length=384, epochs=1, learning_rate=1e-3, global_batch_size=8,
                             per_device_batch_size=8, precision="bf16")
    out = run_stage(base, examples, settings, tmp_path / "bf16")
    records = read_train_log(out / "train_log.jsonl")
    assert records and all(0 < r["loss"] < 20 for r in records)
    weights = load_file(out / "model.safetensors")
    assert all(w.dtype == torch.float32 for w in weights.values())


def test_warmup_stable_decay_holds_the_peak_then_decays_over_its_share(shared_data: Path,
                                                                       tmp_path: Path) -> None:
    """16 examples at batch 1, 2 epochs: 32 steps; 2 of warm-up, the last 8 (decay_ratio 0.25)
    falling to 0, the peak in between -- read from the stage's own log."""
    examples, base = _setup(shared_data, tmp_path)
    settings = TrainSettings(max_length=384, packing=False, epochs=2, learning_rate=1e-3,
                             global_batch_size=1, per_device_batch_size=1, precision="fp32",
                             warmup_ratio=0.0625, lr_scheduler="warmup_stable_decay", decay_ratio=0.25)
    out = run_stage(base, examples, settings, tmp_path / "wsd")
    rates = [r["learning_rate"] for r in read_train_log(out / "train_log.jsonl")]
    assert len(rates) == 32
    assert rates[0] < 1e-3 and rates[2:24] == pytest.approx([1e-3] * 22)
    decay = rates[24:]
    assert all(a > b for a, b in pairwise(decay)) and decay[-1] < 1e-4
    # Other schedules do not read decay_ratio, so it is no part of their stages' keys.
    assert "decay_ratio" not in TrainSettings(decay_ratio=0.5).identity()
    assert settings.identity()["decay_ratio"] == 0.25
