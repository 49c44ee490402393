"""Packing several examples per row, the training dataset, and the batch collators.

Packing puts whole examples side by side in rows of at most ``max_length``
tokens, planned by best-fit decreasing (each example, longest first, goes into
the fullest row that still has room), which leaves a few percent of padding
where padded batches of a realistic length spread waste a third or more.

Attention stays within each example. How depends on the attention kernel:

* ``rows`` (sdpa, eager, flex): rows are stacked, padded at the end, with
  ``position_ids`` restarting at 0 for each example and **no attention mask**.
  Transformers 5 then derives a per-example causal mask from the position ids
  -- but only without a cache, so every batch carries ``use_cache=False``.
  Keeping rows separate (rather than one flattened sequence) keeps the
  attention cost at ``rows x max_length^2`` instead of ``(rows x max_length)^2``.
* ``flat`` (flash-attention 2/3): its varlen path only reads position ids of a
  single sequence, so the batch's rows are concatenated into one.
* ``block_mask`` (any other kernel): an explicit block-diagonal causal 4D mask,
  additive (0 where attention is allowed, the dtype's minimum elsewhere), which
  every kernel that takes a mask accepts.

Labels carry -100 at each example's first token (see :mod:`sftmix.train.tokenize`),
so no position is ever trained to predict the next example. Whatever the
layout, :func:`sftmix.train.loss.sft_loss` averages over the batch's trainable
tokens, so a packed batch and a padded batch of the same examples give the
same loss and gradients.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch.utils.data import Dataset

from sftmix.errors import SftmixError
from sftmix.train.tokenize import IGNORE_INDEX, TokenizedExample

Layout = Literal["rows", "flat", "block_mask"]
POSITION_ID_KERNELS = ("sdpa", "eager", "flex_attention")
FLASH_KERNELS = ("flash_attention_2", "flash_attention_3", "kernels-community/flash-attn",
                 "kernels-community/vllm-flash-attn3")


def pack(tokenized: Sequence[TokenizedExample] | Sequence[int], max_length: int,
         seed: int) -> list[list[int]]:
    """Plan rows: groups of example indices whose lengths sum to at most ``max_length``.

    Best-fit decreasing; ties in length are broken by a seeded shuffle and the
    rows come back in a seeded random order, so the plan is a pure function of
    the lengths and the seed.
    """
    lengths = [x if isinstance(x, int) else len(x) for x in tokenized]
    too_long = [i for i, n in enumerate(lengths) if n > max_length]
    if too_long:
        raise SftmixError(
            f"cannot pack: example {too_long[0]} has {lengths[too_long[0]]} tokens, more than "
            f"max_length={max_length} (expected examples truncated to max_length first)"
        )
    rng = random.Random(seed)
    tiebreak = list(range(len(lengths)))
    rng.shuffle(tiebreak)
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], tiebreak[i]))
    rows: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (room left, row index), sorted
    for i in order:
        n = lengths[i]
        k = bisect.bisect_left(free, (n, -1))
        if k < len(free):
            room, row = free.pop(k)
        else:
            room, row = max_length, len(rows)
            rows.append([])
        rows[row].append(i)
        bisect.insort(free, (room - n, row))
    rng.shuffle(rows)
    return rows


class SftDataset(Dataset[dict[str, list[int]]]):
    """Training rows: each is one example (padded batches) or several (packing).

    An item is ``{"input_ids", "labels", "position_ids"}`` as lists, with
    position ids restarting at 0 for each example of the row. ``lengths``
    serves length-grouped sampling (``TrainingArguments.group_by_length``).
    """

    def __init__(self, tokenized: Sequence[TokenizedExample], rows: list[list[int]]) -> None:
        self.tokenized = tokenized
        self.rows = rows
        self.lengths = [sum(len(tokenized[i]) for i in row) for row in rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        ids: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        for i in self.rows[index]:
            ex = self.tokenized[i]
            ids += ex.input_ids
            labels += ex.labels
            positions += range(len(ex))
        return {"input_ids": ids, "labels": labels, "position_ids": positions}

    @property
    def num_tokens(self) -> int:
        return sum(self.lengths)

    @property
    def num_trainable_tokens(self) -> int:
        return sum(self.tokenized[i].num_trainable for row in self.rows for i in row)


def build_train_dataset(tokenized: Sequence[TokenizedExample], packing: bool, max_length: int,
                        seed: int) -> SftDataset:
    """Rows of packed examples (``packing``) or one example per row, in the given order."""
    rows = pack(tokenized, max_length, seed) if packing else [[i] for i in range(len(tokenized))]
    return SftDataset(tokenized, rows)


def layout_for(attn_implementation: str | None) -> Layout:
    """The packed-batch layout that isolates examples under an attention kernel."""
    if attn_implementation in FLASH_KERNELS:
        return "flat"
    if attn_implementation in POSITION_ID_KERNELS or attn_implementation is None:
        return "rows"
    return "block_mask"


def _round_up(n: int, multiple: int | None) -> int:
    return n if not multiple else -(-n // multiple) * multiple


@dataclass
class PackedCollator:
    """Stack packed rows with restarting position ids (see module docstring for ``layout``)."""

    pad_token_id: int
    layout: Layout = "rows"
    pad_to_multiple_of: int | None = None
    mask_dtype: torch.dtype = torch.float32

    def __call__(self, features: Sequence[dict[str, list[int]]]) -> dict[str, Any]:
        if self.layout == "flat":
            features = [{k: [v for f in features for v in f[k]]
                         for k in ("input_ids", "labels", "position_ids")}]
        width = _round_up(max(len(f["input_ids"]) for f in features), self.pad_to_multiple_of)
        ids, labels, positions = [], [], []
        for f in features:
            pad = width - len(f["input_ids"])
            ids.append(f["input_ids"] + [self.pad_token_id] * pad)
            labels.append(f["labels"] + [IGNORE_INDEX] * pad)
            # The padding is a pseudo-example of its own: it restarts at 0, so nothing
            # real attends to it (it comes last anyway) and it attends to nothing real.
            positions.append(f["position_ids"] + list(range(pad)))
        batch: dict[str, Any] = {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
            "position_ids": torch.tensor(positions, dtype=torch.long),
            "use_cache": False,
        }
        if self.layout == "block_mask":
            batch["attention_mask"] = block_causal_mask(batch["position_ids"], self.mask_dtype)
        return batch


def block_causal_mask(position_ids: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Additive ``(batch, 1, L, L)`` mask: causal within each example, closed across examples."""
    starts = torch.diff(position_ids, dim=-1, prepend=position_ids[:, :1] - 1) != 1
    segment = starts.long().cumsum(-1)
    same = segment[:, :, None] == segment[:, None, :]
    width = position_ids.shape[-1]
    causal = torch.ones(width, width, dtype=torch.bool, device=position_ids.device).tril()
    allowed = same & causal
    mask = torch.zeros(allowed.shape, dtype=dtype, device=position_ids.device)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[:, None]


