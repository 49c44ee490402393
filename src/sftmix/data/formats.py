"""Readers: one raw record in a dataset's own shape -> one normalised :class:`Example`.

``READERS`` maps a format name to a :class:`Reader` class; a source's
``format:`` picks one. Built in:

==============  ===========================================================  ===============
name            fields read                                                  default ability
==============  ===========================================================  ===============
``gsm8k``       ``question``, ``answer`` (reference: the number after ####)   maths
``gsm8k_rft``   as gsm8k, the same question repeated with other solutions;    maths
                ids and ``metadata.group`` group the solutions by question
``math``        ``problem``, ``solution`` (reference: the last \\boxed{...})   maths
``alpaca``      ``instruction``, optional ``input``, ``output`` or            general
                ``response``; optional ``system``
``sharegpt``    ``conversations`` of ``{from, value}``, ``from`` in           general
                human/gpt/system (also user/assistant)
``messages``    OpenAI ``messages`` of ``{role, content}``                    general
``humaneval``   ``task_id``, ``prompt``, ``canonical_solution``, ``test``,    code
                ``entry_point`` (all kept in metadata for evaluation)
``mbpp``        ``task_id``, ``text`` (or ``prompt``), ``code``, tests in     code
                ``test_list`` (or ``test``); all kept in metadata
``ifeval``      ``key``, ``prompt``, ``instruction_id_list``, ``kwargs``;     general
                prompt only (evaluation / decontamination, not training)
==============  ===========================================================  ===============

An example's id is ``<source>:<index>`` with the record's 0-based position in the
file (``<source>:<group>-<k>`` for gsm8k_rft), stable across runs; the position
is also kept as ``metadata.index``. A new format is a subclass of
:class:`Reader` registered with ``@READERS.register("name")``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, NamedTuple

from sftmix.answers import extract
from sftmix.answers.extract import last_boxed
from sftmix.data.records import Example, Message
from sftmix.data.validate import (
    RecordError,
    check_turns,
    optional_text,
    require_list,
    require_mapping,
    require_text,
    turn_list,
)
from sftmix.registry import Registry


class Layout(NamedTuple):
    """Where a conversation format keeps its turns (a reader's ``columnar`` attribute)."""

    field: str
    role_key: str
    content_key: str
    roles: Mapping[str, str]  # the format's role names -> system / user / assistant
    keeps_id: bool  # the record's own "id" goes to metadata.orig_id


class Reader(ABC):
    """Reads the records of one source; an instance may keep state across records (gsm8k_rft)."""

    default_ability: ClassVar[str] = "general"
    # False for prompt-only evaluation files: their records need not end with an assistant turn.
    training: ClassVar[bool] = True
    # Set for conversation formats that sftmix.data.columnar can read and check column-wise.
    columnar: ClassVar[Layout | None] = None

    def __init__(self, source: str, ability: str | None = None) -> None:
        self.source = source
        self.ability = ability or self.default_ability

    @abstractmethod
    def read(self, raw: Any, index: int) -> Example:
        """Validate one raw record and normalise it; problems raise RecordError."""

    def example(self, index: int, messages: tuple[Message, ...], metadata: dict[str, Any],
                key: str | None = None) -> Example:
        metadata["index"] = index
        return Example(f"{self.source}:{key if key is not None else index}", self.ability,
                       self.source, messages, metadata)


READERS: Registry[type[Reader]] = Registry("data format")

def gsm8k_reference(answer: str) -> str | None:
    """The normalised final answer after ``####`` (as GSM8K scoring reads it), or None."""
    try:
        return extract.gsm8k_reference(answer)
    except ValueError:
        return None


def _qa(question: str, answer: str) -> tuple[Message, ...]:
    return (Message("user", question), Message("assistant", answer))


@READERS.register("gsm8k")
class Gsm8kReader(Reader):
    default_ability = "maths"

    def read(self, raw: Any, index: int) -> Example:
        raw = require_mapping(raw)
        question = require_text(raw, "question")
        answer = require_text(raw, "answer")
        return self.example(index, _qa(question, answer), {"reference": gsm8k_reference(answer)})


@READERS.register("gsm8k_rft")
class Gsm8kRftReader(Gsm8kReader):
    """Several solutions per question: the k-th solution of question group g has id ``<source>:g-k``."""

    def __init__(self, source: str, ability: str | None = None) -> None:
        super().__init__(source, ability)
        self._groups: dict[str, list[int]] = {}

    def read(self, raw: Any, index: int) -> Example:
        ex = super().read(raw, index)
        question = " ".join(ex.messages[0].content.split())
        group = self._groups.setdefault(question, [len(self._groups), 0])
        gid, k = group
        group[1] += 1
        ex.metadata.update(group=gid, solution=k)
        return Example(f"{self.source}:{gid}-{k}", ex.ability, ex.source, ex.messages, ex.metadata)


@READERS.register("math")
class MathReader(Reader):
    default_ability = "maths"

    def read(self, raw: Any, index: int) -> Example:
        raw = require_mapping(raw)
        problem = require_text(raw, "problem")
        solution = require_text(raw, "solution")
        meta: dict[str, Any] = {"reference": last_boxed(solution)}
        for key in ("id", "level", "type"):
            if key in raw:
                meta[key] = raw[key]
        return self.example(index, _qa(problem, solution), meta)


@READERS.register("alpaca")
class AlpacaReader(Reader):
    def read(self, raw: Any, index: int) -> Example:
        raw = require_mapping(raw)
        instruction = require_text(raw, "instruction")
        extra = optional_text(raw, "input")
        if "output" in raw:
            output = require_text(raw, "output")
        elif "response" in raw:
            output = require_text(raw, "response")
        else:
            raise RecordError("output", "required field is missing (Alpaca records need 'output' or 'response')")
        query = f"{instruction}\n\n{extra}" if extra.strip() else instruction
        system = optional_text(raw, "system")
        messages = ((Message("system", system),) if system.strip() else ()) + _qa(query, output)
        return self.example(index, messages, {})


_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                   "system": "system"}


