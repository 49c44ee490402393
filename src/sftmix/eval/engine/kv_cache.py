"""A KV cache of fixed row slots, for decoding with rows that come and go.

:class:`SlotCache` backs :class:`sftmix.eval.engine.generation.HFGenerator`'s continuous
batching. Every layer keeps one preallocated buffer ``[slots, kv_heads, capacity,
head_dim]`` for keys and one for values; the first ``rows`` slots are in use. All rows
write their new tokens into the same columns (``end`` onwards), so a forward pass over
the batch is a plain dense one, and a per-row boolean ``valid`` map says which columns
each row may attend to:

* a row admitted later than the others has its prompt written right-aligned just
  before ``end``; the columns before its prompt are invalid for it;
* a speculative draft token the model rejected leaves a column that is invalid for
  that row only (a hole);
* a finished row's slot is refilled by the last row in use (one row copied, not the
  whole cache), and columns no row needs any more are dropped from the front.

Because rows see different columns, the engine hands the model an explicit 4D mask
(:meth:`SlotCache.attention_mask`) instead of transformers' 2D padding mask.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

from sftmix.errors import SftmixError


class _SlotLayer(DynamicLayer):
    """One decoder layer's keys and values; positions and row count live in the owner."""

    def __init__(self, owner: SlotCache) -> None:
        super().__init__()
        self.owner = owner
        self.k = torch.empty(0)
        self.v = torch.empty(0)

    def allocate(self, like_k: torch.Tensor, like_v: torch.Tensor, slots: int, capacity: int) -> None:
        heads, dim_k, dim_v = like_k.shape[1], like_k.shape[-1], like_v.shape[-1]
        self.k = like_k.new_zeros((slots, heads, capacity, dim_k))
        self.v = like_v.new_zeros((slots, heads, capacity, dim_v))
        self.device = like_k.device
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: object,
               **kwargs: object) -> tuple[torch.Tensor, torch.Tensor]:
        o = self.owner
        end = o.end + key_states.shape[-2]
        self.k[:o.rows, :, o.end:end] = key_states
        self.v[:o.rows, :, o.end:end] = value_states
        # Attention reads a strided view of the live columns; nothing is copied.
        return self.k[:o.rows, :, o.start:end], self.v[:o.rows, :, o.start:end]

    def get_seq_length(self) -> int:
        return self.owner.end - self.owner.start

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.get_seq_length() + query_length, 0


