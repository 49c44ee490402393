"""SLURM time limits, checked before they reach ``sbatch``."""

from __future__ import annotations

import re

# sbatch --time: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS.
_TIME = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$")


def check_time(value: str | int | None) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if not _TIME.match(text):
        raise ValueError(f"expected a SLURM time limit such as 90, '1:30:00' or '2-00:00:00', found {value!r}")
    return text
