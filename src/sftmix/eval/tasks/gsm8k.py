"""GSM8K: grade-school maths word problems, scored by the final number.

Two protocols, chosen with ``mode``:

``chat`` (default; the reference study's way)
    Zero-shot: the question is the user's message, rendered with the model's
    training chat template. A fine-tuned chat model answers in its own words;
    GSM8K-style training data ends solutions with ``#### N`` but nothing forces
    a model to, so the primary metric is ``exact_match_flexible`` (last number
    in the completion). ``exact_match_strict`` (the number after ``#### ``) is
    reported too: the gap between them says how well the answer format was
    learned.

``fewshot`` (lm-evaluation-harness's way)
    Five solved training problems as raw text ``Question: ...\\nAnswer: ...``
    separated by blank lines, then the test question; generation stops at the
    next ``Question:`` or blank line. The shots end with ``#### N``, so a base
    model copies the marker and ``exact_match_strict`` is the primary metric.

Both metrics are recorded per item in both modes; ``primary_metric`` names the
headline one. Items come from a GSM8K test JSONL (``question``, ``answer``)
given by ``path``; the few-shot pool is ``train_path`` (default: ``train.jsonl``
beside ``path``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sftmix.answers.extract import GSM8K_FLEXIBLE, GSM8K_STRICT, gsm8k_reference, numbers_equal
from sftmix.data.records import Message
from sftmix.errors import ConfigError, DataError, where
from sftmix.eval.base import TASKS, EvalItem, GenerationSpec, ItemResult, Metric, Task
from sftmix.eval.jsonl import iter_jsonl
from sftmix.eval.task_options import build_task

MODES = ("chat", "fewshot")
FEWSHOT_STOP = ("Question:", "</s>", "<|im_end|>", "\n\n")


def read_gsm8k(path: str | Path) -> list[dict[str, Any]]:
    """GSM8K records with their normalised reference; bad lines raise DataError naming the line."""
    p = Path(path)
    records = []
    for lineno, rec in iter_jsonl(p, "GSM8K", strings=("question", "answer")):
        try:
            rec["reference"] = gsm8k_reference(rec["answer"])
        except ValueError as e:
            raise DataError(f"{where(p, lineno, field='answer')}: {e}") from None
        rec["index"] = len(records)
        records.append(rec)
    return records


def fewshot_prefix(shots: Sequence[dict[str, Any]]) -> str:
    return "".join(f"Question: {s['question']}\nAnswer: {s['answer']}\n\n" for s in shots)


class GSM8KTask(Task):
    name = "gsm8k"
    ability = "maths"
    metrics = (
        Metric("exact_match_flexible"),
        Metric("exact_match_strict"),
    )

    def __init__(self, path: str | Path | None = None, *, mode: str = "chat",
                 num_fewshot: int = 5, train_path: str | Path | None = None,
                 fewshot_seed: int = 1234, max_new_tokens: int = 512) -> None:
        if path is None:
            raise ConfigError("the gsm8k task needs 'path': a GSM8K test JSONL file "
                              "({'question', 'answer'} per line); build_suite('gsm8k') "
                              "defaults to the copy bundled with sftmix")
        if mode not in MODES:
            raise ConfigError(f"gsm8k option 'mode' is {mode!r}; expected one of {', '.join(MODES)}")
        if num_fewshot < 0:
            raise ConfigError(f"gsm8k option 'num_fewshot' is {num_fewshot}; expected >= 0")
        self.path = Path(path)
        self.mode = mode
        self.num_fewshot = num_fewshot if mode == "fewshot" else 0
        self.train_path = Path(train_path) if train_path else self.path.with_name("train.jsonl")
        self.fewshot_seed = fewshot_seed
        self.max_new_tokens = max_new_tokens
        self.primary_metric = "exact_match_flexible" if mode == "chat" else "exact_match_strict"
        self._records: list[dict[str, Any]] | None = None
        self._shots: list[dict[str, Any]] | None = None

    def _load(self) -> list[dict[str, Any]]:
        if self._records is None:
            self._records = read_gsm8k(self.path)
        return self._records

    def shots(self) -> list[dict[str, Any]]:
        """The few-shot examples: a seeded sample of the training set, the same for every item."""
        if self._shots is None:
            if self.num_fewshot == 0:
                self._shots = []
            else:
                pool = read_gsm8k(self.train_path)
                if len(pool) < self.num_fewshot:
                    raise DataError(f"{self.train_path} holds {len(pool)} problems; "
                                    f"{self.num_fewshot} few-shot examples were asked for")
                self._shots = random.Random(self.fewshot_seed).sample(pool, self.num_fewshot)
        return self._shots

    def items(self, limit: int | None = None) -> list[EvalItem]:
        records = self._load()[:limit] if limit is not None else self._load()
        prefix = fewshot_prefix(self.shots()) if self.mode == "fewshot" else ""
        items = []
        for rec in records:
            prompt: list[Message] | str
            if self.mode == "chat":
                prompt = [Message("user", rec["question"])]
            else:
                prompt = f"{prefix}Question: {rec['question']}\nAnswer:"
            items.append(EvalItem(id=f"gsm8k/{rec['index']}", prompt=prompt,
                                  reference=rec["reference"],
                                  metadata={"question": rec["question"]}))
        return items

    def generation(self) -> GenerationSpec:
        stop = FEWSHOT_STOP if self.mode == "fewshot" else ()
        return GenerationSpec(max_new_tokens=self.max_new_tokens, stop=stop)

    def score(self, items: Sequence[EvalItem], completions: Sequence[list[str]]) -> list[ItemResult]:
        return [score_item(item, outs) for item, outs in zip(items, completions, strict=True)]


def score_item(item: EvalItem, completions: list[str]) -> ItemResult:
    """Per item: each metric is the fraction of completions whose answer equals the reference."""
    extracted: list[dict[str, str | None]] = []
    verdicts: list[bool] = []
    strict_hits = flexible_hits = 0
    for text in completions:
        strict, flexible = GSM8K_STRICT(text), GSM8K_FLEXIBLE(text)
        strict_ok = numbers_equal(strict, item.reference)
        flexible_ok = numbers_equal(flexible, item.reference)
        strict_hits += strict_ok
        flexible_hits += flexible_ok
        extracted.append({"strict": strict, "flexible": flexible})
        verdicts.append(flexible_ok)
    n = max(len(completions), 1)
    first = extracted[0] if extracted else {"strict": None, "flexible": None}
    reason = (f"expected {item.reference}; strict {first['strict']}, flexible {first['flexible']}")
    prompt = item.prompt if isinstance(item.prompt, str) else item.prompt[-1].content
    return ItemResult(
        id=item.id, prompt=prompt, completions=list(completions), extracted=extracted,
        verdicts=verdicts,
        metrics={"exact_match_flexible": flexible_hits / n, "exact_match_strict": strict_hits / n},
        reason=reason, metadata={"reference": item.reference},
    )


@TASKS.register("gsm8k")
def gsm8k_task(**options: Any) -> GSM8KTask:
    return build_task("gsm8k", GSM8KTask, options)
