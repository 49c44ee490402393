"""Building a task from user options: accepted options, and where its benchmark file is.

A suite's benchmark file is, in order of precedence: the ``path`` option
(``--set SUITE.path=FILE``, or ``evaluation: {SUITE: {path: ...}}`` in a
study), the file under a data folder (``--data-dir``, laid out as
:data:`DEFAULT_PATHS` says), else the copy bundled with sftmix
(``sftmix/resources/benchmarks/``, same layout, listed with license and
checksum in its ``manifest.json``).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, TypeVar

from sftmix.bundled import bundled_dir
from sftmix.errors import ConfigError

T = TypeVar("T")

# Whole-number options several suites share, and their least sensible value: zero new
# tokens would score empty completions, zero workers would run nothing.
AT_LEAST = {"max_new_tokens": 1, "workers": 1, "num_fewshot": 0}

# Where each suite's benchmark file lies under a data folder laid out like ../shared/data;
# the bundled copies use the same layout.
DEFAULT_PATHS = {
    "gsm8k": "gsm8k/test.jsonl",
    "math": "math/test.jsonl",
    "humaneval": "eval/humaneval/HumanEval.jsonl",
    "mbpp": "eval/mbpp/mbpp.jsonl",
    "ifeval": "eval/ifeval/input_data.jsonl",
    "mtbench": "eval/mt_bench",
}
# Options that stand in for ``path`` (MT-Bench can be given its question file alone).
PATH_ALTERNATIVES = {"mtbench": ("question_file",)}


def bundled_path(suite: str) -> Path | None:
    """The bundled benchmark file (or folder) of ``suite``; None when none is bundled."""
    if suite not in DEFAULT_PATHS:
        return None
    path = bundled_dir() / DEFAULT_PATHS[suite]
    return path if path.exists() else None


def with_default_path(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with ``path`` set to the bundled benchmark when no file was given."""
    given = [k for k in ("path", *PATH_ALTERNATIVES.get(name, ())) if options.get(k) is not None]
    bundled = bundled_path(name)
    if given or bundled is None:
        return options
    return {**options, "path": bundled}


def build_task(name: str, cls: type[T], options: dict[str, Any]) -> T:
    """``cls(**options)``, but an unknown option is a ConfigError naming the task and its options.

    A task that reads a benchmark file and was given none gets the bundled one.
    """
    params = inspect.signature(cls.__init__).parameters
    accepted = [p for p in params if p not in ("self",)
                and params[p].kind not in (inspect.Parameter.VAR_KEYWORD,
                                           inspect.Parameter.VAR_POSITIONAL)]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(map(repr, unknown))} for evaluation "
                          f"suite '{name}'; accepted: {', '.join(accepted)}")
    for key, least in AT_LEAST.items():
        value = options.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            raise ConfigError(f"{name} option '{key}' is {value!r}; expected a whole number >= {least}")
    if "path" in accepted:
        options = with_default_path(name, options)
    return cls(**options)
