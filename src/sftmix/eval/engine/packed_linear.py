"""Linear layers on oneDNN with prepacked weights, for batched decoding on a CPU.

A decoding step of a small model on a CPU is almost all matrix products (about
three quarters of SmolLM2-135M's step at 32 rows), and PyTorch sends
``nn.Linear`` to MKL's ``sgemm``, which on AMD processors reaches about half of
the core's arithmetic peak. oneDNN's matmul on a weight reordered once into its
blocked layout runs 2-3x faster on the shapes of batched decoding; a whole
decoding step of SmolLM2 1.5-2.2x (``bench/eval_steps.py``; figures in
``docs/benchmarks/eval.md``).

:func:`packed_linears` reorders every ``nn.Linear`` weight of a model once (tied
weights share one copy) and, for the duration of the ``with`` block, runs those
layers through it. The model is left exactly as it was afterwards. Results differ
from MKL's only in the order of the floating-point sums, as a batched product
differs from a single one. The packed copy costs as much memory as the linear
weights, for as long as the block runs.

It applies only where it can: CPU weights in float32 or bfloat16, a PyTorch built
with oneDNN, and the (internal) ops of that build answering a trial product
correctly; anywhere else the block runs the model unchanged.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

# Rows per product that the blocked layout is tuned for (any count works).
BATCH_HINT = 32
_DTYPES = (torch.float32, torch.bfloat16)


def _pack(weight: torch.Tensor) -> torch.Tensor:
    return torch.ops.mkldnn._reorder_linear_weight(weight.detach(), BATCH_HINT)


def _product(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")


@functools.cache
def _usable(dtype: torch.dtype) -> bool:
    """Whether this build runs a packed product in ``dtype`` and gets it right (asked once)."""
    if not (torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
            and hasattr(torch.ops.mkldnn, "_linear_pointwise")):
        return False
    try:
        gen = torch.Generator().manual_seed(0)
        w = torch.randn(48, 64, generator=gen).to(dtype)
        x = torch.randn(3, 5, 64, generator=gen).to(dtype)
        got = _product(x, _pack(w), None)
        tolerance = 1e-4 if dtype == torch.float32 else 5e-2
        return bool(torch.allclose(got.float(), F.linear(x, w).float(), rtol=tolerance, atol=tolerance))
    except (RuntimeError, TypeError, NotImplementedError) as exc:
        log.debug("oneDNN packed linear unavailable: %s", exc)
        return False


def _candidates(model: torch.nn.Module) -> list[torch.nn.Linear]:
    return [m for m in model.modules()
            if type(m) is torch.nn.Linear and m.weight.device.type == "cpu"
            and m.weight.dtype in _DTYPES and "forward" not in vars(m)]


@contextmanager
def packed_linears(model: torch.nn.Module, enabled: bool = True) -> Iterator[bool]:
    """Run ``model``'s linear layers on prepacked oneDNN weights inside the block.

    Yields whether it did. Only plain ``nn.Linear`` modules on the CPU are changed
    (subclasses such as quantised or LoRA layers keep their own forward).
    """
    layers = _candidates(model) if enabled else []
    dtypes = {m.weight.dtype for m in layers}
    if not layers or not all(_usable(d) for d in dtypes):
        yield False
        return
    packs: dict[int, torch.Tensor] = {}
    with torch.no_grad():
        for layer in layers:
            key = id(layer.weight)
            if key not in packs:
                packs[key] = _pack(layer.weight)
            packed, bias = packs[key], layer.bias

            def forward(x: torch.Tensor, packed: torch.Tensor = packed,
                        bias: torch.Tensor | None = bias) -> torch.Tensor:
                return _product(x, packed, bias)

            layer.forward = forward  # an instance attribute, shadowing nn.Linear.forward
    try:
        yield True
    finally:
        for layer in layers:
            del layer.forward
