"""Typed job specs: what each job builds, from what, and the one hash that names it.

The planner builds one spec per artefact; the job file holds it; the worker reads
it back with validation. A spec holds everything that determines its artefact,
resolved (every default written out), so that writing a default in the study
file never changes a key, and nothing else: labels and resources live on the job.
Paths to artefacts of the study are relative to the study directory
(``stages/s-...``), so a study directory can be moved or mounted elsewhere.

:func:`spec_key` is the only place where an artefact's key is computed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from sftmix.config import StrictModel
from sftmix.data.spec import SourceSpec
from sftmix.hashing import config_hash
from sftmix.train.config import ModelSource, TrainSettings

# The layout of a study directory these specs belong to; an older one is recognised by it.
LAYOUT = 2


class BaseModelSpec(StrictModel):
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


class MixtureSpec(StrictModel):
    parts: list[MixturePart] = Field(min_length=1)
    seed: int
    replay: Replay | None = None


class StageSpec(StrictModel):
    """Train from ``parent``'s weights on ``mixture`` with ``training``."""

    parent: str  # a stage or base model folder of the study (relative), or a model folder
    mixture: str
    training: TrainSettings


class SuiteSpec(StrictModel):
    """One evaluation suite with its options (secrets removed)."""

    suite: str
    options: dict[str, Any] = Field(default_factory=dict)


class EvalSpec(StrictModel):
    """Evaluate a model on one suite (one job per suite: a failing suite loses no other)."""

    model: str  # the evaluated model's folder (relative to the study directory, or absolute)
    suite: SuiteSpec


JobSpec = BaseModelSpec | MixtureSpec | StageSpec | EvalSpec


# Settings that change how a step is computed, not what it computes (as in
# ``sftmix.train.stage.stage_key``): a stage keeps its key whatever kernel trains it.
COMPUTE_ONLY = frozenset({"attention", "compile"})


def spec_key(spec: StrictModel) -> str:
    """The key of what ``spec`` produces: the hash of the resolved spec."""
    data = spec.model_dump(mode="json")
    if isinstance(spec, StageSpec):
        data["training"] = {k: v for k, v in data["training"].items() if k not in COMPUTE_ONLY}
    return config_hash(data)


class JobKind(StrictModel):
    """One kind of job: its spec, where its artefacts live, what runs it (``sftmix.study.tasks``)."""

    name: str
    folder: str
    prefix: str
    spec: type[StrictModel]
    task: str


# The one table of job kinds, in the order a study's work flows.
KINDS: dict[str, JobKind] = {k.name: k for k in (
    JobKind(name="model", folder="models", prefix="b-", spec=BaseModelSpec, task="make_model"),
    JobKind(name="mixture", folder="mixtures", prefix="m-", spec=MixtureSpec, task="make_mixture"),
    JobKind(name="stage", folder="stages", prefix="s-", spec=StageSpec, task="train_stage"),
    JobKind(name="eval", folder="evals", prefix="e-", spec=EvalSpec, task="evaluate"),
)}


def artefact(kind: str, key: str) -> str:
    """An artefact's folder relative to the study directory; ``key`` carries its prefix."""
    return f"{KINDS[kind].folder}/{key}"
