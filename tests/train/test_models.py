"""Model folders: a tiny Llama with its own BPE tokenizer, loading, precision."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from sftmix.artifacts import is_complete
from sftmix.data.records import Message
from sftmix.errors import SftmixError
from sftmix.templates import VicunaTemplate, render
from sftmix.train.models import (
    build_tiny_llama,
    check_model_dir,
    cpu_has_native_bf16,
    load_model,
    load_tokenizer,
    resolve_precision,
)
from tests.train.helpers import code_alpaca_examples, gsm8k_examples


def _texts(shared_data: Path) -> list[str]:
    examples = gsm8k_examples(shared_data, 60) + code_alpaca_examples(shared_data, 60)
    return [m.content for e in examples for m in e.messages]


def test_tiny_llama_is_a_saved_hf_model_with_a_chat_ready_tokenizer(shared_data: Path,
                                                                   tmp_path: Path) -> None:
    path = build_tiny_llama(_texts(shared_data), tmp_path / "tiny", vocab_size=1500, hidden=96,
                            layers=3, heads=6, kv_heads=2)
    assert is_complete(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    config = model.config
    assert (config.model_type, config.num_hidden_layers, config.hidden_size,
            config.num_attention_heads, config.num_key_value_heads) == ("llama", 3, 96, 6, 2)
    assert config.vocab_size == len(tokenizer) <= 1500
    assert tokenizer.eos_token == "</s>" and tokenizer.pad_token == "<pad>"
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    assert config.eos_token_id == tokenizer.eos_token_id
    # Byte-level BPE: any text round-trips, including characters never seen in training.
    text = "Natalia sold 48/2 = 24 clips; déjà vu → ∑ 🙂"
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text
    # Its chat template renders exactly what the built-in vicuna template trains on.
    messages = [Message("user", "What is 2+3?"), Message("assistant", "5"),
                Message("user", "And 2*3?"), Message("assistant", "6")]
    rendered = tokenizer.apply_chat_template([m.to_dict() for m in messages], tokenize=False)
    assert rendered == render(VicunaTemplate(eos=tokenizer.eos_token), messages)
    params = sum(p.numel() for p in model.parameters())
    assert 100_000 < params < 2_000_000


def test_tiny_llama_is_deterministic_and_reused(shared_data: Path, tmp_path: Path) -> None:
    texts = _texts(shared_data)
    a = build_tiny_llama(texts, tmp_path / "a", vocab_size=800, hidden=32, layers=1, heads=2)
    b = build_tiny_llama(texts, tmp_path / "b", vocab_size=800, hidden=32, layers=1, heads=2)
    assert (a / "tokenizer.json").read_bytes() == (b / "tokenizer.json").read_bytes()
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    stamp = (a / "COMPLETE.json").read_bytes()
    assert build_tiny_llama(["other"], a) == a and (a / "COMPLETE.json").read_bytes() == stamp


def test_loading_checks_the_folder(tmp_path: Path) -> None:
    with pytest.raises(SftmixError, match=r"no config\.json"):
        check_model_dir(tmp_path)
    with pytest.raises(SftmixError, match=r"no config\.json"):
        load_model(tmp_path / "nowhere")
    path = build_tiny_llama(["a b c d e f"] * 40, tmp_path / "m", vocab_size=300, hidden=32,
                            layers=1, heads=2)
    model = load_model(path)
    assert model.dtype == torch.float32 and load_tokenizer(path).pad_token == "<pad>"


def test_precision_auto_follows_native_bf16_support() -> None:
    if torch.cuda.is_available():
        pytest.skip("checks the CPU rule")
    assert resolve_precision("auto") == ("bf16" if cpu_has_native_bf16() else "fp32")
    assert resolve_precision("fp32") == "fp32"
    assert resolve_precision("bf16") == "bf16"
