"""Building a task from user options with an error that lists the accepted ones."""

from __future__ import annotations

import inspect
from typing import Any, TypeVar

from sftmix.errors import ConfigError

T = TypeVar("T")

# Whole-number options several suites share, and their least sensible value: zero new
# tokens would score empty completions, zero workers would run nothing.
AT_LEAST = {"max_new_tokens": 1, "workers": 1, "num_fewshot": 0}


def build_task(name: str, cls: type[T], options: dict[str, Any]) -> T:
    """``cls(**options)``, but an unknown option is a ConfigError naming the task and its options."""
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
    return cls(**options)
