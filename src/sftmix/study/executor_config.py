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
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from sftmix.config import StrictModel

# sbatch --time: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS.
_TIME = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$")


def _check_time(value: str | int | None) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if not _TIME.match(text):
        raise ValueError(f"expected a SLURM time limit such as 90, '1:30:00' or '2-00:00:00', found {value!r}")
    return text


class JobKindResources(StrictModel):
    """What one kind of job asks SLURM for."""

    cpus: int = Field(1, ge=1, description="CPUs per job (sbatch --cpus-per-task)")
    gpus: int = Field(0, ge=0, description="GPUs per job (sbatch --gpus-per-node)")
    mem_gb: float | None = Field(None, gt=0, description="memory per job; default: the partition's")
    time: str | None = Field(None, description="time limit; default: the executor's 'time'")
    processes: int | None = Field(
        None, ge=1, description="training processes of a stage (accelerate launch); default: one per GPU")
    accelerate_config: str | None = Field(
        None, description="accelerate config file for multi-process stages (FSDP, DeepSpeed)")
    sbatch: dict[str, str | int | bool] = Field(default_factory=dict,
                                                description="extra sbatch options for this kind")

    @field_validator("time", mode="before")
    @classmethod
    def _time(cls, value: str | int | None) -> str | None:
        return _check_time(value)

    @property
    def launch_processes(self) -> int:
        return self.processes if self.processes is not None else max(1, self.gpus)


def _default_kind(**values: int) -> JobKindResources:
    return JobKindResources(**values)  # type: ignore[arg-type]


class ExecutorConfig(StrictModel):
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
    model: JobKindResources = Field(default_factory=lambda: _default_kind(cpus=2))
    mixture: JobKindResources = Field(default_factory=lambda: _default_kind(cpus=2))
    stage: JobKindResources = Field(default_factory=lambda: _default_kind(cpus=4, gpus=1))
    eval: JobKindResources = Field(default_factory=lambda: _default_kind(cpus=4, gpus=1))

    @field_validator("time", mode="before")
    @classmethod
    def _time(cls, value: str | int) -> str | None:
        return _check_time(value)

    @model_validator(mode="after")
    def _known_name(self) -> ExecutorConfig:
        if self.name not in ("local", "slurm"):
            raise ValueError(f"unknown executor {self.name!r}; available: local, slurm")
        return self

    def kind(self, kind: str) -> JobKindResources:
        return getattr(self, kind)

    def resolve_paths(self, base_dir: Path) -> None:
        for kind in ("model", "mixture", "stage", "eval"):
            res = self.kind(kind)
            if res.accelerate_config and not Path(res.accelerate_config).is_absolute():
                res.accelerate_config = str((base_dir / res.accelerate_config).resolve())