@dataclass
class PaddedCollator:
    """One example per row, right-padded to the longest in the batch, with a 2D attention mask."""

    pad_token_id: int
    pad_to_multiple_of: int | None = None

    def __call__(self, features: Sequence[dict[str, list[int]]]) -> dict[str, Any]:
        width = _round_up(max(len(f["input_ids"]) for f in features), self.pad_to_multiple_of)
        ids, labels, mask = [], [], []
        for f in features:
            n = len(f["input_ids"])
            ids.append(f["input_ids"] + [self.pad_token_id] * (width - n))
            labels.append(f["labels"] + [IGNORE_INDEX] * (width - n))
            mask.append([1] * n + [0] * (width - n))
        return {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
            "attention_mask": torch.tensor(mask, dtype=torch.long),
            "use_cache": False,
        }


def make_collator(packing: bool, pad_token_id: int | None, attn_implementation: str | None = "sdpa",
                  pad_to_multiple_of: int | None = None,
                  mask_dtype: torch.dtype = torch.float32) -> PackedCollator | PaddedCollator:
    """The collator for a dataset from :func:`build_train_dataset` and a model's attention kernel."""
    pad = 0 if pad_token_id is None else pad_token_id  # padded positions are masked and unlabelled
    if packing:
        return PackedCollator(pad, layout_for(attn_implementation), pad_to_multiple_of, mask_dtype)
    return PaddedCollator(pad, pad_to_multiple_of)
