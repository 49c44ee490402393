"""MATH task on the real test set: references, prompts, boxed and fallback scoring."""

from __future__ import annotations

from pathlib import Path

import pytest

import sftmix.eval.tasks.math_task  # noqa: F401  (registers the task)
from sftmix.answers.extract import math_equiv
from sftmix.errors import ConfigError, DataError
from sftmix.eval.base import TASKS
from sftmix.eval.tasks.math_task import DEFAULT_INSTRUCTION, MathTask, extract_answer, read_math


@pytest.fixture(scope="module")
def test_path(shared_data: Path) -> Path:
    return shared_data / "math" / "test.jsonl"


def test_every_reference_is_extracted_and_equal_to_itself(test_path: Path) -> None:
    records = read_math(test_path)
    assert len(records) == 5000
    assert records[1]["reference"] == "\\frac{1}{2}"
    assert all(math_equiv(r["reference"], r["reference"]) for r in records)


def test_chat_prompt_asks_for_a_box(test_path: Path) -> None:
    task = TASKS.get("math")(path=test_path)
    item = task.items(limit=2)[1]
    assert item.id == "math/test/algebra/2.json"
    assert item.prompt[0].role == "user"
    assert item.prompt[0].content.endswith(DEFAULT_INSTRUCTION)
    assert item.metadata == {"level": "Level 5", "type": "Algebra"}


def test_fewshot_prompt_uses_training_solutions(test_path: Path) -> None:
    task = MathTask(test_path, mode="fewshot", num_fewshot=2)
    prompt = task.items(limit=1)[0].prompt
    assert isinstance(prompt, str)
    assert prompt.count("Problem:\n") == 3 and prompt.endswith("Solution:\n")
    assert prompt.count("\\boxed") >= 2
    assert "Problem:" in task.generation().stop


def test_subject_and_level_filters(test_path: Path) -> None:
    items = MathTask(test_path, subjects=["geometry"], levels=[1]).items()
    assert items and all(it.metadata == {"level": "Level 1", "type": "Geometry"} for it in items)
    with pytest.raises(ConfigError, match="no MATH problem"):
        MathTask(test_path, subjects=["Alchemy"]).items()


def test_scoring_boxed_and_unboxed_completions(test_path: Path) -> None:
    task = MathTask(test_path)
    items = task.items(limit=2)  # references: 2 and \frac{1}{2}
    completions = [
        ["The denominator factors as $(x-2)(x+3)$, so there are $\\boxed{2}$ asymptotes."],
        ["R - r <= 1/2, so the maximum difference is 0.5."],
    ]
    first, second = task.score(items, completions)
    assert first.metrics == {"exact_match": 1.0, "exact_match_boxed": 1.0}
    assert second.metrics == {"exact_match": 1.0, "exact_match_boxed": 0.0}
    assert second.extracted == [{"boxed": None, "answer": "0.5"}]
    wrong = task.score(items[:1], [["So the answer is $\\boxed{3}$."]])[0]
    assert wrong.metrics["exact_match"] == 0.0 and "expected '2'" in wrong.reason


def test_extract_answer_fallback_chain() -> None:
    assert extract_answer("\\boxed{\\dfrac{3}{4}} and 7") == "\\dfrac{3}{4}"
    assert extract_answer("Therefore, the final answer is $x = 4$.") == "x = 4"
    assert extract_answer("It is 12 then 13") == "13"
    assert extract_answer("I cannot tell") is None


def test_bad_files_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs 'path'"):
        MathTask()
    bad = tmp_path / "m.jsonl"
    bad.write_text('{"problem": "p", "solution": "so it is 4"}\n')
    with pytest.raises(DataError, match=r"line 1, field 'solution'.*boxed"):
        read_math(bad)