class SlotCache:
    """Row slots over preallocated per-layer buffers; see the module docstring."""

    def __init__(self, config: object, slots: int, capacity: int, device: torch.device) -> None:
        probe = DynamicCache(config=config)
        for layer in probe.layers:
            window = getattr(layer, "sliding_window", None)
            # A sliding window longer than any sequence here is plain full attention.
            if type(layer) is DynamicLayer or (isinstance(layer, DynamicSlidingWindowLayer)
                                               and window is not None and window >= capacity):
                continue
            raise SftmixError(f"generation: the model's cache layer {type(layer).__name__} is not "
                              "supported by the batched engine (it needs full-attention layers, or "
                              f"a sliding window of at least {capacity} tokens); evaluate this "
                              "model with the vllm backend, or with prompts plus max_new_tokens "
                              "within its window")
        self.cache = probe
        self.layers = [_SlotLayer(self) for _ in probe.layers]
        probe.layers = self.layers  # the model calls probe.update(..., layer_idx)
        self.slots, self.capacity, self.device = slots, capacity, device
        self.rows = 0  # slots in use: always the first ``rows``
        self.start = 0  # first live column (some row in use may attend to it)
        self.end = 0  # columns written so far
        self.valid = torch.zeros((slots, capacity), dtype=torch.bool, device=device)

    # -- columns -------------------------------------------------------------------
    def _relocate(self, new_start: int, need: int) -> None:
        """Move the live columns to begin at ``new_start``, with room for ``need`` more after them."""
        width = self.end - self.start
        capacity = max(self.capacity, new_start + width + need)
        if capacity > self.capacity:
            capacity = max(capacity, self.capacity + self.capacity // 2)
        for layer in self.layers:
            if not layer.is_initialized:
                continue
            for name in ("k", "v"):
                old = getattr(layer, name)
                live = old[:self.rows, :, self.start:self.end].clone()
                if capacity > self.capacity:
                    old = old.new_zeros((*old.shape[:2], capacity, old.shape[-1]))
                old[:self.rows, :, new_start:new_start + width] = live
                setattr(layer, name, old)
        valid = self.valid.new_zeros((self.slots, capacity))
        valid[:self.rows, new_start:new_start + width] = self.valid[:self.rows, self.start:self.end]
        self.valid, self.capacity = valid, capacity
        self.start, self.end = new_start, new_start + width

    def reserve(self, columns: int) -> None:
        """Make room for ``columns`` more columns after ``end`` (called before each forward)."""
        if self.end + columns > self.capacity:
            self._relocate(0, columns)

    def advance(self, columns: int) -> None:
        """Mark the columns just written by a forward pass as valid for every row."""
        self.valid[:self.rows, self.end:self.end + columns] = True
        self.end += columns

    def reject(self, row: int, columns: int) -> None:
        """The last ``columns`` columns written hold drafts that ``row`` rejected."""
        if columns:
            self.valid[row, self.end - columns:self.end] = False

    def repack(self) -> None:
        """Squeeze out holes: every row's valid columns right-aligned at a new, shorter ``end``."""
        live = self.valid[:self.rows, self.start:self.end]
        counts = live.sum(dim=1)
        width = int(counts.max())
        # For each row, the indices of its valid columns, left-padded with its first one.
        order = torch.sort(live.to(torch.int8), dim=1, stable=True).indices[:, -width:]
        pad = torch.arange(width, device=self.device)[None, :] < (width - counts)[:, None]
        index = order + self.start
        for layer in self.layers:
            for name in ("k", "v"):
                buf = getattr(layer, name)
                rows = buf[:self.rows]
                gather = index[:, None, :, None].expand(-1, rows.shape[1], -1, rows.shape[-1])
                packed = rows.gather(2, gather)
                buf[:self.rows, :, :width] = packed
        self.valid[:self.rows] = False
        self.valid[:self.rows, :width] = ~pad
        self.start, self.end = 0, width

    # -- rows ----------------------------------------------------------------------
    def admit(self, prefill: DynamicCache, lengths: list[int], picks: list[int]) -> None:
        """Append rows ``picks`` of a left-padded ``prefill`` cache (prompt ``lengths``) as new rows."""
        longest = max(lengths[j] for j in picks)
        if self.rows == 0:
            self.start = self.end = 0
        if self.end < longest:
            self._relocate(longest - (self.end - self.start), 0)
        if self.rows + len(picks) > self.slots:
            raise SftmixError(f"generation: {self.rows + len(picks)} rows exceed {self.slots} slots")
        for layer, source in zip(self.layers, prefill.layers, strict=True):
            if not layer.is_initialized:
                layer.allocate(source.keys, source.values, self.slots, self.capacity)
            width = source.keys.shape[-2]
            for slot, j in enumerate(picks, start=self.rows):
                n = lengths[j]
                layer.k[slot, :, self.end - n:self.end] = source.keys[j, :, width - n:]
                layer.v[slot, :, self.end - n:self.end] = source.values[j, :, width - n:]
        for slot, j in enumerate(picks, start=self.rows):
            self.valid[slot] = False
            self.valid[slot, self.end - lengths[j]:self.end] = True
        self.start = min(self.start, self.end - longest) if self.rows else self.end - longest
        self.rows += len(picks)

    def remove(self, dead: list[int]) -> list[int]:
        """Free the slots of rows ``dead``; returns, for each remaining row, its former index.

        A freed slot is refilled by the last row in use, so only one row is copied per
        removal; columns that no remaining row attends to are then dropped from the front.
        """
        order = list(range(self.rows))
        for row in sorted(dead, reverse=True):
            last = self.rows - 1
            if row != last:
                for layer in self.layers:
                    layer.k[row, :, self.start:self.end] = layer.k[last, :, self.start:self.end]
                    layer.v[row, :, self.start:self.end] = layer.v[last, :, self.start:self.end]
                self.valid[row] = self.valid[last]
                order[row] = order[last]
            order.pop()
            self.rows -= 1
        if self.rows:
            used = self.valid[:self.rows, self.start:self.end].any(dim=0).nonzero()
            self.start += int(used[0]) if len(used) else self.end - self.start
        return order

    def attention_mask(self, new: int, additive_dtype: torch.dtype | None = None) -> torch.Tensor:
        """The ``[rows, 1, new, live + new]`` mask for a forward of ``new`` tokens per row.

        Boolean (True: attend) for SDPA; with ``additive_dtype``, 0 / the dtype's minimum
        for eager attention.
        """
        past = self.valid[:self.rows, self.start:self.end]
        block = torch.ones((new, new), dtype=torch.bool, device=self.device).tril()
        mask = torch.cat([past[:, None, None, :].expand(-1, 1, new, -1),
                          block[None, None].expand(self.rows, 1, -1, -1)], dim=-1)
        if additive_dtype is None:
            return mask
        return torch.zeros(mask.shape, dtype=additive_dtype, device=self.device).masked_fill(
            ~mask, torch.finfo(additive_dtype).min)
