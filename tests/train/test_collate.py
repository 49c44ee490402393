"""Packing: the planner, the dataset rows, and attention isolation in every batch layout."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
import torch

from sftmix.errors import SftmixError
from sftmix.templates import get_template
from sftmix.train.collate import (
    PackedCollator,
    PaddedCollator,
    block_causal_mask,
    build_train_dataset,
    layout_for,
    make_collator,
    pack,
)
from sftmix.train.tokenize import IGNORE_INDEX, TokenizedExample, tokenize_examples
from tests.train.helpers import code_alpaca_examples, gsm8k_examples, smollm2_tokenizer, tiny_llama


@pytest.fixture(scope="module")
def tokenized(shared_data: Path) -> list[TokenizedExample]:
    tokenizer = smollm2_tokenizer()
    examples = gsm8k_examples(shared_data, 30) + code_alpaca_examples(shared_data, 30)
    out, _ = tokenize_examples(examples, tokenizer, get_template("vicuna_v1.1", tokenizer), 512)
    return out


def test_pack_places_every_example_once_within_max_length(tokenized) -> None:
    rows = pack(tokenized, 512, seed=3)
    assert sorted(i for row in rows for i in row) == list(range(len(tokenized)))
    assert all(sum(len(tokenized[i]) for i in row) <= 512 for row in rows)
    total = sum(len(t) for t in tokenized)
    assert len(rows) <= math.ceil(total / 512) + 1  # best fit leaves almost no gaps here


def test_pack_is_a_function_of_lengths_and_seed() -> None:
    lengths = [random.Random(0).randint(1, 300) for _ in range(500)]
    assert pack(lengths, 512, seed=1) == pack(lengths, 512, seed=1)
    assert pack(lengths, 512, seed=1) != pack(lengths, 512, seed=2)
    assert pack([], 512, seed=1) == []


def test_pack_refuses_an_example_longer_than_a_row() -> None:
    with pytest.raises(SftmixError, match="example 1 has 600 tokens"):
        pack([10, 600], 512, seed=0)


def test_dataset_rows_restart_positions_per_example(tokenized) -> None:
    dataset = build_train_dataset(tokenized, packing=True, max_length=512, seed=0)
    row = dataset.rows[0]
    item = dataset[0]
    assert item["input_ids"] == [t for i in row for t in tokenized[i].input_ids]
    assert item["position_ids"] == [p for i in row for p in range(len(tokenized[i]))]
    assert dataset.num_trainable_tokens == sum(t.num_trainable for t in tokenized)
    plain = build_train_dataset(tokenized, packing=False, max_length=512, seed=0)
    assert len(plain) == len(tokenized) and plain.lengths == [len(t) for t in tokenized]


def test_block_causal_mask() -> None:
    mask = block_causal_mask(torch.tensor([[0, 1, 2, 0, 1, 0]]))
    allowed = (mask[0, 0] == 0).int()
    assert allowed.tolist() == [
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [0, 0, 0, 1, 0, 0],
        [0, 0, 0, 1, 1, 0],
        [0, 0, 0, 0, 0, 1],
    ]


def test_layouts_by_kernel() -> None:
    assert layout_for("sdpa") == layout_for("eager") == "rows"
    assert layout_for("flash_attention_2") == "flat"
    assert layout_for("some_custom_kernel") == "block_mask"
    assert isinstance(make_collator(False, None), PaddedCollator)


def _separate_logits(model, examples: list[TokenizedExample]) -> list[torch.Tensor]:
    with torch.no_grad():
        return [model(input_ids=torch.tensor([t.input_ids]), use_cache=False).logits[0]
                for t in examples]


# flex_attention is the kernel `auto` picks on a GPU without flash_attn; on the CPU its
# forward runs through an inductor compile (tens of seconds) and has no backward, which is
# enough to check that the document mask transformers builds from the position ids isolates
# every packed example.
@pytest.mark.parametrize(("attn", "layout"), [("sdpa", "rows"), ("eager", "rows"),
                                              ("sdpa", "flat"), ("sdpa", "block_mask"),
                                              ("eager", "block_mask"),
                                              pytest.param("flex_attention", "rows",
                                                           marks=pytest.mark.slow)])
def test_packed_logits_equal_separate_logits(tokenized, attn: str, layout: str) -> None:
    model = tiny_llama(smollm2_tokenizer().vocab_size, attn_implementation=attn).eval()
    subset = tokenized[:6]
    dataset = build_train_dataset(subset, packing=True, max_length=512, seed=0)
    assert len(dataset) < len(subset)
    batch = PackedCollator(pad_token_id=0, layout=layout)([dataset[i] for i in range(len(dataset))])
    assert batch["use_cache"] is False
    with torch.no_grad():
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    expected = _separate_logits(model, subset)
    width = batch["input_ids"].shape[1]
    for r, row in enumerate(dataset.rows):
        start = 0
        for i in row:
            n = len(subset[i])
            flat = r * width if layout != "flat" else sum(dataset.lengths[:r])
            got = logits[0, flat + start: flat + start + n] if layout == "flat" else \
                logits[r, start: start + n]
            torch.testing.assert_close(got, expected[i], rtol=1e-4, atol=1e-4)
            start += n


def test_with_a_cache_packed_examples_would_attend_across(tokenized) -> None:
    # Why every batch carries use_cache=False: with a cache the per-example mask is not built.
    model = tiny_llama(smollm2_tokenizer().vocab_size).eval()
    dataset = build_train_dataset(tokenized[:6], packing=True, max_length=512, seed=0)
    r = next(r for r, row in enumerate(dataset.rows) if len(row) > 1)
    batch = PackedCollator(pad_token_id=0)([dataset[r]])
    inputs = {"input_ids": batch["input_ids"], "position_ids": batch["position_ids"]}
    with torch.no_grad():
        isolated = model(**inputs, use_cache=False).logits
        leaky = model(**inputs, use_cache=True).logits
    n = len(tokenized[dataset.rows[r][0]])
    torch.testing.assert_close(isolated[0, :n], leaky[0, :n])
    assert not torch.allclose(isolated[0, n:], leaky[0, n:], atol=1e-3)


def test_padded_collator_masks_and_unlabels_padding(tokenized) -> None:
    dataset = build_train_dataset(tokenized[:3], packing=False, max_length=512, seed=0)
    batch = PaddedCollator(pad_token_id=7, pad_to_multiple_of=64)([dataset[i] for i in range(3)])
    width = batch["input_ids"].shape[1]
    assert width % 64 == 0 and width >= max(dataset.lengths)
    for i, n in enumerate(dataset.lengths):
        assert batch["attention_mask"][i].sum() == n
        assert (batch["labels"][i, n:] == IGNORE_INDEX).all()
        assert (batch["input_ids"][i, n:] == 7).all()
