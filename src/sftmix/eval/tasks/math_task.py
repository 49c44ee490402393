"""MATH (competition mathematics) as out-of-domain maths for models fine-tuned on GSM8K-style data.

The reference answer is the last ``\\boxed{...}`` of the record's solution.
Completions are scored two ways:

``exact_match_boxed``
    only the last boxed answer counts (the convention of MATH papers);
``exact_match`` (primary)
    the boxed answer, else a stated final answer ("The answer is ..."), else
    the last number. Models fine-tuned on GSM8K never learned to box, and
    scoring them only on boxing would measure the format, not the maths.

Answers are compared with :func:`sftmix.answers.extract.math_equiv`.

``mode="chat"`` asks zero-shot through the chat template, the problem followed
by ``instruction``; ``mode="fewshot"`` writes raw ``Problem: ...\\nSolution: ...``
shots from ``train_path`` (default ``train.jsonl`` beside ``path``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sftmix.answers.extract import (
    GSM8K_FLEXIBLE,
    MATH_ANSWER_PHRASE,
    MATH_BOXED,
    first_of,
    last_boxed,
    math_equiv,
)
from sftmix.data.records import Message
from sftmix.errors import ConfigError, DataError, where
from sftmix.eval.base import TASKS, EvalItem, GenerationSpec, ItemResult, Metric, Task
from sftmix.eval.jsonl import iter_jsonl
from sftmix.eval.task_options import build_task

DEFAULT_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
FEWSHOT_STOP = ("Problem:", "</s>", "<|im_end|>")


def read_math(path: str | Path) -> list[dict[str, Any]]:
    """MATH records (``problem``, ``solution``, optional ``level``/``type``/``id``) with their reference."""
    p = Path(path)
    records = []
    for lineno, rec in iter_jsonl(p, "MATH", strings=("problem", "solution")):
        reference = last_boxed(rec["solution"])
        if reference is None:
            raise DataError(f"{where(p, lineno, field='solution')}: no \\boxed{{...}} "
                            "answer; a MATH solution boxes its final answer")
        rec["reference"] = reference
        rec.setdefault("id", f"{p.stem}/{len(records)}")
        records.append(rec)
    return records


class MathTask(Task):
    name = "math"
    ability = "maths"
    metrics = (Metric("exact_match"), Metric("exact_match_boxed"))
    primary_metric = "exact_match"

    def __init__(self, path: str | Path | None = None, *, mode: str = "chat",
                 instruction: str = DEFAULT_INSTRUCTION, num_fewshot: int = 4,
                 train_path: str | Path | None = None, fewshot_seed: int = 1234,
                 subjects: Sequence[str] | None = None, levels: Sequence[int] | None = None,
                 max_new_tokens: int = 1024) -> None:
        if path is None:
            raise ConfigError("the math task needs 'path': a MATH test JSONL file "
                              "({'problem', 'solution'} per line); build_suite('math') "
                              "defaults to the copy bundled with sftmix")
        if mode not in ("chat", "fewshot"):
            raise ConfigError(f"math option 'mode' is {mode!r}; expected chat or fewshot")
        self.path = Path(path)
        self.mode = mode
        self.instruction = instruction
        self.num_fewshot = num_fewshot if mode == "fewshot" else 0
        self.train_path = Path(train_path) if train_path else self.path.with_name("train.jsonl")
        self.fewshot_seed = fewshot_seed
        self.subjects = {s.lower() for s in subjects} if subjects else None
        self.levels = {int(v) for v in levels} if levels else None
        self.max_new_tokens = max_new_tokens
        self._records: list[dict[str, Any]] | None = None

    def _selected(self) -> list[dict[str, Any]]:
        if self._records is None:
            records = read_math(self.path)
            if self.subjects is not None:
                records = [r for r in records if str(r.get("type", "")).lower() in self.subjects]
            if self.levels is not None:
                records = [r for r in records if _level(r) in self.levels]
            if not records:
                raise ConfigError(f"no MATH problem in {self.path} matches subjects="
                                  f"{sorted(self.subjects or [])} levels={sorted(self.levels or [])}")
            self._records = records
        return self._records

    def _prefix(self) -> str:
        if not self.num_fewshot:
            return ""
        shots = random.Random(self.fewshot_seed).sample(read_math(self.train_path), self.num_fewshot)
        return "".join(f"Problem:\n{s['problem']}\n\nSolution:\n{s['solution']}\n\n" for s in shots)

    def items(self, limit: int | None = None) -> list[EvalItem]:
        records = self._selected()
        records = records[:limit] if limit is not None else records
        prefix = self._prefix() if self.mode == "fewshot" else ""
        items = []
        for rec in records:
            prompt: list[Message] | str
            if self.mode == "chat":
                text = f"{rec['problem']}\n\n{self.instruction}" if self.instruction else rec["problem"]
                prompt = [Message("user", text)]
            else:
                prompt = f"{prefix}Problem:\n{rec['problem']}\n\nSolution:\n"
            items.append(EvalItem(id=f"math/{rec['id']}", prompt=prompt, reference=rec["reference"],
                                  metadata={"level": rec.get("level"), "type": rec.get("type")}))
        return items

    def generation(self) -> GenerationSpec:
        stop = FEWSHOT_STOP if self.mode == "fewshot" else ()
        return GenerationSpec(max_new_tokens=self.max_new_tokens, stop=stop)

    def score(self, items: Sequence[EvalItem], completions: Sequence[list[str]]) -> list[ItemResult]:
        return [score_item(it, outs) for it, outs in zip(items, completions, strict=True)]


def extract_answer(text: str) -> str | None:
    """Boxed answer, else a stated final answer, else the last number."""
    return first_of((MATH_BOXED, MATH_ANSWER_PHRASE, GSM8K_FLEXIBLE), text)


def score_item(item: EvalItem, completions: list[str]) -> ItemResult:
    extracted, verdicts = [], []
    boxed_hits = any_hits = 0
    for text in completions:
        boxed, answer = MATH_BOXED(text), extract_answer(text)
        boxed_hits += math_equiv(boxed, item.reference)
        ok = math_equiv(answer, item.reference)
        any_hits += ok
        extracted.append({"boxed": boxed, "answer": answer})
        verdicts.append(ok)
    n = max(len(completions), 1)
    first = extracted[0] if extracted else {"answer": None}
    prompt = item.prompt if isinstance(item.prompt, str) else item.prompt[-1].content
    return ItemResult(
        id=item.id, prompt=prompt, completions=list(completions), extracted=extracted,
        verdicts=verdicts,
        metrics={"exact_match": any_hits / n, "exact_match_boxed": boxed_hits / n},
        reason=f"expected {item.reference!r}; extracted {first['answer']!r}",
        metadata={**item.metadata, "reference": item.reference},
    )


def _level(rec: dict[str, Any]) -> int | None:
    digits = "".join(ch for ch in str(rec.get("level", "")) if ch.isdigit())
    return int(digits) if digits else None


@TASKS.register("math")
def math_task(**options: Any) -> MathTask:
    return build_task("math", MathTask, options)
