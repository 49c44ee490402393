"""Every reader on the real shared files, and every malformed fixture with its own error."""

from __future__ import annotations

from pathlib import Path

import pytest

from sftmix.data.formats import READERS, gsm8k_reference, last_boxed
from sftmix.data.sources import load_source
from sftmix.data.spec import SourceSpec
from sftmix.errors import DataError

FIXTURES = Path(__file__).parent / "fixtures"

# (file under shared data, format, records expected, ability expected, records skipped)
REAL = [
    ("gsm8k/train.jsonl", "gsm8k", 7473, "maths", 0),
    ("gsm8k/test.jsonl", "gsm8k", 1319, "maths", 0),
    ("math/test.jsonl", "math", 5000, "maths", 0),
    ("code/code_alpaca_2k.json", "alpaca", 2015, "general", 2),
    ("code/gpteacher_codegen.json", "alpaca", 4535, "general", 0),
    ("general/alpaca_en_demo.json", "alpaca", 999, "general", 0),
    ("general/gpteacher_roleplay.json", "alpaca", 1923, "general", 0),
    ("general/sharegpt_dpo_chosen.json", "sharegpt", 300, "general", 0),
    ("general/fastchat_identity_sharegpt.json", "sharegpt", 500, "general", 0),
    ("general/messages_kto_positive.jsonl", "messages", 150, "general", 0),
    ("eval/humaneval/HumanEval.jsonl", "humaneval", 164, "code", 0),
    ("eval/mbpp/mbpp.jsonl", "mbpp", 974, "code", 0),
    ("eval/mbpp/mbpp_test_prompts.jsonl", "mbpp", 500, "code", 0),
    ("eval/ifeval/input_data.jsonl", "ifeval", 541, "general", 0),
]


@pytest.mark.parametrize(("rel", "fmt", "count", "ability", "skipped"), REAL, ids=[r[0] for r in REAL])
def test_reader_on_real_file(shared_data: Path, rel: str, fmt: str, count: int, ability: str,
                             skipped: int) -> None:
    loaded = load_source(SourceSpec(name="s", path=str(shared_data / rel), format=fmt, on_error="skip"))
    assert len(loaded.examples) == count
    assert loaded.skipped == skipped
    assert {ex.ability for ex in loaded.examples} == {ability}
    assert len({ex.id for ex in loaded.examples}) == count  # ids are unique within a source
    for ex in loaded.examples:
        assert ex.messages[0].role in ("system", "user")
        if READERS.get(fmt).training:
            assert ex.messages[-1].role == "assistant"


def test_gsm8k_keeps_reference_answer(shared_data: Path) -> None:
    ex = load_source(SourceSpec(name="gsm8k", path=str(shared_data / "gsm8k/train.jsonl"),
                                format="gsm8k")).examples[0]
    assert ex.id == "gsm8k:0"
    assert ex.messages[0].content.startswith("Natalia sold clips")
    assert ex.metadata == {"reference": "72", "index": 0}
    assert gsm8k_reference("so\n#### 1,234") == "1234"


def test_math_reference_is_last_boxed(shared_data: Path) -> None:
    ex = load_source(SourceSpec(name="m", path=str(shared_data / "math/test.jsonl"),
                                format="math")).examples[0]
    assert ex.metadata["reference"] == "2"
    assert ex.metadata["type"] == "Algebra"
    assert last_boxed(r"so \boxed{\frac{1}{2}} and then \boxed{x^{2}}") == "x^{2}"
    assert last_boxed("no box") is None


def test_gsm8k_rft_groups_solutions_by_question(tmp_path: Path, shared_data: Path) -> None:
    lines = (shared_data / "gsm8k/train.jsonl").read_text().splitlines()[:3]
    # Question 0 with three solutions, question 1 with two -- the RFT shape.
    path = tmp_path / "rft.jsonl"
    path.write_text("\n".join([lines[0], lines[1], lines[0], lines[0], lines[1]]) + "\n")
    examples = load_source(SourceSpec(name="rft", path=str(path), format="gsm8k_rft")).examples
    assert [ex.id for ex in examples] == ["rft:0-0", "rft:1-0", "rft:0-1", "rft:0-2", "rft:1-1"]
    assert [ex.metadata["group"] for ex in examples] == [0, 1, 0, 0, 1]
    assert examples[2].ability == "maths"


