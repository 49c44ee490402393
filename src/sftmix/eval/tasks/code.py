"""HumanEval and MBPP: code generation scored by running unit tests in the sandbox.

Two prompting protocols (``mode``):

``chat`` (default; how a chat fine-tuned model is asked)
    The problem is the user's message; the answer is expected to contain the
    function, usually in a fenced block among prose. See
    :mod:`sftmix.eval.tasks.code_extract` for how the code is taken out.
``completion`` (the original Codex / bigcode-harness protocol)
    The raw prompt (HumanEval: signature and docstring; MBPP: the description
    and first test in a docstring) is continued; generation stops at the
    usual top-level stop sequences.

Each completion becomes a :class:`~sftmix.eval.sandbox.Program` whose source is
the solution (prompt + post-processed completion) and whose *check* is the
benchmark's test code (HumanEval: ``test`` + ``check(entry_point)``; MBPP:
``test_setup_code`` + the ``test_list`` asserts). The sandbox runs the check
after the solution with pristine builtins and freshly compiled test code, and
counts a pass only on exit status 0 plus a per-run nonce written after the
check returned, so a completion that exits early, redefines ``check`` or
builtins, or swallows the tests in an unterminated string, fails.

pass@k is the unbiased estimator averaged over problems, reported for every
``k`` in ``ks`` with ``k <= n`` (``n`` samples per problem; greedy n=1 by
default, as in the reference study).
"""

from __future__ import annotations

import logging
import re
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from sftmix.data.records import Message
from sftmix.errors import ConfigError, DataError, SftmixError
from sftmix.eval.base import TASKS, EvalItem, GenerationSpec, ItemResult, Metric, Task
from sftmix.eval.jsonl import iter_jsonl
from sftmix.eval.sandbox import (
    ExecResult,
    Limits,
    Program,
    SandboxPool,
    Status,
    resolve_isolation,
)
from sftmix.eval.task_options import build_task, bundled_path
from sftmix.eval.tasks.code_extract import pass_at_k, solution_code

log = logging.getLogger(__name__)

MODES = ("chat", "completion")
HUMANEVAL_STOP = ("\ndef ", "\nclass ", "\nif ", "\nprint(", "\n#", "\n```")
MBPP_STOP = ("\nclass ", "\nassert ", '\n"""', "\nprint(", "\nif ", "\n```")
HUMANEVAL_CHAT = "Complete the following Python function:\n```python\n{prompt}```"
MBPP_CHAT = "{text}\nYour code should pass this test:\n\n{test}"
MBPP_COMPLETION = '"""\n{text}\n{test}\n"""\n'
MBPP_TEST_SPLIT = range(11, 511)


def bundled_or_fail(suite: str, expected: str) -> Path:
    """The benchmark file bundled with sftmix, for a task built without the registry."""
    path = bundled_path(suite)
    if path is None:
        raise ConfigError(f"the {suite} task needs 'path': {expected}; this installation of "
                          "sftmix has no bundled copy")
    return path


def read_jsonl(path: Path, required: Sequence[str], what: str) -> list[dict[str, Any]]:
    """Records of a JSONL (optionally gzipped) file, each with the ``required`` keys."""
    return [rec for _, rec in iter_jsonl(path, what, required=required)]


def mbpp_entry_point(record: dict[str, Any]) -> str:
    """The function the tests call: a top-level def of the reference code named in the first test."""
    names = re.findall(r"^def\s+(\w+)\s*\(", record["code"], re.MULTILINE)
    for name in names:
        if re.search(rf"\b{re.escape(name)}\s*\(", record["test_list"][0]):
            return name
    called = re.search(r"assert\s+(?:not\s+)?\(?\s*(?:set\()?\s*(\w+)\s*\(", record["test_list"][0])
    return called.group(1) if called else (names[0] if names else "")


