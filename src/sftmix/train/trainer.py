"""The training loop: ``transformers.Trainer`` with sftmix's loss, collator and JSONL log.

The loop itself -- accelerate, FSDP/DeepSpeed, gradient accumulation, mixed
precision, checkpoint resume, TensorBoard/W&B reporting -- is the Trainer's.
What sftmix adds:

* ``compute_loss`` is :func:`sftmix.train.loss.sft_loss`, which runs the LM head
  only where a label is trainable and divides by the number of trainable tokens
  of the whole (accumulated, all-process) batch, so gradient accumulation and
  data parallelism give the gradient of one big batch;
* a collator that also reports how many real tokens each batch holds, so the
  log shows true throughput whatever the padding or packing;
* :class:`JsonlLogCallback`, a ``train_log.jsonl`` with one line per logging step
  (step, epoch, loss, learning rate, grad norm, tokens, trainable tokens,
  trainable tokens/s) that survives a resume without duplicate or missing steps.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_pt_utils import LengthGroupedSampler, get_length_grouped_indices

from sftmix import strict_json
from sftmix.artifacts import write_text_atomic
from sftmix.faults import crashpoint
from sftmix.train.loss import sft_loss

log = logging.getLogger(__name__)

TOKENS_KEY = "sftmix_num_tokens"
"""Batch key (an int) with the number of real, unpadded tokens; removed before the forward pass."""


class TokenCountingCollator:
    """Wraps a collator and adds the batch's real token count under :data:`TOKENS_KEY`."""

    def __init__(self, inner: Callable[[Sequence[dict[str, Any]]], dict[str, Any]]) -> None:
        self.inner = inner

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, Any]:
        batch = self.inner(features)
        batch[TOKENS_KEY] = sum(len(f["input_ids"]) for f in features)
        return batch


class EpochLengthGroupedSampler(LengthGroupedSampler):
    """Length-grouped order drawn from ``seed + epoch`` rather than the global RNG.

    A resumed run restores the global RNG as it was at the checkpoint, mid-epoch, not
    at the start of the epoch, so an order drawn from it would differ; the Trainer
    calls ``set_epoch`` and the order is a pure function of seed and epoch.
    """

    def __init__(self, batch_size: int, lengths: list[int], seed: int) -> None:
        super().__init__(batch_size, lengths=lengths)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator()
        generator.manual_seed(self.seed + self.epoch)
        return iter(get_length_grouped_indices(self.lengths, self.batch_size, generator=generator))


class SftTrainer(Trainer):
    """A Trainer whose loss is :func:`sft_loss` and whose logs carry token counts."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # sft_loss takes num_items_in_batch itself, so have the Trainer always count it
        # (over all accumulation micro-batches and all processes) and treat the loss as
        # already normalised for accumulation.
        self.model_accepts_loss_kwargs = True
        self._tokens = 0
        self._trainable = 0

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        dataset = self.train_dataset if train_dataset is None else train_dataset
        lengths = getattr(dataset, "lengths", None)
        if self.args.train_sampling_strategy == "group_by_length" and lengths is not None:
            # Grouped by the *global* batch, so that any split into processes and
            # accumulation steps sees the same order; the dataset knows its row lengths
            # (the Trainer would otherwise build every row to measure it).
            size = (self.args.per_device_train_batch_size * self.args.gradient_accumulation_steps
                    * self.args.world_size)
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            return EpochLengthGroupedSampler(size, list(lengths), seed)
        return super()._get_train_sampler(train_dataset)

    def _save_rng_state(self, output_dir: str) -> None:
        # Failpoint for crash tests: the checkpoint's weights and optimiser are written,
        # its trainer state is not -- a checkpoint cut off in the middle of saving.
        crashpoint("train:checkpoint")
        super()._save_rng_state(output_dir)

    def compute_loss(self, model: torch.nn.Module, inputs: dict[str, Any],
                     return_outputs: bool = False,
                     num_items_in_batch: torch.Tensor | int | None = None) -> Any:
        inputs = dict(inputs)
        tokens = inputs.pop(TOKENS_KEY, None)
        labels = inputs["labels"]
        if tokens is None:
            mask = inputs.get("attention_mask")
            tokens = int(mask.sum()) if mask is not None and mask.dim() == 2 else labels.numel()
        self._tokens += int(tokens)
        self._trainable += int((labels[..., 1:] != -100).sum())
        loss = sft_loss(model, inputs, num_items_in_batch=num_items_in_batch)
        if num_items_in_batch is not None and self.args.average_tokens_across_devices:
            # num_items_in_batch counts every process's tokens while DDP averages the
            # gradients over processes: scale back up so the result is the global mean.
            loss = loss * self.accelerator.num_processes
        return (loss, None) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        # Every process calls log() at the same steps, so the reduction is collective-safe.
        if "loss" in logs:
            counts = torch.tensor([self._tokens, self._trainable], dtype=torch.long,
                                  device=self.args.device)
            if self.accelerator.num_processes > 1:
                counts = self.accelerator.reduce(counts, reduction="sum")
            logs["tokens"] = int(counts[0])
            logs["trainable_tokens"] = int(counts[1])
            self._tokens = self._trainable = 0
        super().log(logs, start_time)


class JsonlLogCallback(TrainerCallback):
    """Writes ``train_log.jsonl``: one JSON object per logging step, cumulative token counts.

    On a resume, lines past the checkpoint's step (written before the kill, and about
    to be recomputed) are dropped, and the cumulative counts continue from the last kept line.
    """

    FIELDS = ("loss", "learning_rate", "grad_norm", "epoch")

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._tokens = 0
        self._trainable = 0
        self._last = time.monotonic()

    def on_train_begin(self, args: TrainingArguments, state: TrainerState,
                       control: TrainerControl, **kwargs: Any) -> None:
        self._last = time.monotonic()
        if not state.is_world_process_zero:
            return
        kept = []
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    break  # a line cut by a kill: everything after it is gone too
                if record.get("step", 0) > state.global_step:
                    break
                kept.append(record)
        self._tokens = kept[-1]["tokens"] if kept else 0
        self._trainable = kept[-1]["trainable_tokens"] if kept else 0
        write_text_atomic(self.path, "".join(strict_json.dumps(r) + "\n" for r in kept))

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        now = time.monotonic()
        elapsed, self._last = max(now - self._last, 1e-9), now
        self._tokens += int(logs.get("tokens", 0))
        self._trainable += int(logs.get("trainable_tokens", 0))
        record: dict[str, Any] = {"step": state.global_step}
        record.update({k: float(logs[k]) for k in self.FIELDS if k in logs})
        record["tokens"] = self._tokens
        record["trainable_tokens"] = self._trainable
        record["trainable_tokens_per_s"] = round(logs.get("trainable_tokens", 0) / elapsed, 2)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(strict_json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())


def read_train_log(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``train_log.jsonl``."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line]
