"""The ``ifeval`` task: verifiable instruction following, scored strictly and loosely.

Items are read from IFEval's ``input_data.jsonl`` format (``key``, ``prompt``,
``instruction_id_list``, ``kwargs``); the lab's test files use the same format.
The prompt is the user's message.

Scoring (IFEval's definitions):

* *strict*: a non-empty response must pass each instruction's checker as is;
* *loose*: an instruction also counts as followed when any of seven variants
  passes -- the response with markdown ``*`` removed, with its first line, its
  last line or both dropped, and those three again without ``*`` -- which
  forgives a preamble ("Sure, here is ...") or a closing offer.

Metrics per item: ``prompt_level_strict``/``prompt_level_loose`` (1 when every
instruction is followed) and ``inst_level_strict``/``inst_level_loose`` (the
fraction followed). Each item weighs its instruction-level values by its
number of instructions (``metadata["weights"]``), so the summary is IFEval's
micro-average over all instructions.

Instruction ids with no checker are a DataError listing them and their counts,
unless ``skip_unsupported=True``, which drops those instructions (logged, and
recorded per item under ``metadata["skipped"]``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sftmix.data.records import Message
from sftmix.errors import ConfigError, DataError, where
from sftmix.eval.base import TASKS, EvalItem, GenerationSpec, ItemResult, Metric, Task
from sftmix.eval.jsonl import iter_jsonl
from sftmix.eval.task_options import build_task
from sftmix.eval.tasks.ifeval.checkers import CHECKERS, Checker, make_checker

log = logging.getLogger(__name__)


def read_ifeval(path: str | Path) -> list[dict[str, Any]]:
    """IFEval records, validated: ids and kwargs lists of equal length."""
    p = Path(path)
    records = []
    for lineno, rec in iter_jsonl(p, "IFEval", strings=("prompt",)):
        ids, kwargs = rec.get("instruction_id_list"), rec.get("kwargs")
        if not isinstance(ids, list) or not isinstance(kwargs, list) or len(ids) != len(kwargs):
            raise DataError(f"{where(p, lineno, field='instruction_id_list')}: expected a "
                            "list of instruction ids and a 'kwargs' list of the same length")
        rec["_line"] = lineno
        records.append(rec)
    return records


def unsupported_instructions(records: Sequence[dict[str, Any]]) -> Counter[str]:
    """Instruction ids in ``records`` with no checker, with how often each occurs."""
    return Counter(i for r in records for i in r["instruction_id_list"] if i not in CHECKERS)


def response_variants(response: str) -> list[str]:
    """The response and IFEval's seven loose variants."""
    lines = response.split("\n")
    drop_first = "\n".join(lines[1:]).strip()
    drop_last = "\n".join(lines[:-1]).strip()
    drop_both = "\n".join(lines[1:-1]).strip()
    variants = [response, drop_first, drop_last, drop_both]
    return variants + [v.replace("*", "") for v in variants]


def follows(checker: Checker, response: str, loose: bool) -> bool:
    candidates = response_variants(response) if loose else [response]
    return any(c.strip() and checker.check(c) for c in candidates)


class IFEvalTask(Task):
    name = "ifeval"
    ability = "general"
    metrics = (
        Metric("prompt_level_strict"),
        Metric("inst_level_strict"),
        Metric("prompt_level_loose"),
        Metric("inst_level_loose"),
    )
    primary_metric = "prompt_level_strict"

    def __init__(self, path: str | Path | None = None, *, skip_unsupported: bool = False,
                 max_new_tokens: int = 1280) -> None:
        if path is None:
            raise ConfigError("the ifeval task needs 'path': IFEval's input_data.jsonl or a "
                              "file of generated items in the same format")
        self.path = Path(path)
        self.skip_unsupported = skip_unsupported
        self.max_new_tokens = max_new_tokens
        self._records: list[dict[str, Any]] | None = None

    def records(self) -> list[dict[str, Any]]:
        if self._records is None:
            records = read_ifeval(self.path)
            missing = unsupported_instructions(records)
            if missing and not self.skip_unsupported:
                listed = ", ".join(f"{k} ({v}x)" for k, v in sorted(missing.items()))
                raise DataError(f"{self.path}: instruction ids with no checker: {listed}; "
                                f"supported: {', '.join(CHECKERS.names())}. Pass "
                                "skip_unsupported=true to score the other instructions only")
            if missing:
                log.warning("%s: skipping unsupported instructions %s", self.path, dict(missing))
            for rec in records:
                # Build every checker now, so bad kwargs fail before any generation.
                rec["_checkers"] = []
                for iid, kw in zip(rec["instruction_id_list"], rec["kwargs"], strict=True):
                    if iid not in CHECKERS:
                        continue
                    try:
                        rec["_checkers"].append((iid, make_checker(iid, kw)))
                    except DataError as e:
                        raise DataError(f"{where(self.path, rec['_line'])}: {e}") from None
            self._records = records
        return self._records

    def items(self, limit: int | None = None) -> list[EvalItem]:
        records = self.records()
        records = records[:limit] if limit is not None else records
        return [
            EvalItem(
                id=f"ifeval/{rec.get('key', rec['_line'])}",
                prompt=[Message("user", rec["prompt"])],
                # Plain data (JSON-safe); checkers are rebuilt when scoring.
                reference=[{"instruction_id": iid, "kwargs": c.kwargs()}
                           for iid, c in rec["_checkers"]],
                metadata={"instruction_id_list": rec["instruction_id_list"],
                          "skipped": [i for i in rec["instruction_id_list"] if i not in CHECKERS]},
            )
            for rec in records
        ]

    def generation(self) -> GenerationSpec:
        return GenerationSpec(max_new_tokens=self.max_new_tokens)

    def score(self, items: Sequence[EvalItem], completions: Sequence[list[str]]) -> list[ItemResult]:
        return [score_item(it, outs) for it, outs in zip(items, completions, strict=True)]


def score_item(item: EvalItem, completions: list[str]) -> ItemResult:
    """Scores the first completion (IFEval is greedy, one response per prompt)."""
    checkers = [(r["instruction_id"], make_checker(r["instruction_id"], r["kwargs"]))
                for r in item.reference]
    response = completions[0] if completions else ""
    strict = [follows(c, response, loose=False) for _, c in checkers]
    loose = [follows(c, response, loose=True) for _, c in checkers]
    n = len(checkers)
    metrics = {
        "prompt_level_strict": float(all(strict)),
        "inst_level_strict": sum(strict) / n if n else 1.0,
        "prompt_level_loose": float(all(loose)),
        "inst_level_loose": sum(loose) / n if n else 1.0,
    }
    failed = [iid for (iid, _), ok in zip(checkers, strict, strict=True) if not ok]
    prompt = item.prompt if isinstance(item.prompt, str) else item.prompt[-1].content
    return ItemResult(
        id=item.id, prompt=prompt, completions=list(completions),
        extracted=[{iid: ok for (iid, _), ok in zip(checkers, strict, strict=True)}],
        verdicts=[all(strict)], metrics=metrics,
        reason="all instructions followed" if not failed else f"not followed: {', '.join(failed)}",
        metadata={**item.metadata,
                  "loose": dict(zip([i for i, _ in checkers], loose, strict=False)),
                  "weights": {"inst_level_strict": n, "inst_level_loose": n}},
    )


@TASKS.register("ifeval")
def ifeval_task(**options: Any) -> IFEvalTask:
    return build_task("ifeval", IFEvalTask, options)
