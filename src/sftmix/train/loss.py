"""The SFT loss, computed only where there is something to learn, a chunk at a time.

A small model with a large vocabulary (SmolLM2: 49K tokens, width 576) spends
most of a training step in the output layer: the logits of every position are
``tokens x vocabulary`` floats, and their cross-entropy and its gradient cost
as much again. Only positions whose next token is trainable matter, so
:func:`sft_loss`

1. runs the model's decoder through the model's own ``forward`` (so that every
   wrapper keeps working -- PEFT, DDP's gradient hooks) and takes the final
   hidden states where they enter the output head: a forward pre-hook on
   ``get_output_embeddings()`` captures them and hands the head an empty slice,
   so the head computes nothing there;
2. selects the hidden states of trainable positions;
3. applies the output head to them in chunks of :data:`CHUNK_ROWS`-ish rows, so
   that ``(selected, vocabulary)`` logits never exist at once. A plain
   ``nn.Linear`` head (tied or not) goes through a fused function that
   computes each chunk's cross-entropy and its gradients in the forward pass
   and keeps only the gradients; any other head module (LoRA on ``lm_head``,
   say) is applied per chunk under activation checkpointing.

This relies on documented structure only (``get_output_embeddings`` and the
head being called on ``(batch, length, width)`` hidden states), not on how a
release of ``forward`` treats ``logits_to_keep``. A model without that
structure -- no output-embedding accessor, a head fed something else, a
transform after the head (Gemma's logit soft-capping, Cohere's logit scale),
or sharded FSDP parameters that only exist inside ``forward`` -- falls back to
full logits from ``forward`` with a logged warning: slower, same loss.

Reduction: the sum of token losses divided by ``num_items_in_batch`` when
given -- the Trainer passes the number of trainable tokens of the whole
gradient-accumulation step, which makes accumulation exact -- else the mean
over this batch's trainable tokens. Either way the loss is a per-token mean,
so packed and padded batches of the same examples agree.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from sftmix.train.tokenize import IGNORE_INDEX

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 30
"""Budget for one chunk's float32 logits: rows per chunk = CHUNK_BYTES / (4 x vocabulary)."""

# Config fields that mean the model transforms the logits after its head; the
# chunked head would skip that transform, so such models take the full-logits path.
POST_HEAD_FIELDS = ("final_logit_softcapping", "logit_scale", "logits_scaling")

_warned: set[str] = set()
_unstructured: set[type] = set()  # model classes whose head capture failed once: skip the try


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


def _is_sharded(model: Any) -> bool:
    """Whether parameters are FSDP-sharded (they are whole only inside ``forward``)."""
    layer = model
    for _ in range(8):
        if "FullyShardedDataParallel" in type(layer).__name__ or "FSDP" in type(layer).__name__:
            return True
        inner = getattr(layer, "module", None)
        if not isinstance(inner, torch.nn.Module):
            break
        layer = inner
    head = _output_head(unwrap_model(model))
    weight = getattr(head, "weight", None)
    return weight is not None and type(weight).__name__ == "DTensor"


def _output_head(base: Any) -> torch.nn.Module | None:
    getter = getattr(base, "get_output_embeddings", None)
    if not callable(getter):
        return None
    try:
        head = getter()
    except (NotImplementedError, AttributeError):
        return None
    return head if isinstance(head, torch.nn.Module) else None


def head_structure(model: Any) -> tuple[torch.nn.Module | None, str]:
    """The output head the chunked path applies, or None and why the model lacks that structure."""
    base = unwrap_model(model)
    head = _output_head(base)
    if head is None:
        return None, "it exposes no output head (get_output_embeddings)"
    config = getattr(base, "config", None)
    transforms = [f for f in POST_HEAD_FIELDS if getattr(config, f, None) not in (None, 1, 1.0)]
    if transforms:
        return None, f"it transforms its logits after the head ({', '.join(transforms)})"
    if _is_sharded(model):
        return None, "its parameters are FSDP-sharded outside forward"
    return head, ""


def _warn_once(model: Any, why: str) -> None:
    name = type(unwrap_model(model)).__name__
    if name not in _warned:
        _warned.add(name)
        log.warning("%s: %s; computing the loss from full logits (slower, same result)", name, why)