class CodeTask(Task):
    """Shared scoring: build programs, run them in the sandbox pool, compute pass@k."""

    ability = "code"
    default_timeout_s = 3.0  # per program, as is usual for HumanEval

    def __init__(self, path: str | Path | None = None, *, mode: str = "chat", n: int = 1,
                 temperature: float = 0.0, top_p: float = 1.0, ks: Sequence[int] = (1, 10, 100),
                 max_new_tokens: int = 512, timeout_s: float | None = None,
                 workers: int | None = None, isolation: str = "auto", seed: int = 0) -> None:
        if mode not in MODES:
            raise ConfigError(f"{self.name} option 'mode' is {mode!r}; expected one of "
                              f"{', '.join(MODES)}")
        if n < 1:
            raise ConfigError(f"{self.name} option 'n' is {n}; expected at least 1 sample")
        if n > 1 and temperature <= 0:
            raise ConfigError(f"{self.name} option 'n' is {n} with temperature {temperature}; "
                              "several samples per problem need temperature > 0 (greedy "
                              "samples are identical)")
        timeout_s = self.default_timeout_s if timeout_s is None else timeout_s
        if timeout_s <= 0:
            raise ConfigError(f"{self.name} option 'timeout_s' is {timeout_s}; expected > 0")
        self.mode, self.n, self.temperature, self.top_p = mode, n, temperature, top_p
        self.max_new_tokens, self.seed = max_new_tokens, seed
        self.ks = tuple(sorted({k for k in ks if 1 <= k <= n})) or (1,)
        self.metrics = tuple(Metric(f"pass@{k}") for k in self.ks)
        self.primary_metric = f"pass@{self.ks[0]}"
        self.limits = Limits(timeout_s=timeout_s)
        self.workers, self.isolation = workers, resolve_isolation(isolation)
        self.path = Path(path) if path is not None else self.default_path()
        self._records: list[dict[str, Any]] | None = None
        self._index: dict[str, dict[str, Any]] = {}

    # Subclasses: where the data is, how to load it, render prompts, build programs.
    @abstractmethod
    def default_path(self) -> Path: ...

    @abstractmethod
    def _load(self) -> list[dict[str, Any]]: ...

    @abstractmethod
    def _item(self, record: dict[str, Any]) -> EvalItem: ...

    @abstractmethod
    def program(self, item: EvalItem, completion: str) -> Program:
        """The sandbox program that tests one completion of ``item``."""

    @abstractmethod
    def stop(self) -> tuple[str, ...]:
        """Stop strings of the completion protocol."""

    def records(self) -> list[dict[str, Any]]:
        if self._records is None:
            self._records = self._load()
            self._index = {self._item_id(r): r for r in self._records}
        return self._records

    def record(self, item_id: str) -> dict[str, Any]:
        self.records()
        return self._index[item_id]

    @abstractmethod
    def _item_id(self, record: dict[str, Any]) -> str: ...

    def items(self, limit: int | None = None) -> list[EvalItem]:
        records = self.records() if limit is None else self.records()[:limit]
        return [self._item(r) for r in records]

    def generation(self) -> GenerationSpec:
        stop = self.stop() if self.mode == "completion" else ()
        return GenerationSpec(max_new_tokens=self.max_new_tokens, stop=stop,
                              temperature=self.temperature, top_p=self.top_p, n=self.n,
                              seed=self.seed)

    def score(self, items: Sequence[EvalItem], completions: Sequence[list[str]]) -> list[ItemResult]:
        if len(items) != len(completions):
            raise ValueError(f"{len(items)} items but {len(completions)} completion lists")
        programs = [self.program(item, text) for item, outs in zip(items, completions, strict=True)
                    for text in outs]
        pool = SandboxPool(self.workers, self.limits, isolation=self.isolation)
        with tqdm(total=len(programs), desc=f"{self.name}: running tests", unit="program",
                  disable=len(programs) < 20, leave=False) as bar:
            ran = pool.map(programs, progress=bar.update)
        broken = [r for r in ran if r.status is Status.ERROR]
        if broken:  # the machine's problem, not the model's: do not score it as failures
            raise SftmixError(f"the code sandbox could not run {len(broken)} of {len(ran)} "
                              f"{self.name} programs: {broken[0].reason}")
        results = iter(ran)
        out = []
        offset = 0
        for item, outs in zip(items, completions, strict=True):
            runs = [next(results) for _ in outs]
            out.append(self._result(item, outs, programs[offset: offset + len(outs)], runs))
            offset += len(outs)
        return out

    def _result(self, item: EvalItem, outs: list[str], programs: list[Program],
                runs: list[ExecResult]) -> ItemResult:
        n, c = len(runs), sum(r.passed for r in runs)
        metrics = {f"pass@{k}": (pass_at_k(n, c, k) if k <= n else float("nan")) for k in self.ks}
        failures = [r.reason or r.status.value for r in runs if not r.passed]
        prompt = item.prompt if isinstance(item.prompt, str) else item.prompt[-1].content
        return ItemResult(
            id=item.id, prompt=prompt, completions=list(outs),
            extracted=[p.source for p in programs], verdicts=[r.passed for r in runs],
            metrics=metrics, reason=failures[0] if failures else "",
            metadata={"n": n, "correct": c, "statuses": [r.status.value for r in runs],
                      "reasons": [r.reason for r in runs],
                      "durations_s": [round(r.duration_s, 3) for r in runs], **item.metadata},
        )


