"""Chat templates: the model's own (prefix rendering), a user template, and get_template."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from sftmix.config import StrictModel, load_config
from sftmix.data.records import Message
from sftmix.errors import ConfigError, SftmixError
from sftmix.templates import (
    ModelChatTemplate,
    UserTemplate,
    UserTemplateSpec,
    VicunaTemplate,
    get_template,
    render,
    template_names,
)
from tests.train.helpers import sharegpt_examples, smollm2_tokenizer

CONVERSATION = (
    Message("user", "What is 2+2?"),
    Message("assistant", "It is 4."),
    Message("user", "And 3+3?"),
    Message("assistant", "6, of course."),
)


@pytest.fixture(scope="module")
def tokenizer():
    return smollm2_tokenizer()


def trainable_texts(segments: list[tuple[str, bool]]) -> list[str]:
    return [text for text, trainable in segments if trainable]


def test_vicuna_takes_the_tokenizers_eos(tokenizer) -> None:
    template = get_template("vicuna_v1.1", tokenizer)
    assert isinstance(template, VicunaTemplate)
    assert template.eos == "<|im_end|>"
    assert trainable_texts(template.segments(CONVERSATION)) == [" It is 4.<|im_end|>",
                                                                 " 6, of course.<|im_end|>"]


def test_model_template_matches_apply_chat_template(tokenizer) -> None:
    template = get_template("model", tokenizer)
    assert isinstance(template, ModelChatTemplate)
    expected = tokenizer.apply_chat_template([m.to_dict() for m in CONVERSATION], tokenize=False)
    assert render(template, CONVERSATION) == expected
    # Trainable: each reply and its end-of-turn token; the newline after it is not.
    assert trainable_texts(template.segments(CONVERSATION)) == ["It is 4.<|im_end|>",
                                                                 "6, of course.<|im_end|>"]
    prompt = template.render_prompt(CONVERSATION[:3])
    assert prompt.endswith("<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n")
    assert template.stop_strings == ["<|im_end|>"]


def test_model_template_on_real_multi_turn(tokenizer, shared_data: Path) -> None:
    template = get_template("model", tokenizer)
    for example in sharegpt_examples(shared_data, 5):
        segments = template.segments(example.messages)
        assert render(template, example.messages) == tokenizer.apply_chat_template(
            [m.to_dict() for m in example.messages], tokenize=False)
        replies = [m.content + "<|im_end|>" for m in example.messages if m.role == "assistant"]
        assert trainable_texts(segments) == replies


def test_model_template_that_is_not_prefix_stable_is_refused(tokenizer) -> None:
    # Like reasoning templates that drop earlier turns: only the last reply is rendered.
    unstable = copy.deepcopy(tokenizer)
    unstable.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'user' or loop.last %}"
        "{{ m['role'] + ': ' + m['content'] + '\n' }}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}"
    )
    with pytest.raises(SftmixError, match="not prefix-stable"):
        get_template("model", unstable).segments(CONVERSATION)


def test_model_template_needs_a_chat_template(tokenizer) -> None:
    bare = copy.deepcopy(tokenizer)
    bare.chat_template = None
    with pytest.raises(ConfigError, match="has no chat template"):
        get_template("model", bare)


def test_unknown_template_lists_the_available_ones(tokenizer) -> None:
    with pytest.raises(ConfigError, match=r"available: model, vicuna_v1\.1"):
        get_template("alpaca", tokenizer)
    assert template_names() == ["model", "vicuna_v1.1"]


def test_user_template(tokenizer) -> None:
    template = get_template({"user": "### Instruction:\n{content}\n\n",
                             "assistant": "### Response:\n{content}{eos}\n\n",
                             "default_system": "Be brief."}, tokenizer)
    assert isinstance(template, UserTemplate)
    segments = template.segments(CONVERSATION)
    assert "".join(t for t, _ in segments) == (
        "Be brief.\n\n### Instruction:\nWhat is 2+2?\n\n### Response:\nIt is 4.<|im_end|>\n\n"
        "### Instruction:\nAnd 3+3?\n\n### Response:\n6, of course.<|im_end|>\n\n")
    assert trainable_texts(segments) == ["It is 4.<|im_end|>", "6, of course.<|im_end|>"]
    assert template.render_prompt(CONVERSATION[:1]).endswith("What is 2+2?\n\n### Response:\n")
    assert template.stop_strings == ["<|im_end|>", "### Instruction:"]


def test_user_template_own_eos_and_literal_braces() -> None:
    spec = UserTemplateSpec(user="[U] {content} {{json}}\n", assistant="[A] {content}{eos}\n",
                            eos="<END>")
    template = get_template(spec)
    assert render(template, CONVERSATION[:2]) == "[U] What is 2+2? {json}\n[A] It is 4.<END>\n"


class _Holder(StrictModel):
    template: UserTemplateSpec


@pytest.mark.parametrize(("assistant", "message"), [
    ("### Response:\n{content}\n", r"found \{eos\} 0 times"),
    ("{eos}{content}", "must come after"),
    ("{content}{eos}{who}", r"placeholder\(s\) \{who\}"),
])
def test_user_template_errors_name_file_and_field(tmp_path: Path, assistant: str,
                                                  message: str) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("template:\n  user: 'Q: {content}'\n  assistant: " + repr(assistant) + "\n")
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path, _Holder)
    assert "train.yaml" in str(info.value) and "template" in str(info.value)


def test_user_template_given_as_a_mapping_is_validated(tokenizer) -> None:
    with pytest.raises(ConfigError, match=r"template\.assistant") as info:
        get_template({"user": "{content}", "assistant": "{content}"}, tokenizer)
    assert "{eos}" in str(info.value)
