"""The SFT loss, computed only where there is something to learn.

A small model with a large vocabulary (SmolLM2: 49K tokens, width 576) spends
most of a training step in the output layer: the logits of every position are
``tokens x vocabulary`` floats, and their cross-entropy and its gradient cost
as much again. Only positions whose next token is trainable matter, so
:func:`sft_loss` asks the model for the logits of exactly those positions.

It does so through the model's own ``forward`` with ``logits_to_keep`` set to a
boolean ``(batch, length)`` mask, which transformers 5 causal LMs apply to the
final hidden states before ``lm_head`` (giving ``(selected, vocabulary)``
logits). Going through ``forward`` rather than calling the decoder and
``lm_head`` by hand keeps every wrapper working -- PEFT (LoRA on ``lm_head``
included), DDP's gradient hooks, FSDP's parameter gathering -- and keeps
whatever a model does after ``lm_head`` (Gemma's logit soft-capping, for
instance). A model whose ``forward`` does not take ``logits_to_keep``, or does
not honour a mask, falls back to full logits with a logged warning: slower,
same loss.

Reduction: the sum of token losses divided by ``num_items_in_batch`` when
given -- the Trainer passes the number of trainable tokens of the whole
gradient-accumulation step, which makes accumulation exact -- else the mean
over this batch's trainable tokens. Either way the loss is a per-token mean,
so packed and padded batches of the same examples agree.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

import torch
import torch.nn.functional as F

from sftmix.train.tokenize import IGNORE_INDEX

log = logging.getLogger(__name__)

_warned: set[str] = set()


def unwrap_model(model: Any) -> Any:
    """The innermost model under DDP/FSDP (``.module``) and PEFT (``get_base_model()``) wrappers."""
    seen = 0
    while seen < 8:  # wrappers nest a few levels at most; a cycle must not hang
        seen += 1
        if hasattr(model, "get_base_model") and callable(model.get_base_model):
            inner = model.get_base_model()
        elif isinstance(getattr(model, "module", None), torch.nn.Module):
            inner = model.module
        else:
            return model
        if inner is model:
            return model
        model = inner
    return model


def accepts_logits_to_keep(model: Any) -> bool:
    """Whether the (unwrapped) model's ``forward`` takes ``logits_to_keep``."""
    try:
        params = inspect.signature(unwrap_model(model).forward).parameters
    except (TypeError, ValueError):
        return False
    return "logits_to_keep" in params


def _warn_once(model: Any, why: str) -> None:
    name = type(unwrap_model(model)).__name__
    if name not in _warned:
        _warned.add(name)
        log.warning("%s: %s; computing the loss from full logits (slower, same result)", name, why)


def _selected_logits(model: Any, model_inputs: dict[str, Any], keep: torch.Tensor) -> torch.Tensor:
    """Logits at the ``keep`` positions, ``(keep.sum(), vocabulary)``."""
    count = int(keep.sum())
    if accepts_logits_to_keep(model):
        logits = model(**model_inputs, logits_to_keep=keep).logits
        if logits.dim() == 2 and logits.shape[0] == count:
            return logits
        if logits.dim() == 3 and logits.shape[:2] == keep.shape:
            _warn_once(model, "its forward ignored a boolean logits_to_keep")
            return logits[keep]
        _warn_once(model, f"its forward returned logits of shape {tuple(logits.shape)} "
                          f"for a boolean logits_to_keep")
    else:
        _warn_once(model, "its forward takes no logits_to_keep")
    return model(**model_inputs).logits[keep]


def sft_loss(model: Any, inputs: dict[str, Any],
             num_items_in_batch: int | torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy over the trainable tokens of ``inputs["labels"]`` (next-token shifted).

    ``inputs`` is a collated batch (``input_ids``, ``labels`` and any of
    ``attention_mask``, ``position_ids``); the model is run with
    ``use_cache=False`` so that packed rows stay isolated. Returns the loss sum
    divided by ``num_items_in_batch`` if given, else by this batch's trainable
    token count.
    """
    labels = inputs["labels"]
    model_inputs = {k: v for k, v in inputs.items() if k != "labels"}
    model_inputs["use_cache"] = False
    targets = labels[:, 1:]
    trainable = targets != IGNORE_INDEX
    # Position t predicts token t + 1: keep t where label t + 1 is trainable.
    keep = F.pad(trainable, (0, 1), value=False)
    logits = _selected_logits(model, model_inputs, keep)
    total = F.cross_entropy(logits.float(), targets[trainable], reduction="sum")
    if num_items_in_batch is None:
        return total / trainable.sum().clamp(min=1)
    if isinstance(num_items_in_batch, torch.Tensor):
        num_items_in_batch = num_items_in_batch.to(total.device)
    return total / num_items_in_batch


def full_logits_loss(model: Any, inputs: dict[str, Any],
                     num_items_in_batch: int | torch.Tensor | None = None) -> torch.Tensor:
    """The same loss from every position's logits (the reference :func:`sft_loss` must equal)."""
    labels = inputs["labels"]
    model_inputs = {k: v for k, v in inputs.items() if k != "labels"}
    model_inputs["use_cache"] = False
    logits = model(**model_inputs).logits[:, :-1]
    targets = labels[:, 1:]
    total = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1),
                            ignore_index=IGNORE_INDEX, reduction="sum")
    denominator = num_items_in_batch if num_items_in_batch is not None else (
        (targets != IGNORE_INDEX).sum().clamp(min=1))
    return total / denominator
