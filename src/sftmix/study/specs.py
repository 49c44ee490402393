"""Typed job specs: what each job builds, from what.

The planner builds one spec per artefact; the job file holds it; the worker reads
it back with validation. A spec holds everything that determines its artefact,
resolved (every default written out), so that writing a default in the study
file never changes a key, and nothing else: labels live on the job. Its
``identity()`` is what the artefact's key hashes (``sftmix.study.kinds.job_key``).
Paths to artefacts of the study are relative to the study directory
(``stages/s-...``), so a study directory can be moved or mounted elsewhere.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from sftmix.config import StrictModel
from sftmix.data.spec import SourceSpec
from sftmix.train.config import ModelSource, TrainSettings

# The layout of a study directory these specs belong to; an older one is recognised by it.
# 3: keys salted (``sftmix.keys``), folders fingerprinted by their files' names and sizes.
LAYOUT = 3


class Spec(StrictModel):
    """A job's spec; ``identity()`` is what its artefact's key is made from."""

    def identity(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class BaseModelSpec(Spec):
    """Make a base model a Hugging Face folder: a GGUF import, or a tiny Llama whose
    tokenizer is trained on ``texts`` (the study's training sources)."""

    model: ModelSource
    texts: list[SourceSpec] = Field(default_factory=list)
    texts_sha256: list[str | None] = Field(default_factory=list)


class MixturePart(StrictModel):
    """An ability's source at a fraction or at an absolute count of examples."""

    source: SourceSpec
    sha256: str | None = None  # of the source's file (None: a hub dataset, or not hashed)
    kind: Literal["fraction", "count"] = "fraction"
    amount: float


class Replay(StrictModel):
    """A nested fraction of an earlier mixture (DMT's replay of specialist data)."""

    mixture: str  # the mixture's folder, relative to the study directory
    fraction: float = Field(ge=0, le=1)


class MixtureSpec(Spec):
    parts: list[MixturePart] = Field(min_length=1)
    seed: int
    replay: Replay | None = None


class StageSpec(Spec):
    """Train from ``parent``'s weights on ``mixture`` with ``training``."""

    parent: str  # a stage or base model folder of the study (relative), or a model folder
    mixture: str
    training: TrainSettings

    def identity(self) -> dict[str, Any]:
        # A stage keeps its key whatever kernel trains it (``TrainSettings.identity``).
        return {**self.model_dump(mode="json"), "training": self.training.identity()}


class SuiteSpec(StrictModel):
    """One evaluation suite with its options (secrets removed)."""

    suite: str
    options: dict[str, Any] = Field(default_factory=dict)


class EvalSpec(Spec):
    """Evaluate a model on one suite (one job per suite: a failing suite loses no other)."""

    model: str  # the evaluated model's folder (relative to the study directory, or absolute)
    suite: SuiteSpec


JobSpec = BaseModelSpec | MixtureSpec | StageSpec | EvalSpec