class HumanEvalTask(CodeTask):
    name = "humaneval"

    def default_path(self) -> Path:
        return bundled_or_fail("humaneval", "HumanEval.jsonl (task_id, prompt, test, entry_point)")

    def _item_id(self, record: dict[str, Any]) -> str:
        return str(record["task_id"])

    def _load(self) -> list[dict[str, Any]]:
        return read_jsonl(self.path, ("task_id", "prompt", "test", "entry_point"), "HumanEval")

    def _item(self, record: dict[str, Any]) -> EvalItem:
        prompt: list[Message] | str = record["prompt"]
        if self.mode == "chat":
            prompt = [Message("user", HUMANEVAL_CHAT.format(prompt=record["prompt"]))]
        return EvalItem(id=record["task_id"], prompt=prompt, reference=record.get("canonical_solution"),
                        metadata={"entry_point": record["entry_point"]})

    def stop(self) -> tuple[str, ...]:
        return HUMANEVAL_STOP

    def program(self, item: EvalItem, completion: str) -> Program:
        record = self.record(item.id)
        entry = record["entry_point"]
        source = solution_code(record["prompt"], completion, entry)
        return Program(source, check=f"{record['test']}\ncheck({entry})\n", expose=(entry,))


class MBPPTask(CodeTask):
    name = "mbpp"
    # The reference solution of task 123 alone needs ~4 s of CPU on a slow core.
    default_timeout_s = 10.0

    def default_path(self) -> Path:
        return bundled_or_fail("mbpp", "MBPP's mbpp.jsonl (task_id, text, code, test_list, "
                                       "test_setup_code)")

    def _item_id(self, record: dict[str, Any]) -> str:
        return f"mbpp/{record['task_id']}"

    def _load(self) -> list[dict[str, Any]]:
        records = read_jsonl(self.path, ("task_id", "text", "code", "test_list"), "MBPP")
        split = [r for r in records if r["task_id"] in MBPP_TEST_SPLIT]
        if not split:
            raise DataError(f"{self.path} holds no MBPP test-split problem (task_id 11-510); "
                            "expected the full mbpp.jsonl")
        for r in split:
            r["entry_point"] = mbpp_entry_point(r)
        return split

    def _item(self, record: dict[str, Any]) -> EvalItem:
        test = record["test_list"][0]
        prompt: list[Message] | str
        if self.mode == "chat":
            prompt = [Message("user", MBPP_CHAT.format(text=record["text"], test=test))]
        else:
            prompt = MBPP_COMPLETION.format(text=record["text"], test=test)
        return EvalItem(id=f"mbpp/{record['task_id']}", prompt=prompt, reference=record["code"],
                        metadata={"entry_point": record["entry_point"]})

    def stop(self) -> tuple[str, ...]:
        return MBPP_STOP

    def program(self, item: EvalItem, completion: str) -> Program:
        record = self.record(item.id)
        entry = record["entry_point"]
        source = solution_code("", completion, entry, prompt_has_signature=False)
        check = "\n".join([record.get("test_setup_code") or "", *record["test_list"]]) + "\n"
        return Program(source, check=check, expose=(entry,))


@TASKS.register("humaneval")
def humaneval_task(**options: Any) -> HumanEvalTask:
    return build_task("humaneval", HumanEvalTask, options)


@TASKS.register("mbpp")
def mbpp_task(**options: Any) -> MBPPTask:
    return build_task("mbpp", MBPPTask, options)
