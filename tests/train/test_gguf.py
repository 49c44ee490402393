"""SmolLM2-135M-Instruct from its GGUF file: imported, fine-tuned on real data, reloaded."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from sftmix.artifacts import is_complete
from sftmix.errors import SftmixError
from sftmix.train.config import TrainSettings
from sftmix.train.models import import_gguf, resolve_gguf, smollm2_gguf_path
from sftmix.train.stage import run_stage
from sftmix.train.trainer import read_train_log
from tests.train.helpers import gsm8k_examples


def test_smollm2_is_found_in_its_package_and_bad_paths_are_named(tmp_path: Path) -> None:
    path = smollm2_gguf_path()
    assert path.is_file() and path.suffix == ".gguf"
    assert resolve_gguf("smollm2") == path
    with pytest.raises(SftmixError, match=r"expected an existing \.gguf file"):
        resolve_gguf(str(tmp_path / "missing.gguf"))


@pytest.mark.slow
@pytest.mark.real_model
def test_smollm2_gguf_imports_fine_tunes_and_reloads(shared_data: Path, tmp_path: Path) -> None:
    base = import_gguf(smollm2_gguf_path(), tmp_path / "smollm2")
    assert is_complete(base) and (base / "model.safetensors").is_file()
    model = AutoModelForCausalLM.from_pretrained(base)
    # De-quantised and rebuilt: a plain float32 model, not one flagged as quantized.
    assert model.dtype == torch.float32 and getattr(model, "hf_quantizer", None) is None
    assert getattr(model.config, "quantization_config", None) is None
    tokenizer = AutoTokenizer.from_pretrained(base)
    prompt = tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        logits = model(**prompt).logits
    assert torch.isfinite(logits).all()

    # Optimiser steps on short real GSM8K examples (the CPU trains ~150 tokens/s), in the
    # model's own chat template; no warm-up, so that the first step already moves the weights.
    examples = [e for e in gsm8k_examples(shared_data, 200)
                if len(e.messages[0].content) + len(e.messages[1].content) < 330][:4]
    assert len(examples) == 4
    settings = TrainSettings(template="model", max_length=96, epochs=1, learning_rate=1e-4,
                             warmup_ratio=0.0, global_batch_size=2, per_device_batch_size=2,
                             precision="fp32")
    out = run_stage(base, examples, settings, tmp_path / "stage")
    records = read_train_log(out / "train_log.jsonl")
    assert [r["step"] for r in records] == [1, 2]
    assert all(0 < r["loss"] < 10 for r in records)  # a pretrained chat model, not a random one

    tuned = AutoModelForCausalLM.from_pretrained(out)
    assert type(tuned).__name__ == "LlamaForCausalLM"
    before, after = load_file(base / "model.safetensors"), load_file(out / "model.safetensors")
    assert any(not torch.equal(before[k], after[k]) for k in before if k in after)
    assert AutoTokenizer.from_pretrained(out).eos_token == tokenizer.eos_token
