"""The ``executor:`` block of a study file: where its jobs run and what each kind asks for.

```yaml
executor:
  name: slurm                 # or local (the default); --executor on the command line wins
  partition: gpu
  account: my-project
  qos: normal
  time: "24:00:00"            # default time limit of every job (sbatch --time)
  warning_seconds: 300        # a stage gets SIGUSR2 this long before its limit: checkpoint, requeue
  max_requeues: 10            # then it is left to time out
  sbatch: {constraint: a100}  # any other sbatch option, for every job
  setup: ["module load cuda/12.4", "source ~/venvs/sftmix/bin/activate"]
  stage: {gpus: 8, cpus: 32, mem_gb: 400, accelerate_config: configs/train/accelerate/fsdp.yaml}
  eval: {gpus: 1, cpus: 8, mem_gb: 64, time: "2:00:00"}
```

Only the SLURM executor reads more than ``name``; the local executor ignores the rest.

Every value that reaches the sbatch script is checked here, when the study is loaded:
sbatch reads its options line by line, so a control character (a newline above all)
in a value, in an option's name or in a ``setup`` line could add options of its own,
and a ``setup`` line that is itself a ``#SBATCH`` line would be read as one. Such
values are refused, not quoted: no quoting keeps a newline out of a ``#SBATCH`` line,
and ``setup`` lines are shell by design. Time limits must be ones SLURM reads as a
positive limit, and a stage's warning must come before its limit.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, field_validator, model_validator

from sftmix.config import FieldError, StrictModel
from sftmix.study.kinds import KINDS, Resources
from sftmix.study.time_limits import check_time, time_seconds

# An sbatch option's name: letters, digits, '-' and '_' (submitit writes '_' as '-').
_OPTION = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


class ExecutorConfig(StrictModel):
    """Where a study's jobs run (``name``, one of the registered executors) and what each kind
    of job asks a cluster for: a block named after a job kind (``stage:``, ``eval:``, ...)
    replaces that kind's default resources (``sftmix.study.kinds``)."""

    # Blocks named after job kinds are the extra fields, each validated as Resources.
    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, Resources]  # typed extras: each validated (pydantic >= 2.7 reads this annotation)

    name: str = "local"
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time: str = "24:00:00"
    warning_seconds: int = Field(300, ge=0, description="SIGUSR2 this long before a stage's time limit; "
                                                        "0: no warning, the stage is killed at its limit")
    max_requeues: int = Field(10, ge=0, description="times a stage may checkpoint and requeue itself")
    sbatch: dict[str, str | int | bool] = Field(default_factory=dict)
    setup: list[str] = Field(default_factory=list, description="shell lines run before each job")
    python: str | None = Field(None, description="the Python that runs jobs; default: this one")

    @field_validator("time", mode="before")
    @classmethod
    def _time(cls, value: str | int) -> str | None:
        return check_time(value)

    @field_validator("name")
    @classmethod
    def _known_name(cls, value: str) -> str:
        from sftmix.study.executor import EXECUTORS

        if value not in EXECUTORS:
            raise ValueError(f"an executor's name; available: {', '.join(EXECUTORS.names())}")
        return value

    @model_validator(mode="after")
    def _known_kinds(self) -> ExecutorConfig:
        for key, res in (self.__pydantic_extra__ or {}).items():
            if key not in KINDS:
                raise FieldError((key,), key, "an executor setting or a job kind's resources; "
                                 f"job kinds: {', '.join(KINDS)} (check the spelling)")
            if res.nodes > 1 and key != "stage":  # one task per node would run the job twice
                raise FieldError((key, "nodes"), res.nodes, "1: only a training stage runs on several nodes")
        return self

    @model_validator(mode="after")
    def _script_text(self) -> ExecutorConfig:
        for name in ("partition", "account", "qos", "python"):
            _check_text((name,), getattr(self, name))
        _check_options(("sbatch",), self.sbatch)
        for i, line in enumerate(self.setup):
            _check_text(("setup", i), line, allow_tab=True)
            if line.lstrip().upper().startswith("#SBATCH"):
                raise FieldError(("setup", i), line, "a shell line; sbatch would read this one as an "
                                 "option (put sbatch options under 'sbatch:')")
        for kind, res in (self.__pydantic_extra__ or {}).items():
            _check_options((kind, "sbatch"), res.sbatch)
        return self

    @model_validator(mode="after")
    def _warning_before_limit(self) -> ExecutorConfig:
        limit = self.kind("stage").time or self.time
        seconds = time_seconds(limit)
        if seconds is not None and self.warning_seconds >= seconds:
            raise FieldError(("warning_seconds",), self.warning_seconds,
                             f"fewer seconds than a stage's time limit, {limit!r} ({seconds} s): the "
                             "warning to checkpoint comes this long before the limit (0: no warning)")
        return self

    def kind(self, kind: str) -> Resources:
        """What a job of ``kind`` asks for: the block written for it, else the kind's default."""
        given = (self.__pydantic_extra__ or {}).get(kind)
        return given if given is not None else KINDS[kind].resources

    def resolve_paths(self, base_dir: Path) -> None:
        for res in (self.__pydantic_extra__ or {}).values():
            if res.accelerate_config and not Path(res.accelerate_config).is_absolute():
                res.accelerate_config = str((base_dir / res.accelerate_config).resolve())


def _check_text(loc: tuple[Any, ...], value: Any, allow_tab: bool = False) -> None:
    """No control character in text that reaches the sbatch script."""
    if not isinstance(value, str):
        return
    found = sorted({c for c in value if unicodedata.category(c) == "Cc" and not (allow_tab and c == "\t")})
    if found:
        shown = ", ".join(repr(c) for c in found)
        raise FieldError(loc, value, f"text without control characters (found {shown}): a newline "
                         "would add lines of its own to the sbatch script")


def _check_options(loc: tuple[Any, ...], options: dict[str, str | int | bool]) -> None:
    """sbatch options: a plain option name each, and a value without control characters."""
    for key, value in options.items():
        if not _OPTION.match(key):
            raise FieldError((*loc, key), key, "an sbatch option's name, such as 'constraint' or "
                             "'mail-type' (letters, digits, '-' and '_')")
        if value is False:
            raise FieldError((*loc, key), value, "true for an option without a value; leave an "
                             "option out rather than setting it to false")
        _check_text((*loc, key), value)
