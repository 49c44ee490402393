"""IFEval verdicts equal lm-evaluation-harness's, instruction by instruction.

The response set (``fixtures/ifeval_responses.jsonl``, written by
``fixtures/make_ifeval_responses.py``) holds 600 responses in 27 languages --
Hindi, Marathi and Nepali side by side, a short Italian haiku, short English --
with numbered and bulleted lists, abbreviations and initials, each with three
of IFEval's 25 instructions whose parameters sit near what the response holds.
Each is scored by sftmix and by lm-evaluation-harness's own checkers
(``ifeval_reference.py``), strictly and loosely.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from sftmix.eval.base import EvalItem
from sftmix.eval.tasks.ifeval.checkers import CHECKERS, make_checker
from sftmix.eval.tasks.ifeval.task import follows, score_item
from tests.eval.ifeval_reference import load_reference, reference_verdicts

FIXTURE = Path(__file__).parent / "fixtures" / "ifeval_responses.jsonl"


def documented_deviation(instruction_id: str, kwargs: dict[str, Any]) -> str | None:
    """Why sftmix's verdict may differ from the reference here (docs/evaluation.md), or None."""
    if instruction_id == "keywords:letter_frequency" and not re.fullmatch(
            "[a-z]", str(kwargs.get("letter", "")).lower()):
        return "reference draws a random letter for a letter outside a-z"
    return None


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Any:
    pytest.importorskip("lm_eval", reason="lm-eval is installed by `make env` (with --no-deps)")
    return load_reference(tmp_path_factory.mktemp("nltk_data"))


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    return [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]


def test_the_response_set_covers_what_it_must(records: list[dict[str, Any]]) -> None:
    assert len(records) >= 500
    ids = {i for r in records for i in r["instruction_id_list"]}
    assert ids == set(CHECKERS.names()) and len(ids) == 25
    languages = {r["language"] for r in records}
    assert len(languages) >= 10 and {"hi", "mr", "ne", "it", "en"} <= languages
    responses = [r["response"] for r in records]
    assert any(len(t.split()) <= 8 and r["language"] == "en"
               for t, r in zip(responses, records, strict=True))
    assert any(re.search(r"^\s*1\. .*\n\s*2\. ", t, re.MULTILINE) for t in responses)
    assert any(re.search(r"^\s*[*-] .*\n\s*[*-] ", t, re.MULTILINE) for t in responses)
    assert any("Dr." in t and "e.g." in t for t in responses)
    assert any("J. R. R. Tolkien" in t for t in responses)


@pytest.mark.slow
def test_every_verdict_equals_the_reference(reference: Any,
                                            records: list[dict[str, Any]]) -> None:
    compared = agreed = 0
    mismatches, deviations = [], []
    ours = {"strict": [], "loose": []}
    theirs = {"strict": [], "loose": []}
    for rec in records:
        ids, kwargs, response = rec["instruction_id_list"], rec["kwargs"], rec["response"]
        ref_strict, ref_loose = reference_verdicts(reference, ids, kwargs, response, rec["prompt"])
        item = EvalItem(id=str(rec["key"]), prompt=rec["prompt"],
                        reference=[{"instruction_id": i, "kwargs": k}
                                   for i, k in zip(ids, kwargs, strict=True)])
        result = score_item(item, [response])
        for n, (iid, kw) in enumerate(zip(ids, kwargs, strict=True)):
            checker = make_checker(iid, kw)
            mine = (follows(checker, response, loose=False), follows(checker, response, loose=True))
            ref = (ref_strict[n], ref_loose[n])
            if documented_deviation(iid, kw):
                deviations.append((rec["key"], iid))
                continue
            compared += 2
            agreed += (mine[0] == ref[0]) + (mine[1] == ref[1])
            if mine != ref:
                mismatches.append((rec["key"], iid, kw, mine, ref, response[:200]))
        # Headline figures through the task's own scoring.
        ours["strict"].append(result.extracted[0])
        ours["loose"].append(result.metadata["loose"])
        theirs["strict"].append(ref_strict)
        theirs["loose"].append(ref_loose)
    assert mismatches == [], mismatches[:5]
    assert agreed / compared >= 0.995 and deviations == []
    for kind in ("strict", "loose"):
        mine_prompt = sum(all(v.values()) for v in ours[kind]) / len(records)
        ref_prompt = sum(all(v) for v in theirs[kind]) / len(records)
        mine_inst = sum(sum(v.values()) for v in ours[kind]) / sum(len(v) for v in ours[kind])
        ref_inst = sum(sum(v) for v in theirs[kind]) / sum(len(v) for v in theirs[kind])
        assert abs(mine_prompt - ref_prompt) * 100 <= 0.2, kind
        assert abs(mine_inst - ref_inst) * 100 <= 0.2, kind


def test_on_ifevals_own_prompts_the_only_deviation_is_the_random_letter(
        reference: Any, shared_data: Path) -> None:
    """IFEval asks for the "letter" '#' and '!': the reference draws a letter, sftmix counts it."""
    rows = [json.loads(line) for line in
            (shared_data / "eval/ifeval/input_data.jsonl").read_text().splitlines()]
    odd = [(r["key"], kw) for r in rows
           for iid, kw in zip(r["instruction_id_list"], r["kwargs"], strict=True)
           if documented_deviation(iid, kw)]
    assert sorted(kw["letter"] for _, kw in odd) == ["!", "#"]
    checker = make_checker("keywords:letter_frequency", odd[0][1])
    text = "#1 and #2, really!! " * 3
    verdicts = {checker.check(text) for _ in range(20)}
    assert len(verdicts) == 1  # deterministic: the character itself is counted
    count = text.count(odd[0][1]["letter"])
    assert verdicts == {count >= odd[0][1]["let_frequency"]
                        if odd[0][1]["let_relation"] == "at least"
                        else count < odd[0][1]["let_frequency"]}
