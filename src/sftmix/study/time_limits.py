"""SLURM time limits, checked before they reach ``sbatch``.

sbatch takes ``minutes``, ``minutes:seconds``, ``hours:minutes:seconds``,
``days-hours``, ``days-hours:minutes`` and ``days-hours:minutes:seconds``. It reads
``0`` as "no limit" and does not bound the fields after the first (``99:99:99`` is
100 h 40 min 39 s to it); both are refused here, being almost always typing
mistakes, and a job without a limit would never get the warning a stage
checkpoints on.
"""

from __future__ import annotations

import re

_FORMS = "90 (minutes), '45:00' (minutes:seconds), '1:30:00', '2-00' (days-hours), '2-12:00' or '2-00:00:00'"
_DAYS = re.compile(r"^(\d+)-(\d+)(?::(\d+))?(?::(\d+))?$")
_CLOCK = re.compile(r"^(\d+)(?::(\d+))?(?::(\d+))?$")


def check_time(value: str | int | None) -> str | None:
    """``value`` as sbatch's ``--time`` text; a ValueError says what was expected."""
    if value is None:
        return None
    text = str(value).strip()
    if isinstance(value, bool) or not isinstance(value, str | int) or time_seconds(text) is None:
        raise ValueError(f"a SLURM time limit such as {_FORMS}")
    if time_seconds(text) == 0:
        raise ValueError(f"a positive SLURM time limit such as {_FORMS} (to SLURM, 0 is no limit)")
    return text


def time_seconds(text: str) -> int | None:
    """Seconds of a SLURM time limit; None for text that is not one (or has a minute or second
    field of 60 or more, or an hour field of 24 or more after a day count)."""
    if m := _DAYS.match(text):
        days, hours, minutes, seconds = (int(g) if g else 0 for g in m.groups())
        if hours >= 24 or minutes >= 60 or seconds >= 60:
            return None
        return ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    if m := _CLOCK.match(text):
        parts = [int(g) for g in m.groups() if g is not None]
        if any(p >= 60 for p in parts[1:]):
            return None
        if len(parts) == 3:  # hours:minutes:seconds
            return (parts[0] * 60 + parts[1]) * 60 + parts[2]
        return parts[0] * 60 + (parts[1] if len(parts) == 2 else 0)  # minutes[:seconds]
    return None
