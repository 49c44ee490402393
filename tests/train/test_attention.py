"""Attention kernel choice for packed rows, and compiling decoder layers."""

from __future__ import annotations

import logging

import torch

from sftmix.train.attention import choose_attention, compile_blocks
from sftmix.train.collate import layout_for
from tests.train.helpers import tiny_llama


def test_auto_choice_is_logged_and_sdpa_on_the_cpu(caplog) -> None:
    with caplog.at_level(logging.INFO, logger="sftmix.train.attention"):
        assert choose_attention("auto", "cpu") == "sdpa"
    assert "attention: sdpa" in caplog.text


def test_auto_choice_on_cuda_prefers_flash_then_flex(monkeypatch) -> None:
    import sftmix.train.attention as attention

    monkeypatch.setattr(attention, "flash_attn_installed", lambda: True)
    assert choose_attention("auto", "cuda") == "flash_attention_2"
    assert layout_for("flash_attention_2") == "flat"  # varlen: one flattened sequence
    monkeypatch.setattr(attention, "flash_attn_installed", lambda: False)
    assert choose_attention("auto", "cuda") == "flex_attention"
    assert layout_for("flex_attention") == "rows"  # document mask from the position ids
    monkeypatch.setattr(attention, "flex_attention_available", lambda: False)
    assert choose_attention("auto", "cuda") == "sdpa"
    assert choose_attention("eager", "cuda") == "eager"


def test_compiled_layers_keep_the_loss_and_gradients() -> None:
    # Dynamo's eager backend: the layers are traced and run as graphs, without the
    # minutes an inductor build of the kernels takes on a small CPU.
    from sftmix.train.loss import sft_loss

    ids = torch.randint(0, 1000, (2, 24), generator=torch.Generator().manual_seed(0))
    batch = {"input_ids": ids, "labels": ids.clone()}
    results = []
    for compiled in (False, True):
        model = tiny_llama(1000, seed=8)
        if compiled:
            assert compile_blocks(model, backend="eager") == len(model.model.layers)
        loss = sft_loss(model, batch)
        loss.backward()
        results.append((loss.detach(), model.model.embed_tokens.weight.grad))
    torch.testing.assert_close(results[1][0], results[0][0], rtol=1e-5, atol=0)
    torch.testing.assert_close(results[1][1], results[0][1], rtol=1e-5, atol=1e-7)
    assert compile_blocks(torch.nn.Linear(2, 2)) == 0


def test_kernel_and_compile_do_not_change_a_stage_key(tmp_path) -> None:
    # They change how a step is computed, not the weights a stage stands for: a stage
    # completed before (or with other kernels) is still recognised as the same.
    from sftmix.study.kinds import job_key
    from sftmix.study.specs import StageSpec
    from sftmix.train.config import TrainSettings

    def key(**settings: object) -> str:
        spec = StageSpec(parent="models/b-1", mixture="mixtures/m-1", training=TrainSettings(**settings))
        return job_key("stage", spec)

    plain = key()
    assert key(attention="eager", compile=True) == plain
    assert key(precision="bf16_weights") != plain
