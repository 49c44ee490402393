"""LoRA through PEFT: only adapters train, the saved stage is a plain merged model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from sftmix.errors import ConfigError
from sftmix.train.config import LoraSettings, TrainSettings
from sftmix.train.models import build_tiny_llama, load_model, wrap_lora
from sftmix.train.stage import run_stage
from sftmix.train.trainer import read_train_log
from tests.train.helpers import code_alpaca_examples, gsm8k_examples


@pytest.mark.slow
def test_lora_stage_trains_merges_on_save_and_reloads(shared_data: Path, tmp_path: Path) -> None:
    examples = gsm8k_examples(shared_data, 8) + code_alpaca_examples(shared_data, 8)
    texts = [m.content for e in examples for m in e.messages]
    base = build_tiny_llama(texts, tmp_path / "base", vocab_size=1024, hidden=64, layers=2, heads=4)
    lora = LoraSettings(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"])
    settings = TrainSettings(max_length=384, epochs=2, learning_rate=5e-3, global_batch_size=4,
                             per_device_batch_size=4, precision="fp32", lora=lora)
    out = run_stage(base, examples, settings, tmp_path / "lora")

    records = read_train_log(out / "train_log.jsonl")
    assert records[-1]["loss"] < records[0]["loss"]
    # A plain model folder: no adapter files, keys of the base architecture.
    assert not (out / "adapter_config.json").exists()
    before, after = load_file(base / "model.safetensors"), load_file(out / "model.safetensors")
    assert before.keys() == after.keys()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    # LoRA touched exactly the targeted projections; embeddings, norms, MLPs are the base's.
    assert changed and all(k.endswith(("q_proj.weight", "v_proj.weight")) for k in changed)
    assert len(changed) == 2 * 2  # two layers x (q_proj, v_proj)

    reloaded = AutoModelForCausalLM.from_pretrained(out)
    batch = torch.tensor([[1, 5, 9, 17, 33]])
    with torch.no_grad():
        assert torch.isfinite(reloaded(batch).logits).all()


def test_only_adapters_are_trainable_and_bad_targets_are_named(tmp_path: Path) -> None:
    base = build_tiny_llama(["hello world"] * 50, tmp_path / "base", vocab_size=300, hidden=32,
                            layers=1, heads=2)
    model = wrap_lora(load_model(base), LoraSettings(r=2, alpha=4))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    with pytest.raises(ConfigError, match="c_attn"):
        wrap_lora(load_model(base), LoraSettings(target_modules=["c_attn"]))
