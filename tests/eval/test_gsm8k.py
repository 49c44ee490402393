"""GSM8K task: zero-shot chat and 5-shot raw prompts on the real test set, scoring both ways."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import sftmix.eval.tasks.gsm8k  # noqa: F401  (registers the task)
from sftmix.data.records import Message
from sftmix.errors import ConfigError, DataError
from sftmix.eval.base import TASKS, GenerationSpec
from sftmix.eval.tasks.gsm8k import GSM8KTask, read_gsm8k


@pytest.fixture(scope="module")
def test_path(shared_data: Path) -> Path:
    return shared_data / "gsm8k" / "test.jsonl"


def test_chat_items_are_user_messages_with_references(test_path: Path) -> None:
    task = TASKS.get("gsm8k")(path=test_path)
    items = task.items(limit=20)
    assert len(items) == 20
    assert items[0].id == "gsm8k/0"
    assert items[0].prompt == [Message("user", items[0].metadata["question"])]
    assert items[0].reference == "18"  # Janet's ducks
    assert task.generation().stop == ()
    assert task.primary_metric == "exact_match_flexible"
    assert len(task.items()) == 1319


def test_fewshot_prompt_is_lm_eval_style(test_path: Path) -> None:
    task = GSM8KTask(test_path, mode="fewshot")
    prompt = task.items(limit=1)[0].prompt
    assert isinstance(prompt, str)
    assert prompt.count("Question: ") == 6 and prompt.count("\n#### ") == 5
    assert prompt.endswith("How much in dollars does she make every day at the farmers' market?"
                           "\nAnswer:")
    assert "\n\n" in task.generation().stop and "Question:" in task.generation().stop
    assert task.primary_metric == "exact_match_strict"
    # Shots come from the training set, are fixed by the seed and differ with it.
    train_questions = {r["question"] for r in read_gsm8k(test_path.with_name("train.jsonl"))}
    assert all(s["question"] in train_questions for s in task.shots())
    assert GSM8KTask(test_path, mode="fewshot").items(limit=1)[0].prompt == prompt
    assert GSM8KTask(test_path, mode="fewshot", fewshot_seed=7).items(limit=1)[0].prompt != prompt


def test_scores_strict_and_flexible(test_path: Path) -> None:
    task = GSM8KTask(test_path)
    items = task.items(limit=3)
    refs = [it.reference for it in items]
    completions = [
        [f"She sells 16 - 3 - 4 = 9 eggs a day for $2 each.\n#### {refs[0]}"],
        [f"So it takes {refs[1]} bolts in total."],
        ["The answer is 7."],
    ]
    results = task.score(items, completions)
    assert [r.metrics["exact_match_strict"] for r in results] == [1.0, 0.0, 0.0]
    assert [r.metrics["exact_match_flexible"] for r in results] == [1.0, 1.0, 0.0]
    assert results[1].extracted == [{"strict": None, "flexible": refs[1]}]
    assert "expected" in results[2].reason
    json.dumps([r.to_dict() for r in results])  # per-item rows are JSON-ready


def test_evaluate_through_a_generate_function(test_path: Path) -> None:
    task = GSM8KTask(test_path, mode="fewshot")
    seen: list[GenerationSpec] = []

    def generate(prompts, spec):
        seen.append(spec)
        return [[" 2 + 2 = 4\n#### 4"] for _ in prompts]

    results = task.evaluate(generate, limit=5)
    assert len(results) == 5 and seen[0].stop == task.generation().stop
    assert all(r.metrics["exact_match_strict"] == float(r.metadata["reference"] == "4")
               for r in results)


def test_several_samples_give_a_fraction(test_path: Path) -> None:
    task = GSM8KTask(test_path)
    item = task.items(limit=1)[0]
    result = task.score([item], [["#### 18", "#### 17", "it is 18", "no idea"]])[0]
    assert result.metrics == {"exact_match_flexible": 0.5, "exact_match_strict": 0.25}


def test_bad_inputs_are_user_errors(tmp_path: Path, test_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs 'path'"):
        GSM8KTask()
    with pytest.raises(ConfigError, match="mode"):
        GSM8KTask(test_path, mode="zero")
    with pytest.raises(ConfigError, match="accepted: path, mode"):
        TASKS.get("gsm8k")(path=test_path, shots=3)
    bad = tmp_path / "test.jsonl"
    bad.write_text('{"question": "q", "answer": "#### 1"}\n{"question": "q", "answer": "12"}\n')
    with pytest.raises(DataError, match=r"line 2, field 'answer'"):
        GSM8KTask(bad).items()
    bad.write_text("{not json\n")
    with pytest.raises(DataError, match="line 1"):
        read_gsm8k(bad)
    with pytest.raises(DataError, match="does not exist"):
        GSM8KTask(tmp_path / "missing.jsonl").items()
    good = tmp_path / "only.jsonl"
    good.write_text('{"question": "q", "answer": "#### 1"}\n')
    with pytest.raises(DataError, match=r"train\.jsonl does not exist"):
        GSM8KTask(good, mode="fewshot").items()
