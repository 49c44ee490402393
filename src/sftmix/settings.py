"""Every environment variable sftmix reads, read in one place into one typed object.

The command line and the worker read the environment once, when they start
(:func:`freeze`); everything below them asks :func:`current`. Used as a library
(and in tests), :func:`current` reads the environment afresh on each call.

| variable | what it says | set by |
|---|---|---|
| ``SFTMIX_LOG_LEVEL`` | logging level (a number) | the user |
| ``SFTMIX_PROGRESS`` | ``0``: no progress bars (a log file, not a terminal) | the user, the SLURM node |
| ``SFTMIX_DATA_DIR`` | where ``sftmix eval`` finds benchmark files | the user |
| ``SFTMIX_ASK_OVER`` | the estimated time above which ``sftmix run`` asks for ``--yes`` (``2h``) | the user |
| ``SFTMIX_JUDGE_BASE_URL``, ``SFTMIX_JUDGE_MODEL``, ``SFTMIX_JUDGE_API_KEY`` (or ``OPENAI_API_KEY``), ``SFTMIX_JUDGE_CACHE`` | the MT-Bench judge | the user |
| ``SFTMIX_SECRETS`` | the secret options of a study's suites (a judge's key), for a worker | the executor, for its workers |
| ``SFTMIX_CHECKPOINT_SIGNAL`` | the signal on which a stage checkpoints and stops | the SLURM node, for its stage |
| ``SFTMIX_CRASH_AT``, ``SFTMIX_EXECUTOR_PID`` | failpoints of the crash tests (``sftmix.faults``) | the tests; the executor |
| ``SFTMIX_SANDBOX_RUN`` | marks a process as the code sandbox's child | the sandbox |

Variables a study or schedule file names (``${SFTMIX_LAB_DIR}``, ``${SFTMIX_MODEL:-smollm2}``)
are the file's own; ``sftmix.config`` expands them when it reads the file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JUDGE_API_KEYS = ("SFTMIX_JUDGE_API_KEY", "OPENAI_API_KEY")


def _text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


@dataclass(frozen=True)
class Settings:
    log_level: int | None = None
    progress: bool = True
    data_dir: Path | None = None
    ask_over: str | None = None
    judge_base_url: str | None = None
    judge_model: str | None = None
    judge_api_key: str | None = field(default=None, repr=False)
    judge_cache: Path | None = None
    secrets: dict[str, Any] = field(default_factory=dict, repr=False)
    checkpoint_signal: str | None = None
    crash_at: tuple[str, ...] = ()
    executor_pid: int | None = None

    @classmethod
    def read(cls, env: Mapping[str, str]) -> Settings:
        level = _text(env, "SFTMIX_LOG_LEVEL")
        data_dir = _text(env, "SFTMIX_DATA_DIR")
        cache = _text(env, "SFTMIX_JUDGE_CACHE")
        pid = _text(env, "SFTMIX_EXECUTOR_PID")
        signal = _text(env, "SFTMIX_CHECKPOINT_SIGNAL")
        return cls(
            log_level=int(level) if level and level.lstrip("-").isdigit() else None,
            progress=env.get("SFTMIX_PROGRESS", "1") == "1",
            data_dir=Path(data_dir) if data_dir else None,
            ask_over=_text(env, "SFTMIX_ASK_OVER"),
            judge_base_url=_text(env, "SFTMIX_JUDGE_BASE_URL"),
            judge_model=_text(env, "SFTMIX_JUDGE_MODEL"),
            judge_api_key=next((k for k in (_text(env, n) for n in JUDGE_API_KEYS) if k), None),
            judge_cache=Path(cache) if cache else None,
            secrets=json.loads(env.get("SFTMIX_SECRETS") or "{}"),
            checkpoint_signal=signal.upper() if signal else None,
            crash_at=tuple(p.strip() for p in env.get("SFTMIX_CRASH_AT", "").split(",") if p.strip()),
            executor_pid=int(pid) if pid and pid.isdigit() else None,
        )


_FROZEN: Settings | None = None


def freeze(env: Mapping[str, str] | None = None) -> Settings:
    """Read the environment once, at an entry point; :func:`current` returns this from now on."""
    global _FROZEN
    _FROZEN = Settings.read(os.environ if env is None else env)
    return _FROZEN


def thaw() -> None:
    """Back to reading the environment on each call (an entry point that returns)."""
    global _FROZEN
    _FROZEN = None


def current() -> Settings:
    return _FROZEN if _FROZEN is not None else Settings.read(os.environ)