def chunk_rows(vocabulary: int, budget: int = CHUNK_BYTES) -> int:
    return max(256, budget // (4 * vocabulary))


def _compute_dtype(weight: torch.Tensor) -> torch.dtype:
    device = weight.device.type
    if torch.is_autocast_enabled(device):
        return torch.get_autocast_dtype(device)
    return weight.dtype


class _LinearCrossEntropy(torch.autograd.Function):
    """Sum of cross-entropies of ``hidden @ weight.T (+ bias)``, chunk by chunk.

    The gradients are computed in the forward pass, where each chunk's logits
    exist anyway, and scaled by the incoming gradient in backward: one matmul
    pass over the head instead of forward + recompute + backward, and at most
    one chunk of logits alive. Matmuls run in the autocast dtype when autocast
    is on (as ``nn.Linear`` would), softmax and the loss in float32.
    """

    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                targets: torch.Tensor, rows: int) -> torch.Tensor:
        dtype = _compute_dtype(weight)
        need_hidden, need_weight, need_bias = ctx.needs_input_grad[:3]
        w = weight.to(dtype)
        b = bias.to(dtype) if bias is not None else None
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        grad_hidden = torch.empty_like(hidden) if need_hidden else None
        grad_weight = torch.zeros_like(weight, dtype=torch.float32) if need_weight else None
        grad_bias = torch.zeros_like(bias, dtype=torch.float32) if need_bias else None
        with torch.autocast(hidden.device.type, enabled=False):
            for start in range(0, hidden.shape[0], rows):
                h = hidden[start:start + rows].to(dtype)
                t = targets[start:start + rows]
                logits = (h @ w.T if b is None else torch.addmm(b, h, w.T)).float()
                lse = torch.logsumexp(logits, dim=-1)
                total += (lse - logits.gather(1, t[:, None]).squeeze(1)).sum()
                if not (need_hidden or need_weight or need_bias):
                    continue
                # d(lse - logit[t]) / d logits = softmax - onehot(t), in place of the logits.
                grad = logits.sub_(lse[:, None]).exp_()
                grad[torch.arange(len(t), device=t.device), t] -= 1
                if grad_bias is not None:
                    grad_bias += grad.sum(0)
                grad = grad.to(dtype)
                if grad_hidden is not None:
                    grad_hidden[start:start + rows] = (grad @ w).to(hidden.dtype)
                if grad_weight is not None:
                    grad_weight += (grad.T @ h).float()
        ctx.save_for_backward(grad_hidden, grad_weight, grad_bias)
        ctx.dtypes = (weight.dtype, bias.dtype if bias is not None else None)
        return total

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[Any, ...]:
        grad_hidden, grad_weight, grad_bias = ctx.saved_tensors
        weight_dtype, bias_dtype = ctx.dtypes
        scale = grad_output.float()
        return (
            None if grad_hidden is None else grad_hidden * scale.to(grad_hidden.dtype),
            None if grad_weight is None else (grad_weight * scale).to(weight_dtype),
            None if grad_bias is None else (grad_bias * scale).to(bias_dtype),
            None, None,
        )


def _module_chunk_loss(head: torch.nn.Module, hidden: torch.Tensor,
                       targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(head(hidden).float(), targets, reduction="sum")


def chunked_head_loss(head: torch.nn.Module, hidden: torch.Tensor, targets: torch.Tensor,
                      rows: int | None = None) -> torch.Tensor:
    """Sum over rows of ``cross_entropy(head(hidden[i]), targets[i])``, a chunk of rows at a time."""
    weight = getattr(head, "weight", None)
    rows = rows or chunk_rows(weight.shape[0] if weight is not None else 65_536)
    if type(head) is torch.nn.Linear:
        return _LinearCrossEntropy.apply(hidden, head.weight, head.bias, targets, rows)
    # Any other head (a LoRA-wrapped Linear): per chunk, recompute the logits in backward
    # rather than keep them.
    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, hidden.shape[0], rows):
        total = total + checkpoint(_module_chunk_loss, head, hidden[start:start + rows],
                                   targets[start:start + rows], use_reentrant=False)
    return total


def _head_inputs(model: Any, head: torch.nn.Module, model_inputs: dict[str, Any]
                 ) -> torch.Tensor | None:
    """The hidden states the model's forward feeds its head, with the head itself skipped."""
    captured: list[torch.Tensor] = []

    def capture(module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        if not args or not isinstance(args[0], torch.Tensor) or args[0].dim() != 3:
            return None
        captured.append(args[0])
        return (args[0][:, :0], *args[1:])  # the head runs on no position at all

    handle = head.register_forward_pre_hook(capture)
    try:
        model(**model_inputs)
    finally:
        handle.remove()
    if len(captured) != 1:
        return None
    return captured[0]


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
    total = None
    head, why = head_structure(model)
    if head is not None and type(unwrap_model(model)) in _unstructured:
        head, why = None, "its head was not called once on (batch, length, width) hidden states"
    if head is not None:
        hidden = _head_inputs(model, head, model_inputs)
        if hidden is not None and hidden.shape[:2] == keep.shape:
            total = chunked_head_loss(head, hidden[keep], targets[trainable])
        else:
            _unstructured.add(type(unwrap_model(model)))
            why = "its head was not called once on (batch, length, width) hidden states"
    if total is None:
        _warn_once(model, why)
        logits = model(**model_inputs).logits[keep]
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