@READERS.register("sharegpt")
class ShareGptReader(Reader):
    columnar = Layout("conversations", "from", "value", _SHAREGPT_ROLES, keeps_id=True)

    def read(self, raw: Any, index: int) -> Example:
        raw = require_mapping(raw)
        turns = turn_list(require_list(raw, "conversations"), "conversations", "from", "value",
                          _SHAREGPT_ROLES)
        meta = {"orig_id": raw["id"]} if isinstance(raw.get("id"), str | int) else {}
        return self.example(index, check_turns(turns, "conversations"), meta)


_OPENAI_ROLES = {"system": "system", "user": "user", "assistant": "assistant"}


@READERS.register("messages")
class MessagesReader(Reader):
    columnar = Layout("messages", "role", "content", _OPENAI_ROLES, keeps_id=False)

    def read(self, raw: Any, index: int) -> Example:
        raw = require_mapping(raw)
        turns = turn_list(require_list(raw, "messages"), "messages", "role", "content", _OPENAI_ROLES)
        return self.example(index, check_turns(turns, "messages"), {})


def _keep(raw: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: raw[k] for k in keys if k in raw}


@READERS.register("humaneval")
class HumanEvalReader(Reader):
    default_ability = "code"

    def read(self, raw: Any, index: int) -> Example:
        raw = require_mapping(raw)
        task_id = require_text(raw, "task_id")
        prompt = require_text(raw, "prompt")
        solution = require_text(raw, "canonical_solution")
        require_text(raw, "test")
        require_text(raw, "entry_point")
        meta = _keep(raw, ("task_id", "prompt", "canonical_solution", "test", "entry_point"))
        return self.example(index, _qa(prompt, solution), meta, key=task_id)


@READERS.register("mbpp")
class MbppReader(Reader):
    default_ability = "code"

    def read(self, raw: Any, index: int) -> Example:
        raw = require_mapping(raw)
        if "task_id" not in raw:
            raise RecordError("task_id", "required field is missing")
        task_id = raw["task_id"]
        if not isinstance(task_id, int | str) or isinstance(task_id, bool):
            raise RecordError("task_id", f"expected a number or a string, found {type(task_id).__name__}")
        text = require_text(raw, "text" if "text" in raw or "prompt" not in raw else "prompt")
        code = require_text(raw, "code")
        tests_key = "test_list" if "test_list" in raw or "test" not in raw else "test"
        tests = require_list(raw, tests_key)
        for i, t in enumerate(tests):
            if not isinstance(t, str):
                raise RecordError(f"{tests_key}[{i}]", f"expected a test (a string), found {type(t).__name__}")
        meta = _keep(raw, ("task_id", "test_setup_code", "challenge_test_list"))
        meta.update(text=text, code=code, test_list=list(tests))
        return self.example(index, _qa(text, code), meta, key=str(task_id))


@READERS.register("ifeval")
class IfEvalReader(Reader):
    training = False

    def read(self, raw: Any, index: int) -> Example:
        raw = require_mapping(raw)
        prompt = require_text(raw, "prompt")
        ids = require_list(raw, "instruction_id_list")
        meta = {"key": raw.get("key"), "instruction_id_list": list(ids), "kwargs": raw.get("kwargs")}
        return self.example(index, (Message("user", prompt),), meta,
                            key=str(raw["key"]) if "key" in raw else None)
