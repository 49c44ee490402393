"""The evaluation task interface shared by every benchmark.

A task turns its benchmark into :class:`EvalItem` prompts, says how to generate
for them (:class:`GenerationSpec`), and scores the completions into
:class:`ItemResult` rows. The runner (``sftmix.eval.runner``) does the
generation, writes the per-item JSONL and the summary with intervals. Tasks
whose protocol is not "one prompt, then score" (MT-Bench: two turns and a
judge) override :meth:`Task.evaluate`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sftmix.data.records import Message
from sftmix.registry import Registry


@dataclass(frozen=True)
class Metric:
    """A per-item metric; the summary is its mean over items, with a bootstrap interval."""

    name: str
    higher_is_better: bool = True
    low: float = 0.0
    high: float = 1.0


@dataclass
class EvalItem:
    id: str
    # Chat messages (rendered with the model's training chat template) or raw text
    # (few-shot prompts in the lm-evaluation-harness style are plain text).
    prompt: list[Message] | str
    reference: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GenerationSpec:
    max_new_tokens: int = 512
    stop: tuple[str, ...] = ()
    temperature: float = 0.0  # 0 means greedy
    top_p: float = 1.0
    n: int = 1  # samples per prompt (pass@k needs n >= k)
    seed: int = 0


@dataclass
class ItemResult:
    id: str
    prompt: str
    completions: list[str]
    extracted: list[Any]
    verdicts: list[Any]  # per completion: True/False or a number
    metrics: dict[str, float]  # per-item values of the task's metrics, e.g. {"accuracy": 1.0}
    reason: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "prompt": self.prompt,
            "completions": self.completions,
            "extracted": self.extracted,
            "verdicts": self.verdicts,
            "metrics": self.metrics,
            "reason": self.reason,
            "metadata": self.metadata,
        }


# generate(prompts, spec) -> completions (one list of spec.n strings per prompt).
# Prompts are chat message lists or raw strings, as in EvalItem.prompt.
GenerateFn = Callable[[Sequence[list[Message] | str], GenerationSpec], list[list[str]]]


class Task(ABC):
    name: str
    ability: str  # maths / code / general / any user-named ability
    metrics: tuple[Metric, ...]

    @abstractmethod
    def items(self, limit: int | None = None) -> list[EvalItem]:
        """The benchmark's items, in a fixed order (``limit`` takes the first ones)."""

    @abstractmethod
    def generation(self) -> GenerationSpec:
        """How completions are generated for this task."""

    @abstractmethod
    def score(self, items: Sequence[EvalItem], completions: Sequence[list[str]]) -> list[ItemResult]:
        """Score the completions of every item (batched, so code can run in parallel)."""

    def preflight(self) -> None:
        """Raise a ConfigError for a setting that would make the run fail (checked before loading)."""
        return None

    def incomplete(self, results: Sequence[ItemResult]) -> str | None:
        """Why these results cannot be published as complete (None: they can).

        A task whose scores come from a service (a judge) says here when the
        service did not answer, so that the evaluation is retried, not stored.
        """
        return None

    def evaluate(self, generate: GenerateFn, limit: int | None = None) -> list[ItemResult]:
        items = self.items(limit)
        completions = generate([it.prompt for it in items], self.generation())
        return self.score(items, completions)


# Factories taking keyword options (paths, shots, limit, ...) and returning a Task.
TASKS: Registry[Callable[..., Task]] = Registry("evaluation suite", discover="sftmix.eval.tasks")
