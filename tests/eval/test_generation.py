"""The generation engine: batched decoding equals one-at-a-time decoding, stops, sampling."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from sftmix.data.records import Message
from sftmix.errors import SftmixError
from sftmix.eval.base import GenerationSpec
from sftmix.eval.engine.generation import (
    HFGenerator,
    PromptRenderer,
    _filter_top_p,
    load_generator,
)
from tests.eval.models import gsm8k_questions, one_torch_thread, smollm2_dir, tiny_model_dir


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def tiny_dir(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_dir(shared_data, tmp_path_factory)


@pytest.fixture(scope="module")
def tiny(tiny_dir: Path) -> tuple[torch.nn.Module, object]:
    model = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32)
    return model, AutoTokenizer.from_pretrained(tiny_dir)


@pytest.fixture(scope="module")
def prompts(shared_data: Path) -> list[list[Message] | str]:
    # Chat prompts of very different lengths, and raw few-shot style strings.
    qs = gsm8k_questions(shared_data, 9)
    chat: list[list[Message] | str] = [[Message("user", q)] for q in qs[:6]]
    chat[1] = [Message("user", qs[1][:40])]
    chat[4] = [Message("user", "Hi"), Message("assistant", "Hello."), Message("user", qs[4])]
    return [*chat, f"Question: {qs[6]}\nAnswer:", qs[7][:25], "7"]


def engine(tiny, batch_size: int, **kw) -> HFGenerator:
    model, tokenizer = tiny
    return HFGenerator(model, tokenizer, batch_size=batch_size, progress=False, **kw)


def test_batched_equals_one_at_a_time(tiny, prompts) -> None:
    spec = GenerationSpec(max_new_tokens=24)
    single = engine(tiny, 1)(prompts, spec)
    # A stop string taken from the middle of one output ends sequences at different steps,
    # so rows leave the batch (and the cache) while others go on.
    stop = single[0][0][8:11]
    spec = GenerationSpec(max_new_tokens=24, stop=(stop,))
    single = engine(tiny, 1)(prompts, spec)
    for batch_size in (4, 16):
        assert engine(tiny, batch_size)(prompts, spec) == single
    # Dynamic batch size (a token budget) gives the same again.
    assert engine(tiny, 16, max_batch_tokens=120)(prompts, spec) == single
    lengths = {len(out[0]) for out in single}
    assert len(lengths) > 2 and any(stop not in o[0] and len(o[0]) < 20 for o in single)


def test_continuous_batching_and_drafts_keep_greedy_exact(tiny, prompts) -> None:
    spec = GenerationSpec(max_new_tokens=40)
    plain = engine(tiny, 1, draft_tokens=0)(prompts, spec)
    # Two slots for nine prompts: rows leave and queued prompts join the running batch.
    assert engine(tiny, 2, draft_tokens=0)(prompts, spec) == plain
    # Drafts forced at every step (a huge fixed cost makes any draft worth verifying).
    drafting = engine(tiny, 3, fixed_cost=1e6)
    assert drafting(prompts, spec) == plain
    assert drafting.stats["accepted"] > 0
    no_drafts = engine(tiny, 3, draft_tokens=0)
    assert no_drafts(prompts, spec) == plain
    assert drafting.stats["forwards"] < no_drafts.stats["forwards"]


def test_packed_weights_keep_greedy_exact(tiny, prompts) -> None:
    spec = GenerationSpec(max_new_tokens=32)
    plain = engine(tiny, 4, packed_weights=False)(prompts, spec)
    assert engine(tiny, 4, packed_weights=True)(prompts, spec) == plain
    assert engine(tiny, 1, packed_weights=True)(prompts, spec) == plain


def test_greedy_matches_transformers_generate(tiny) -> None:
    model, tokenizer = tiny
    text = "Question: Janet has 3 apples and buys 4 more. How many?\nAnswer:"
    ids = tokenizer(text, return_tensors="pt")
    ref = model.generate(**ids, do_sample=False, max_new_tokens=20, eos_token_id=None,
                         pad_token_id=tokenizer.pad_token_id)
    expected = tokenizer.decode(ref[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    gen = engine(tiny, 4)
    gen.eos_ids = set()  # generate() above ignores eos too
    assert gen([text], GenerationSpec(max_new_tokens=20)) == [[expected]]


def test_stop_strings_are_trimmed(tiny, prompts) -> None:
    free = engine(tiny, 8)(prompts, GenerationSpec(max_new_tokens=24))
    stop = free[2][0][5:8]
    stopped = engine(tiny, 8)(prompts, GenerationSpec(max_new_tokens=24, stop=(stop, "zzzq")))
    for full, cut in zip(free, stopped, strict=True):
        assert stop not in cut[0]
        if stop in full[0]:
            assert cut[0] == full[0][: full[0].index(stop)]
        else:
            assert cut[0] == full[0]


def test_sampling_is_seeded_and_independent_of_batching(tiny, prompts) -> None:
    spec = GenerationSpec(max_new_tokens=12, temperature=1.0, n=3, seed=7)
    a = engine(tiny, 8)(prompts, spec)
    assert a == engine(tiny, 8)(prompts, spec)
    assert all(len(samples) == 3 for samples in a)
    assert any(len(set(samples)) > 1 for samples in a)
    assert engine(tiny, 8)(prompts, GenerationSpec(max_new_tokens=12, temperature=1.0, n=3,
                                                   seed=8)) != a
    # Each (prompt, sample) has its own random stream: the same draw alone or in a batch.
    assert engine(tiny, 1)(prompts[:1], spec) == a[:1]


def test_top_p_keeps_the_smallest_head() -> None:
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]], dtype=torch.float64)
    kept = _filter_top_p(probs.clone(), 0.7)
    assert kept.tolist() == [[0.5, 0.3, 0.0, 0.0]]
    assert _filter_top_p(probs.clone(), 0.1).tolist() == [[0.5, 0.0, 0.0, 0.0]]


def test_prompts_render_with_the_training_template(tiny_dir: Path, tiny, tmp_path: Path) -> None:
    _, tokenizer = tiny
    messages = [Message("user", "What is 2+2?")]
    own = PromptRenderer.for_model(tiny_dir, tokenizer)
    assert own.render(messages).endswith("USER: What is 2+2? ASSISTANT:")
    assert own.render("raw text") == "raw text"
    assert own.stops_for([messages]) == ["</s>"] and own.stops_for(["raw"]) == []
    model_dir = tmp_path / "stage"
    model_dir.mkdir()
    (model_dir / "stage_config.json").write_text(json.dumps({"settings": {"template": {
        "name": "plain", "user": "### Q: {content}\n", "assistant": "### A: {content}{eos}\n"}}}))
    recorded = PromptRenderer.for_model(model_dir, tokenizer)
    assert recorded.render(messages).startswith("### Q: What is 2+2?\n")


def test_load_generator_rejects_a_folder_without_a_model(tmp_path: Path) -> None:
    with pytest.raises(SftmixError, match=r"no config\.json"):
        load_generator(tmp_path)


def test_load_generator_on_a_saved_model(tiny_dir: Path, tiny, prompts) -> None:
    generate = load_generator(tiny_dir, backend="hf", progress=False)
    spec = GenerationSpec(max_new_tokens=8)
    assert generate(prompts[:3], spec) == engine(tiny, 4)(prompts[:3], spec)


@pytest.mark.real_model
@pytest.mark.slow
def test_smollm2_engine_equals_transformers_one_at_a_time(
        shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = smollm2_dir(tmp_path_factory)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(path)
    qs = gsm8k_questions(shared_data, 6)
    prompts = [[Message("user", q)] for q in qs]
    spec = GenerationSpec(max_new_tokens=40)
    renderer = PromptRenderer(tokenizer)
    expected = []
    for p in prompts:
        ids = torch.tensor([renderer.encode(renderer.render(p))])
        out = model.generate(input_ids=ids, do_sample=False, max_new_tokens=40,
                             pad_token_id=tokenizer.pad_token_id)
        expected.append([tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)])
    # Continuous batching (four slots for six prompts), then prompt-lookup drafts at every step.
    assert HFGenerator(model, tokenizer, batch_size=4, progress=False)(prompts, spec) == expected
    drafting = HFGenerator(model, tokenizer, batch_size=3, progress=False, fixed_cost=1e6,
                           draft_tokens=4)
    assert drafting(prompts, spec) == expected
    # Drafts were both kept and rejected (rejections leave holes in the cache).
    assert 0 < drafting.stats["accepted"] < drafting.stats["drafted"]
    assert all(out[0].strip() for out in expected)