def test_eval_readers_keep_what_evaluation_needs(shared_data: Path) -> None:
    he = load_source(SourceSpec(name="he", path=str(shared_data / "eval/humaneval/HumanEval.jsonl"),
                                format="humaneval")).examples[0]
    assert he.id == "he:HumanEval/0"
    assert he.metadata["entry_point"] == "has_close_elements"
    assert "def check(candidate)" in he.metadata["test"]
    mbpp = load_source(SourceSpec(name="mbpp", path=str(shared_data / "eval/mbpp/mbpp.jsonl"),
                                  format="mbpp")).examples
    assert mbpp[0].id == "mbpp:1"
    assert mbpp[0].metadata["test_list"][0].startswith("assert min_cost(")
    ife = load_source(SourceSpec(name="ifeval", path=str(shared_data / "eval/ifeval/input_data.jsonl"),
                                 format="ifeval")).examples[0]
    assert ife.metadata["instruction_id_list"][0] == "punctuation:no_comma"
    assert [m.role for m in ife.messages] == ["user"]


def test_sharegpt_system_turn_and_alpaca_response_field(shared_data: Path) -> None:
    examples = load_source(SourceSpec(name="g", path=str(shared_data / "general/sharegpt_dpo_chosen.json"),
                                      format="sharegpt")).examples
    with_system = [ex for ex in examples if ex.messages[0].role == "system"]
    assert len(with_system) == 80
    assert max(len(ex.messages) for ex in examples) > 2
    code = load_source(SourceSpec(name="c", path=str(shared_data / "code/gpteacher_codegen.json"),
                                  format="alpaca", ability="code")).examples[0]
    assert code.ability == "code"
    assert code.messages[0].content == ("Write a C++ program that calculates the area of a rectangle, "
                                        "given its width and height.\n\nwidth: 5, height: 8")
    assert code.messages[1].content.startswith("#include <iostream>")


MALFORMED = [
    ("bad_json.jsonl", "gsm8k", r"bad_json.jsonl, line 2: not valid JSON"),
    ("missing_field.jsonl", "gsm8k", r"missing_field.jsonl, line 3, field 'answer': required field is missing"),
    ("empty_content.json", "sharegpt",
     r"empty_content.json, record 1, field 'conversations\[1\].value': expected non-empty text"),
    ("non_string_content.jsonl", "messages",
     r"non_string_content.jsonl, line 1, field 'messages\[1\].content': expected a string, found a number"),
    ("unknown_role.json", "sharegpt",
     r"unknown_role.json, record 2, field 'conversations\[1\].from': unknown role 'bot'"),
    ("non_alternating.jsonl", "messages",
     r"non_alternating.jsonl, line 2, field 'messages\[1\]': turns must alternate user/assistant .*"
     r"expected 'assistant' at position 1, found 'user'"),
    ("not_ending_assistant.json", "sharegpt",
     r"not_ending_assistant.json, record 0, field 'conversations': the conversation must end with an "
     r"assistant turn, it ends with 'user'"),
    ("wrong_type.json", "alpaca", r"wrong_type.json, record 1, field 'instruction': expected a string, found a list"),
]


@pytest.mark.parametrize(("name", "fmt", "message"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_fixture_gives_its_own_error(name: str, fmt: str, message: str) -> None:
    spec = SourceSpec(name="f", path=str(FIXTURES / name), format=fmt)
    with pytest.raises(DataError, match=message):
        load_source(spec)


@pytest.mark.parametrize(("name", "fmt", "message"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_fixture_skipped_and_reported(name: str, fmt: str, message: str) -> None:
    loaded = load_source(SourceSpec(name="f", path=str(FIXTURES / name), format=fmt, on_error="skip"))
    report = loaded.report()
    assert report["skipped"]["count"] == 1
    assert len(loaded.examples) == report["records_read"] - 1
    assert name in report["skipped"]["first_reasons"][0]


def test_unknown_format_lists_available() -> None:
    with pytest.raises(Exception, match="unknown data format 'sharegtp'; available: alpaca, gsm8k"):
        READERS.get("sharegtp")
