"""The slot KV cache: rows admitted, removed, holes rejected and repacked keep their own keys."""

from __future__ import annotations

import pytest
import torch
from transformers import DynamicCache, LlamaConfig

from sftmix.errors import SftmixError
from sftmix.eval.engine.kv_cache import SlotCache

CONFIG = LlamaConfig(num_hidden_layers=2, hidden_size=8, num_attention_heads=2,
                     num_key_value_heads=1, intermediate_size=16, vocab_size=10)


def prefill(lengths: list[int], tag: float) -> tuple[DynamicCache, list[torch.Tensor]]:
    """A left-padded prefill cache whose row j holds keys tag + j*100 + column (heads 1, dim 2)."""
    width = max(lengths)
    cache = DynamicCache(config=CONFIG)
    rows = []
    for j, n in enumerate(lengths):
        seq = tag + j * 100 + torch.arange(n, dtype=torch.float32)
        rows.append(seq)
    keys = torch.zeros((len(lengths), 1, width, 2))
    for j, seq in enumerate(rows):
        keys[j, 0, width - len(seq):] = seq[:, None]
    for layer in range(CONFIG.num_hidden_layers):
        cache.update(keys.clone(), -keys.clone(), layer)
    return cache, rows


def row_keys(cache: SlotCache, row: int) -> torch.Tensor:
    live = cache.valid[row, cache.start:cache.end]
    keys = cache.layers[0].k[row, 0, cache.start:cache.end, 0][live]
    assert torch.equal(cache.layers[1].v[row, 0, cache.start:cache.end, 0][live], -keys)
    return keys


def write_step(cache: SlotCache, values: list[list[float]]) -> None:
    """What a forward pass does: each layer writes the new columns of every row in use."""
    width = len(values[0])
    cache.reserve(width)
    new = torch.tensor(values)[:, None, :, None].expand(-1, 1, -1, 2)
    for layer in cache.layers:
        keys, _ = layer.update(new, -new)
        assert keys.shape[2] == cache.end - cache.start + width
    cache.advance(width)


def test_rows_keep_their_own_columns_through_admit_remove_reject_repack() -> None:
    cache = SlotCache(CONFIG, slots=4, capacity=8, device=torch.device("cpu"))
    first, seqs = prefill([3, 5], tag=0.0)
    cache.admit(first, [3, 5], [0, 1])
    expected = [seqs[0].tolist(), seqs[1].tolist()]
    write_step(cache, [[1000.0], [1001.0]])
    expected[0].append(1000.0)
    expected[1].append(1001.0)
    # A later, longer prompt joins: the live columns move right to make room.
    later, more = prefill([2, 7], tag=5000.0)
    cache.admit(later, [2, 7], [1])
    expected.append(more[1].tolist())
    assert [row_keys(cache, r).tolist() for r in range(3)] == expected
    # Three draft columns; row 0 keeps all, row 1 one, row 2 none (growing the buffers).
    write_step(cache, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    for row, kept in enumerate((3, 1, 0)):
        cache.reject(row, 3 - kept)
        expected[row] += [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]][row][:kept]
    assert cache.capacity > 8
    assert [row_keys(cache, r).tolist() for r in range(3)] == expected
    # Row 0 leaves: the last row takes its slot.
    assert cache.remove([0]) == [2, 1]
    expected = [expected[2], expected[1]]
    assert [row_keys(cache, r).tolist() for r in range(2)] == expected
    boolean, additive = cache.attention_mask(1), cache.attention_mask(1, torch.float32)
    assert not boolean.all()  # holes and left padding
    assert torch.equal(additive, torch.where(boolean, 0.0, torch.finfo(torch.float32).min))
    cache.repack()
    assert cache.start == 0 and cache.end == max(len(e) for e in expected)
    assert [row_keys(cache, r).tolist() for r in range(2)] == expected
    mask = cache.attention_mask(2)
    assert mask.shape == (2, 1, 2, cache.end + 2)
    assert mask[:, 0, :, :cache.end].sum(dim=-1).tolist() == [[len(e)] * 2 for e in expected]
    assert mask[0, 0, :, cache.end:].tolist() == [[True, False], [True, True]]
    assert cache.remove([0, 1]) == [] and cache.rows == 0


def test_too_many_rows_and_unsupported_layers_are_refused() -> None:
    cache = SlotCache(CONFIG, slots=1, capacity=8, device=torch.device("cpu"))
    batch, _ = prefill([2, 2], tag=0.0)
    with pytest.raises(SftmixError, match="exceed 1 slots"):
        cache.admit(batch, [2, 2], [0, 1])
    windowed = LlamaConfig(**{**CONFIG.to_dict(), "layer_types": ["sliding_attention"] * 2,
                              "sliding_window": 4})
    with pytest.raises(SftmixError, match="sliding window of at least 8"):
        SlotCache(windowed, slots=1, capacity=8, device=torch.device("cpu"))
