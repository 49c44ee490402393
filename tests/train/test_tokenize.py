"""Tokenisation: exactly the assistant's tokens are labelled, under every template."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from tokenizers import processors

from sftmix.data.records import Example, Message
from sftmix.errors import SftmixError
from sftmix.templates import ChatTemplate, get_template
from sftmix.train.tokenize import (
    IGNORE_INDEX,
    TokenizedExample,
    count_tokens_fn,
    tokenize_example,
    tokenize_examples,
)
from tests.train.helpers import (
    code_alpaca_examples,
    gsm8k_examples,
    sharegpt_examples,
    smollm2_tokenizer,
)

USER_TEMPLATE = {"user": "### Instruction:\n{content}\n\n",
                 "assistant": "### Response:\n{content}{eos}\n\n"}
TEMPLATES = {"vicuna_v1.1": "vicuna_v1.1", "model": "model", "user": USER_TEMPLATE}


@pytest.fixture(scope="module")
def tokenizer():
    return smollm2_tokenizer()


def runs(tok: TokenizedExample) -> list[list[int]]:
    """The maximal runs of consecutive trainable tokens."""
    out: list[list[int]] = []
    previous = False
    for token, label in zip(tok.input_ids, tok.labels, strict=True):
        trainable = label != IGNORE_INDEX
        if trainable:
            assert label == token
            if not previous:
                out.append([])
            out[-1].append(token)
        previous = trainable
    return out


def check_exact(example: Example, tokenizer, template: ChatTemplate) -> None:
    tok = tokenize_example(example, tokenizer, template, max_length=100_000)
    assert tok is not None
    segments = template.segments(example.messages)
    text = "".join(t for t, _ in segments)
    assert tok.input_ids == tokenizer(text, add_special_tokens=False)["input_ids"]
    expected = [t for t, trainable in segments if trainable]
    assert [tokenizer.decode(run) for run in runs(tok)] == expected
    replies = [m for m in example.messages if m.role == "assistant"]
    assert len(expected) == len(replies)


@pytest.mark.parametrize("name", TEMPLATES)
def test_single_turn_labels_exactly_the_answer(name: str, tokenizer, shared_data: Path) -> None:
    template = get_template(TEMPLATES[name], tokenizer)
    for example in gsm8k_examples(shared_data, 5) + code_alpaca_examples(shared_data, 5):
        check_exact(example, tokenizer, template)
        tok = tokenize_example(example, tokenizer, template, max_length=100_000)
        assert tok is not None
        assert tokenizer.decode(runs(tok)[0]).startswith(
            (" " if name == "vicuna_v1.1" else "") + example.messages[-1].content)
        assert runs(tok)[0][-1] == tokenizer.eos_token_id


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_assistant_turn_of_a_conversation_is_labelled(name: str, tokenizer,
                                                            shared_data: Path) -> None:
    template = get_template(TEMPLATES[name], tokenizer)
    for example in sharegpt_examples(shared_data, 5):
        check_exact(example, tokenizer, template)


def test_model_template_eos_is_trained_and_the_newline_after_it_is_not(tokenizer) -> None:
    example = Example("x", "general", "t", (Message("user", "Hi"), Message("assistant", "Hello!")))
    tok = tokenize_example(example, tokenizer, get_template("model", tokenizer), 1000)
    assert tok is not None
    trained = [t for t, lab in zip(tok.input_ids, tok.labels, strict=True) if lab != IGNORE_INDEX]
    assert tokenizer.decode(trained) == "Hello!<|im_end|>"
    assert tok.input_ids[-1] == tokenizer("\n")["input_ids"][0] and tok.labels[-1] == IGNORE_INDEX
    assert tok.labels[0] == IGNORE_INDEX


def test_a_token_across_the_boundary_is_trained_and_counted(tokenizer, caplog) -> None:
    # SmolLM2's tokenizer merges the template's "\n" with a reply starting "\n  " into one token.
    example = Example("x", "general", "t", (Message("user", "Hi"), Message("assistant", "\n  Hello")))
    with caplog.at_level("WARNING", logger="sftmix.train.tokenize"):
        _, stats = tokenize_examples([example], tokenizer, get_template("model", tokenizer), 1000)
    assert stats.boundary_merges == 1
    assert "1 tokens of 1 examples straddle the boundary" in caplog.text
    tok = tokenize_example(example, tokenizer, get_template("model", tokenizer), 1000)
    assert tok is not None
    trained = [t for t, lab in zip(tok.input_ids, tok.labels, strict=True) if lab != IGNORE_INDEX]
    assert tokenizer.decode(trained) == "\n\n  Hello<|im_end|>"


def test_truncation_never_keeps_an_example_without_trainable_tokens(tokenizer,
                                                                   shared_data: Path) -> None:
    template = get_template("vicuna_v1.1", tokenizer)
    examples = gsm8k_examples(shared_data, 40) + code_alpaca_examples(shared_data, 40)
    full, _ = tokenize_examples(examples, tokenizer, template, max_length=100_000)
    prompt_lengths = [next(i for i, lab in enumerate(t.labels) if lab != IGNORE_INDEX) for t in full]
    max_length = sorted(prompt_lengths)[len(prompt_lengths) // 2]  # half the prompts do not fit
    kept, stats = tokenize_examples(examples, tokenizer, template, max_length=max_length)
    expected_dropped = sum(1 for n in prompt_lengths if n >= max_length)
    assert stats.dropped_no_trainable == expected_dropped > 0
    assert stats.examples == len(examples) and stats.kept == len(kept) == len(examples) - expected_dropped
    assert all(len(t) <= max_length and t.num_trainable > 0 for t in kept)
    assert stats.truncated == sum(1 for t in full if len(t) > max_length) - expected_dropped
    assert stats.tokens == sum(len(t) for t in kept)
    assert stats.trainable_tokens == sum(t.num_trainable for t in kept)
    assert len(stats.dropped_ids) == expected_dropped
    count = count_tokens_fn(tokenizer, template, max_length)
    for example, tok in zip(examples[:10], full[:10], strict=True):
        tokens, trainable = count(example)
        assert tokens == min(len(tok), max_length)
        assert trainable == (tokenize_example(example, tokenizer, template, max_length) or
                             TokenizedExample([], [])).num_trainable


def test_tokenize_examples_matches_one_by_one(tokenizer, shared_data: Path) -> None:
    template = get_template("model", tokenizer)
    examples = gsm8k_examples(shared_data, 6) + sharegpt_examples(shared_data, 3)
    batch, stats = tokenize_examples(examples, tokenizer, template, max_length=256)
    single = [tokenize_example(e, tokenizer, template, 256) for e in examples]
    assert batch == [t for t in single if t is not None]
    assert stats.to_dict()["kept"] == len(batch)


@pytest.mark.slow
def test_several_processes_give_the_same_result(tokenizer, shared_data: Path) -> None:
    template = get_template("vicuna_v1.1", tokenizer)
    examples = gsm8k_examples(shared_data, 600)
    one, stats_one = tokenize_examples(examples, tokenizer, template, max_length=200)
    two, stats_two = tokenize_examples(examples, tokenizer, template, max_length=200, num_proc=2)
    assert one == two and stats_one == stats_two


def test_bad_inputs_are_user_errors(tokenizer) -> None:
    template = get_template("vicuna_v1.1", tokenizer)
    bad = Example("odd:1", "general", "t", (Message("user", "a"), Message("tool", "b"),
                                            Message("assistant", "c")))
    with pytest.raises(SftmixError, match="example odd:1"):
        tokenize_example(bad, tokenizer, template, 100)
    good = Example("ok", "general", "t", (Message("user", "a"), Message("assistant", "c")))
    with pytest.raises(SftmixError, match="max_length"):
        tokenize_example(good, tokenizer, template, 1)


def test_a_tokenizer_that_adds_bos_gets_it_once(tokenizer) -> None:
    # Llama-style tokenizers prepend BOS; a template that writes it itself must not get two.
    with_bos = copy.deepcopy(tokenizer)
    with_bos.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<|im_start|> $A", special_tokens=[("<|im_start|>", tokenizer.bos_token_id)])
    example = Example("x", "general", "t", (Message("user", "Hi"), Message("assistant", "Yo")))
    vicuna = tokenize_example(example, with_bos, get_template("vicuna_v1.1", with_bos), 1000)
    plain = tokenize_example(example, tokenizer, get_template("vicuna_v1.1", tokenizer), 1000)
    assert vicuna is not None and plain is not None
    assert vicuna.input_ids == [tokenizer.bos_token_id, *plain.input_ids]
    assert vicuna.labels[1:] == plain.labels and vicuna.labels[0] == IGNORE_INDEX
    # The ChatML text already starts with <|im_start|>: nothing is added.
    model = tokenize_example(example, with_bos, get_template("model", with_bos), 1000)
    assert model == tokenize_example(example, tokenizer, get_template("model", tokenizer), 1000)
    assert model is not None and model.input_ids[1] != tokenizer.bos_token_id
