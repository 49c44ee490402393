"""MT-Bench on FastChat's real files, graded by a real loopback judge."""

from __future__ import annotations

import math
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from sftmix.data.records import Message
from sftmix.errors import DataError
from sftmix.eval.base import TASKS, GenerationSpec
from sftmix.eval.stats import summarise
from sftmix.eval.tasks.mtbench import DEFAULT_PROMPTS, MTBenchTask, parse_rating
from tests.eval.fake_openai import FakeOpenAI


@pytest.fixture(scope="module")
def mt_dir(shared_data: Path) -> Path:
    return shared_data / "eval" / "mt_bench"


def task(mt_dir: Path, srv: FakeOpenAI, tmp_path: Path, concurrency: int = 4,
         **kw) -> MTBenchTask:
    judge = {"base_url": srv.url, "model": "fake-judge", "api_key": "k", "concurrency": concurrency,
             "cache_path": tmp_path / "judge.sqlite", "backoff_base_s": 0.01}
    return MTBenchTask(mt_dir, judge=judge, **kw)


class ScriptedModel:
    """A generate function that answers by rule and records what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[list, GenerationSpec]] = []

    def __call__(self, prompts: Sequence[list[Message] | str], spec: GenerationSpec) -> list[list[str]]:
        self.calls.append((list(prompts), spec))
        return [[f"answer to turn {len(p) // 2 + 1} of: {p[-1].content[:30]}"] for p in prompts]


def test_parse_rating() -> None:
    assert parse_rating("Good. Rating: [[8]]") == 8.0
    assert parse_rating("Rating: [[6.5]]") == 6.5
    assert parse_rating("I would give it [7].") == 7.0  # fallback form
    assert parse_rating('Format is "[[rating]]"; here: [[3]]') == 3.0
    assert parse_rating("The format [[5]] was asked; my verdict: [[9]]") == 9.0
    assert parse_rating("No number here") is None
    assert parse_rating("Rating: [[0]]") is None and parse_rating("[[11]]") is None


def test_items_from_the_real_files(mt_dir: Path) -> None:
    items = MTBenchTask(mt_dir, judge={"cache_path": None}).items()
    assert len(items) == 80
    cats = [it.metadata["category"] for it in items]
    assert {c: cats.count(c) for c in set(cats)} == {c: 10 for c in set(cats)} and len(set(cats)) == 8
    for it in items:
        assert len(it.metadata["turns"]) == 2 and it.prompt[0].content == it.metadata["turns"][0]
        if it.metadata["category"] in ("math", "reasoning", "coding"):
            assert len(it.reference) == 2 and all(it.reference)
    assert TASKS.get("mtbench")(path=mt_dir, judge={"cache_path": None}).name == "mtbench"


def test_two_turns_with_category_temperatures(mt_dir: Path, tmp_path: Path) -> None:
    model = ScriptedModel()
    with FakeOpenAI(lambda req: "Rating: [[6]]") as srv:
        results = task(mt_dir, srv, tmp_path, repetitions=1).evaluate(model, limit=80)
    temps = sorted({spec.temperature for _, spec in model.calls})
    assert temps == [0.0, 0.1, 0.7]
    assert all(spec.n == 1 for _, spec in model.calls)
    turn2 = [p for prompts, _ in model.calls for p in prompts if len(p) == 3]
    assert len(turn2) == 80
    first = next(p for p in turn2 if p[0].content.startswith("Compose an engaging travel blog"))
    assert first[1].role == "assistant" and first[1].content.startswith("answer to turn 1 of: Compose")
    assert first[2].content.startswith("Rewrite your previous response")
    writing = [spec.temperature for prompts, spec in model.calls
               if any(p[0].content.startswith("Compose an engaging") for p in prompts)]
    assert writing == [0.7, 0.7]
    assert len(results) == 80 and all(r.metrics["score"] == 6.0 for r in results)


def test_judge_prompts_references_and_scores(mt_dir: Path, tmp_path: Path) -> None:
    def responder(req: dict) -> str:
        user = req["messages"][-1]["content"]
        return "Fine. [9]" if "### User:" in user else "Fine. Rating: [[8]]"

    with FakeOpenAI(responder) as srv:
        t = task(mt_dir, srv, tmp_path, repetitions=1, concurrency=1)
        items = t.items()
        math_item = next(i for i in items if i.metadata["category"] == "math")
        writing_item = items[0]
        results = t.score([writing_item, math_item], [["w1", "w2"], ["m1", "m2"]])
    systems = [r["messages"][0]["content"] for r in srv.requests]
    users = [r["messages"][1]["content"] for r in srv.requests]
    assert systems[0] == "You are a helpful assistant."  # FastChat's single-v1, read from the file
    assert "[The Start of Assistant's Answer]\nw1\n" in users[0]
    assert "w2" in users[1] and "w1" in users[1]  # turn 2 is judged with turn 1 in view
    assert math_item.reference[0] in users[2] and "Reference Answer" in users[2]
    assert math_item.reference[1] in users[3] and "m2" in users[3]
    for r in results:
        assert r.metrics["score_turn1"] == 8.0 and r.metrics["score_turn2"] == 9.0
        assert r.metrics["score"] == 8.5
    assert results[1].metrics["score_math"] == 8.5 and "score_writing" not in results[1].metrics


def test_repetitions_average_and_unparseable_is_missing(mt_dir: Path, tmp_path: Path) -> None:
    counter = {"n": 0}

    def responder(req: dict) -> str:
        counter["n"] += 1
        user = req["messages"][-1]["content"]
        if "UNRATED" in user:
            return "I decline to rate this."
        return f"Rating: [[{4 + counter['n'] % 3}]]"  # 3 repetitions give 4, 5 and 6

    with FakeOpenAI(responder) as srv:
        # One request at a time, so the responder's counter follows the request order.
        t = task(mt_dir, srv, tmp_path, repetitions=3, concurrency=1)
        items = t.items(limit=3)
        results = t.score(items, [["a", "b"], ["UNRATED", "UNRATED too"], ["c", "UNRATED"]])
    assert len(srv.requests) == 3 * 2 * 3
    assert results[0].metrics["score"] == pytest.approx(5.0)
    assert sorted(results[0].extracted[0]) == [4.0, 5.0, 6.0]
    assert results[1].metrics == {} and results[1].verdicts == [None, None]
    assert "6 judgement(s) missing" in results[1].reason
    assert results[2].metrics == {"score": 5.0, "score_turn1": 5.0, "score_writing": 5.0}
    summary = summarise(results, t.metrics)
    # Missing judgements are left out, never counted as 0; the mean is over graded turns.
    assert summary["score"]["mean"] == pytest.approx(5.0) and summary["score"]["n"] == 2
    assert summary["score_turn2"]["n"] == 1
    assert math.isfinite(summary["score"]["ci_low"])


def test_rerun_uses_the_judge_cache(mt_dir: Path, tmp_path: Path) -> None:
    model = ScriptedModel()
    with FakeOpenAI(lambda req: "[[7]]") as srv:
        t = task(mt_dir, srv, tmp_path, repetitions=2)
        first = t.evaluate(model, limit=4)
        sent = len(srv.requests)
        again = task(mt_dir, srv, tmp_path, repetitions=2).evaluate(model, limit=4)
    assert sent == 4 * 2 * 2 and len(srv.requests) == sent
    assert [r.metrics for r in again] == [r.metrics for r in first]


def test_builtin_prompts_when_no_judge_file(mt_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "mt"
    data.mkdir()
    for name in ("question.jsonl", "reference_answer_gpt-4.jsonl"):
        shutil.copy(mt_dir / name, data / name)
    with FakeOpenAI(lambda req: "[[5]]") as srv:
        t = task(data, srv, tmp_path, repetitions=1)
        items = t.items(limit=1)
        t.score(items, [["x", "y"]])
    # The two turns are judged concurrently: compare as a set, not by arrival order.
    sent = sorted(r["messages"][0]["content"] for r in srv.requests)
    assert sent == sorted(DEFAULT_PROMPTS[name].system_prompt
                          for name in ("single-v1", "single-v1-multi-turn"))
    for prompt in DEFAULT_PROMPTS.values():
        assert "[[rating]]" in prompt.system_prompt + prompt.prompt_template


def test_bad_question_file_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "question.jsonl"
    bad.write_text('{"question_id": 1, "category": "writing", "turns": ["a", "b"]}\n'
                   '{"question_id": 2, "category": "writing", "turns": ["only one"]}\n')
    with pytest.raises(DataError, match=re.escape(f"{bad}, line 2") + ".*two strings"):
        MTBenchTask(tmp_path, judge={"cache_path": None}).items()
