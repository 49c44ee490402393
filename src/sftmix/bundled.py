"""Where the benchmark files shipped inside the sftmix package lie (``resources/benchmarks``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def bundled_dir() -> Path:
    """The folder of benchmark files shipped inside the sftmix package, laid out like
    ``shared/data`` (``gsm8k/test.jsonl``, ``eval/humaneval/HumanEval.jsonl``, ...)."""
    return Path(str(resources.files("sftmix") / "resources" / "benchmarks"))
