"""``sftmix run`` asks before a long study: over a threshold the user sets, it wants ``--yes``.

The estimate weighed is :attr:`sftmix.study.estimate.Estimate.gate_seconds` -- the wall time
on this machine, the jobs' total time on a cluster. On a terminal ``run`` asks; elsewhere
(a script, CI, ``nohup``) it stops before any work with exit status 2 and says which flag
starts it.
"""

from __future__ import annotations

import re
import sys

from sftmix.errors import ConfigError, SftmixError
from sftmix.study.estimate import Estimate
from sftmix.study.summary import duration

DEFAULT_THRESHOLD = "1h"
THRESHOLD_ENV = "SFTMIX_ASK_OVER"
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, where: str) -> float:
    """Seconds of ``30m``, ``2h``, ``1.5d``, ``90s``, ``H:MM:SS`` or a number of hours."""
    value = text.strip().lower()
    clock = re.fullmatch(r"(\d+):(\d{1,2})(?::(\d{1,2}))?", value)
    if clock:
        h, m, s = int(clock[1]), int(clock[2]), int(clock[3] or 0)
        return float(h * 3600 + m * 60 + s)
    unit = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|m|min|h|d)?", value)
    if unit is None:
        raise ConfigError(f"{where}: found {text!r}, expected a duration such as 30m, 2h, 1d, "
                          "1:30:00 or a number of hours")
    return float(unit[1]) * _UNITS[unit[2] or "h"]


def threshold(flag: str | None, env: str | None) -> tuple[float, str]:
    """The threshold in seconds and where it was set."""
    if flag is not None:
        return parse_duration(flag, "--ask-over"), "--ask-over"
    if env is not None:
        return parse_duration(env, THRESHOLD_ENV), THRESHOLD_ENV
    return parse_duration(DEFAULT_THRESHOLD, "default"), f"the default, {DEFAULT_THRESHOLD}"


def confirm(est: Estimate, limit: float, set_by: str, yes: bool) -> bool:
    """True to go on. Off a terminal an estimate over ``limit`` without ``yes`` is an error."""
    if yes or est.gate_seconds <= limit:
        return True
    what = "of job time" if est.executor == "slurm" else "of wall time"
    over = (f"the estimate, {duration(est.gate_seconds)} {what}, is over the {duration(limit)} above which "
            f"'sftmix run' asks first ({set_by})")
    if not sys.stdin.isatty():
        raise SftmixError(f"{over}; nothing was run. Give --yes to run it, or raise the threshold with "
                          f"--ask-over DURATION or {THRESHOLD_ENV}; 'sftmix plan' shows the estimate "
                          "by kind of job and where each rate comes from")
    answer = input(f"{over}. Run it? [y/N] ")
    return answer.strip().lower() in ("y", "yes")
