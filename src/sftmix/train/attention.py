"""Which attention kernel trains packed rows, and compiling the model's blocks.

Packed examples must attend only within themselves. Three ways to do that
without building a dense ``(length x length)`` mask, best first:

* ``flash_attention_2`` -- flash-attention's varlen kernel, when a
  ``flash_attn`` build is installed and a CUDA device is present: the batch is
  one flattened sequence and the kernel reads the examples' boundaries from
  the restarting position ids (the ``flat`` layout of :mod:`sftmix.train.collate`);
* ``flex_attention`` -- torch's ``flex_attention`` on a CUDA device: transformers
  turns the restarting position ids into a block-sparse document mask
  (a ``BlockMask``; fully masked blocks are skipped, not computed);
* ``sdpa`` -- the last resort and the CPU choice: transformers derives the
  per-example causal mask from the position ids and hands it to
  ``scaled_dot_product_attention``. On the CPU ``flex_attention`` needs an
  inductor compile of each shape, which costs more than it saves on short runs.

``auto`` picks the first available and logs what it picked and why.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

import torch

log = logging.getLogger(__name__)


def flash_attn_installed() -> bool:
    return importlib.util.find_spec("flash_attn") is not None


def flex_attention_available() -> bool:
    try:
        from torch.nn.attention import flex_attention  # noqa: F401
    except ImportError:
        return False
    return True


def choose_attention(requested: str = "auto", device: str | None = None) -> str:
    """The ``attn_implementation`` to load the model with (see the module docstring)."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if requested != "auto":
        log.info("attention: %s (as configured)", requested)
        return requested
    if device.startswith("cuda") and flash_attn_installed():
        choice, why = "flash_attention_2", "flash_attn is installed"
    elif device.startswith("cuda") and flex_attention_available():
        choice, why = "flex_attention", "no flash_attn build; torch has flex_attention"
    elif device.startswith("cuda"):
        choice, why = "sdpa", "neither flash_attn nor flex_attention is available"
    else:
        choice, why = "sdpa", f"on {device}, flex_attention would need a compile per shape"
    log.info("attention: %s (%s)", choice, why)
    return choice


def compile_blocks(model: Any, **options: Any) -> int:
    """``torch.compile`` each decoder layer in place (regional compilation); returns how many.

    Compiling the repeated block rather than the whole model compiles one graph
    that every layer reuses, keeps the loss's hook on the output head outside
    compiled code, and leaves the model's own ``forward`` (masks, position ids)
    eager. A model without a ``layers`` list under ``get_decoder()`` is left as is.
    ``options`` go to ``torch.compile`` (e.g. ``backend``, ``mode``).
    """
    from sftmix.train.loss import unwrap_model

    base = unwrap_model(model)
    getter = getattr(base, "get_decoder", None)
    decoder = getter() if callable(getter) else None
    layers = getattr(decoder, "layers", None)
    if not isinstance(layers, torch.nn.ModuleList):
        log.warning("%s: no decoder layers found; not compiled", type(base).__name__)
        return 0
    for layer in layers:
        layer.compile(**options)
    log.info("compiled %d decoder layers of %s", len(layers), type(base).__name__)
    return len(layers)
