"""sft_loss: equals the full-logits loss; packed and padded training agree; wrappers work."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from sftmix.templates import get_template
from sftmix.train.collate import build_train_dataset, make_collator
from sftmix.train.loss import (
    chunked_head_loss,
    full_logits_loss,
    head_structure,
    sft_loss,
    unwrap_model,
)
from sftmix.train.tokenize import TokenizedExample, tokenize_examples
from tests.train.helpers import code_alpaca_examples, gsm8k_examples, smollm2_tokenizer, tiny_llama


@pytest.fixture(scope="module")
def tokenized(shared_data: Path) -> list[TokenizedExample]:
    tokenizer = smollm2_tokenizer()
    examples = gsm8k_examples(shared_data, 5, offset=100) + code_alpaca_examples(shared_data, 5)
    out, _ = tokenize_examples(examples, tokenizer, get_template("model", tokenizer), 256)
    return out


def batch_of(tokenized: list[TokenizedExample], packing: bool, attn: str = "sdpa") -> dict:
    dataset = build_train_dataset(tokenized, packing=packing, max_length=256, seed=0)
    return make_collator(packing, 0, attn)([dataset[i] for i in range(len(dataset))])


def test_sft_loss_equals_the_standard_loss(tokenized) -> None:
    model = tiny_llama(smollm2_tokenizer().vocab_size)
    batch = batch_of(tokenized, packing=False)
    standard = model(**batch).loss  # transformers' own shifted, masked mean
    torch.testing.assert_close(sft_loss(model, batch), standard, rtol=1e-5, atol=0)
    torch.testing.assert_close(full_logits_loss(model, batch), standard, rtol=1e-5, atol=0)
    n = int((batch["labels"][:, 1:] != -100).sum())
    torch.testing.assert_close(sft_loss(model, batch, num_items_in_batch=2 * n), standard / 2)


def grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.grad.detach().clone() for k, p in model.named_parameters() if p.grad is not None}


@pytest.mark.slow
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_and_padded_training_give_the_same_loss_and_gradients(tokenized, attn: str) -> None:
    results = []
    for packing in (False, True):
        model = tiny_llama(smollm2_tokenizer().vocab_size, attn_implementation=attn, seed=1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        batch = batch_of(tokenized, packing, attn)
        losses, first_grads = [], None
        for _ in range(3):
            optimizer.zero_grad()
            loss = sft_loss(model, batch)
            loss.backward()
            first_grads = first_grads or grads(model)
            losses.append(loss.detach())
            optimizer.step()
        results.append((batch["input_ids"].shape, torch.stack(losses), first_grads))
    (padded_shape, padded_losses, padded_grads), (packed_shape, packed_losses, packed_grads) = results
    assert packed_shape[0] < padded_shape[0]  # the examples really were packed
    torch.testing.assert_close(packed_losses, padded_losses, rtol=1e-5, atol=0)
    assert packed_grads.keys() == padded_grads.keys()
    for name, g in padded_grads.items():
        torch.testing.assert_close(packed_grads[name], g, rtol=1e-5, atol=1e-8, msg=name)


def test_gradient_accumulation_with_num_items_is_exact(tokenized) -> None:
    model = tiny_llama(smollm2_tokenizer().vocab_size, seed=2)
    sft_loss(model, batch_of(tokenized, packing=False)).backward()
    whole = grads(model)
    model.zero_grad()
    halves = [batch_of(tokenized[:5], packing=True), batch_of(tokenized[5:], packing=True)]
    total = sum(int((b["labels"][:, 1:] != -100).sum()) for b in halves)
    for b in halves:
        sft_loss(model, b, num_items_in_batch=torch.tensor(total)).backward()
    for name, g in whole.items():
        torch.testing.assert_close(model.get_parameter(name).grad, g, rtol=1e-5, atol=1e-8)


def test_lora_wrapped_model_uses_the_selected_logits(tokenized, caplog) -> None:
    from peft import LoraConfig, get_peft_model

    base = tiny_llama(smollm2_tokenizer().vocab_size, seed=3)
    model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj", "lm_head"],
                                            init_lora_weights=False))
    assert unwrap_model(model) is base and head_structure(model)[0] is base.get_output_embeddings()
    batch = batch_of(tokenized, packing=True)
    with caplog.at_level(logging.WARNING, logger="sftmix.train.loss"):
        loss = sft_loss(model, batch)
    assert not caplog.records
    torch.testing.assert_close(loss, full_logits_loss(model, batch), rtol=1e-5, atol=0)
    loss.backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if "lora_" in n)


class _NoKeep(torch.nn.Module):
    """A model whose forward has no logits_to_keep (e.g. older remote code)."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, input_ids, attention_mask=None, position_ids=None, use_cache=None):
        return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                          position_ids=position_ids, use_cache=use_cache)


