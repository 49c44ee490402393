"""The ifeval task on IFEval's own input_data.jsonl: loading, strict and loose scoring, metrics."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

import sftmix.eval.tasks.ifeval.task  # noqa: F401  (registers the task)
from sftmix.errors import ConfigError, DataError
from sftmix.eval.base import TASKS
from sftmix.eval.stats import summarise
from sftmix.eval.tasks.ifeval.checkers import CHECKERS
from sftmix.eval.tasks.ifeval.task import (
    IFEvalTask,
    read_ifeval,
    response_variants,
    unsupported_instructions,
)


@pytest.fixture(scope="module")
def ifeval_path(shared_data: Path) -> Path:
    return shared_data / "eval" / "ifeval" / "input_data.jsonl"


@pytest.fixture(scope="module")
def task(ifeval_path: Path) -> IFEvalTask:
    return TASKS.get("ifeval")(path=ifeval_path)


def by_key(task: IFEvalTask, key: int):
    return next(it for it in task.items() if it.id == f"ifeval/{key}")


def test_every_instruction_in_ifeval_is_supported(task: IFEvalTask, ifeval_path: Path) -> None:
    records = read_ifeval(ifeval_path)
    used = Counter(i for r in records for i in r["instruction_id_list"])
    assert len(records) == 541 and len(used) >= 25
    assert unsupported_instructions(records) == Counter()
    assert set(used) <= set(CHECKERS.names())
    items = task.items()
    assert len(items) == 541 and all(it.metadata["skipped"] == [] for it in items)
    json.dumps([it.reference for it in items])  # references are plain data


def test_strict_and_loose_on_real_prompts(task: IFEvalTask) -> None:
    no_comma = by_key(task, 1001)  # a Shakespearean itinerary without commas
    end = by_key(task, 1128)  # must end with "Is there anything else I can help with?"
    json_item = by_key(task, 1094)  # five famous moms in JSON
    completions = [
        ["Sure, here is thy itinerary:\nOn the morrow we sail to Tokyo\nThence to Kyoto"],
        ["The sentence is clear enough.\n**Is there anything else I can help with?**"],
        ['```json\n{"moms": ["Marie Curie", "Michelle Obama"]}\n```'],
    ]
    r_comma, r_end, r_json = task.score([no_comma, end, json_item], completions)
    # The preamble line has the comma: strict fails, loose (first line dropped) passes.
    assert r_comma.metrics == {"prompt_level_strict": 0.0, "inst_level_strict": 0.0,
                               "prompt_level_loose": 1.0, "inst_level_loose": 1.0}
    # Markdown bold around the end phrase: loose removes the asterisks.
    assert r_end.metrics["prompt_level_strict"] == 0.0 and r_end.metrics["prompt_level_loose"] == 1.0
    assert r_json.metrics["prompt_level_strict"] == 1.0
    assert r_end.reason == "not followed: startend:end_checker"
    assert task.score([end], [[""]])[0].metrics["prompt_level_loose"] == 0.0


def test_instruction_level_is_a_micro_average(task: IFEvalTask) -> None:
    items = task.items(limit=2)  # 3 instructions, then 1
    assert [len(it.reference) for it in items] == [3, 1]
    results = task.score(items, [["hello there"], ["Thou shalt travel to Kyoto."]])
    assert results[0].metrics["inst_level_strict"] == pytest.approx(1 / 3)
    assert results[1].metrics["inst_level_strict"] == 1.0
    summary = summarise(results, task.metrics)
    assert summary["inst_level_strict"]["mean"] == pytest.approx(2 / 4)  # not (1/3 + 1) / 2
    assert summary["prompt_level_strict"]["mean"] == 0.5


def test_response_variants() -> None:
    variants = response_variants("Sure!\n*Body* text\nHope it helps")
    assert variants[:4] == ["Sure!\n*Body* text\nHope it helps", "*Body* text\nHope it helps",
                            "Sure!\n*Body* text", "*Body* text"]
    assert variants[4:] == [v.replace("*", "") for v in variants[:4]]


def test_unsupported_ids_are_reported_or_skipped(tmp_path: Path) -> None:
    path = tmp_path / "input_data.jsonl"
    rows = [{"key": 1, "prompt": "Write a poem. No commas. Use a rhyme scheme.",
             "instruction_id_list": ["punctuation:no_comma", "poetry:rhyme_scheme"],
             "kwargs": [{}, {"scheme": "ABAB"}]},
            {"key": 2, "prompt": "Rhyme.", "instruction_id_list": ["poetry:rhyme_scheme"],
             "kwargs": [{"scheme": "AABB"}]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match=r"poetry:rhyme_scheme \(2x\).*skip_unsupported"):
        IFEvalTask(path).items()
    task = IFEvalTask(path, skip_unsupported=True)
    items = task.items()
    assert items[0].metadata["skipped"] == ["poetry:rhyme_scheme"]
    first, second = task.score(items, [["A poem, with commas"], ["anything"]])
    assert first.metrics["prompt_level_strict"] == 0.0
    assert second.metrics["prompt_level_strict"] == 1.0  # nothing left to check


def test_bad_files_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs 'path'"):
        IFEvalTask()
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"key": 1, "prompt": "p", "instruction_id_list": ["a", "b"],
                                "kwargs": [{}]}) + "\n")
    with pytest.raises(DataError, match="same length"):
        IFEvalTask(path).items()
    path.write_text(json.dumps({"key": 1, "prompt": "p",
                                "instruction_id_list": ["length_constraints:number_words"],
                                "kwargs": [{"num_words": 3, "relation": "around"}]}) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl, line 1: .*relation 'around'"):
        IFEvalTask(path).items()
