"""Building a task from user options with an error that lists the accepted ones."""

from __future__ import annotations

import inspect
from typing import Any, TypeVar

from sftmix.errors import ConfigError

T = TypeVar("T")


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
    return cls(**options)