def test_unknown_structure_falls_back_to_full_logits_with_a_warning(tokenized, caplog) -> None:
    inner = tiny_llama(smollm2_tokenizer().vocab_size, seed=4)
    model = _NoKeep(inner)
    batch = batch_of(tokenized, packing=True)
    with caplog.at_level(logging.WARNING, logger="sftmix.train.loss"):
        loss = sft_loss(model, batch)
    assert "full logits" in caplog.text
    torch.testing.assert_close(loss, sft_loss(inner, batch), rtol=1e-5, atol=0)


def test_a_batch_without_trainable_tokens_gives_zero(tokenized) -> None:
    # Possible for one micro-batch of an accumulation step; must not be NaN.
    model = tiny_llama(smollm2_tokenizer().vocab_size, seed=5)
    batch = batch_of(tokenized[:2], packing=True)
    batch["labels"] = torch.full_like(batch["labels"], -100)
    loss = sft_loss(model, batch, num_items_in_batch=torch.tensor(10))
    loss.backward()
    assert loss.item() == 0.0 and sft_loss(model, batch).item() == 0.0


def _loss_and_grads(model: torch.nn.Module, loss_fn, batch: dict) -> tuple[torch.Tensor, dict]:
    model.zero_grad()
    loss = loss_fn(model, batch)
    loss.backward()
    return loss.detach(), grads(model)


@pytest.mark.parametrize("lora_head", [False, True])
def test_chunked_head_equals_full_logits_in_loss_and_gradients(tokenized, monkeypatch,
                                                               lora_head: bool) -> None:
    # Chunks of 96 rows: many chunks and a ragged last one, through both head paths
    # (the fused Linear function and a LoRA-wrapped head under checkpointing).
    from peft import LoraConfig, get_peft_model

    import sftmix.train.loss as loss_module

    monkeypatch.setattr(loss_module, "chunk_rows", lambda vocabulary: 96)
    model = tiny_llama(smollm2_tokenizer().vocab_size, seed=6)
    if lora_head:
        model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "lm_head"],
                                                 init_lora_weights=False))
    batch = batch_of(tokenized, packing=True)
    chunked, chunked_grads = _loss_and_grads(model, sft_loss, batch)
    full, full_grads = _loss_and_grads(model, full_logits_loss, batch)
    torch.testing.assert_close(chunked, full, rtol=1e-5, atol=0)
    assert chunked_grads.keys() == full_grads.keys() and chunked_grads
    for name, g in full_grads.items():
        # Relative to the gradient's scale: summation order differs (chunks), so entries
        # that nearly cancel differ by float32 rounding of the large ones.
        error = (chunked_grads[name] - g).abs().max() / g.abs().max()
        assert error <= 1e-5, (name, float(error))


def test_chunked_head_loss_with_a_bias_matches_cross_entropy() -> None:
    torch.manual_seed(0)
    head = torch.nn.Linear(16, 50, bias=True)
    hidden = torch.randn(23, 16, requires_grad=True)
    targets = torch.randint(0, 50, (23,))
    results = []
    for loss_fn in (lambda: chunked_head_loss(head, hidden, targets, rows=5),
                    lambda: F.cross_entropy(head(hidden), targets, reduction="sum")):
        hidden.grad = head.weight.grad = head.bias.grad = None
        total = loss_fn()
        (2 * total).backward()  # an upstream gradient other than 1 reaches every input
        results.append([total.detach(), hidden.grad, head.weight.grad, head.bias.grad])
    for got, expected in zip(*results, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_a_logit_transform_after_the_head_takes_the_full_logits_path(tokenized, caplog) -> None:
    model = tiny_llama(smollm2_tokenizer().vocab_size, seed=7)
    model.config.final_logit_softcapping = 30.0
    assert head_structure(model)[0] is None
    batch = batch_of(tokenized, packing=True)
    with caplog.at_level(logging.WARNING, logger="sftmix.train.loss"):
        loss = sft_loss(model, batch)
    assert "final_logit_softcapping" in caplog.text
    torch.testing.assert_close(loss, full_logits_loss(model, batch), rtol=1e-5, atol=0)
