"""What a plan costs in training tokens, against running every run on its own.

Each ability's source is read once (with the data layer) for its number of
examples and its mean length (:class:`SourceStats`); a stage's examples follow
from its recipe (nested amounts, replay: :meth:`Recipe.counts`) and its tokens
from the mean lengths times its epochs, or from ``max_steps`` when that stops the
stage first. Lengths are measured with a real tokenizer when one is given,
otherwise estimated at four characters per token (said so in the output).

``sftmix plan`` prints it, the scheduler orders jobs by it, the results store
records it, and ``sftmix optimise`` counts its budget with it: one estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sftmix.study.config import StudyConfig
from sftmix.study.plan import Plan, Recipe
from sftmix.train.config import TrainSettings

CHARS_PER_TOKEN = 4.0
SAMPLE = 500


@dataclass(frozen=True)
class SourceStats:
    """An ability's source: its examples and their mean length in tokens."""

    examples: int
    tokens_per_example: float


@dataclass
class Cost:
    plan_tokens: float
    naive_tokens: float
    exact: bool  # measured with a tokenizer (else estimated from characters)
    stage_tokens: dict[str, float]  # stage key -> tokens
    sources: dict[str, SourceStats]

    def stage_examples(self, recipe: Recipe) -> dict[str, int]:
        return recipe.counts({a: s.examples for a, s in self.sources.items()})


def source_stats(study: StudyConfig, tokenizer: Any = None) -> dict[str, SourceStats]:
    """Ability -> its source's statistics (reading, and so validating, every source)."""
    from sftmix.data.sources import load_source

    stats = {}
    for ability, cfg in study.abilities.items():
        examples = load_source(cfg.data.named(ability)).examples
        n = len(examples)
        step = max(1, n // SAMPLE)
        sample = [examples[i] for i in range(0, n, step)]
        if tokenizer is not None:
            lengths = [len(tokenizer("".join(m.content for m in ex.messages))["input_ids"]) for ex in sample]
        else:
            lengths = [sum(len(m.content) for m in ex.messages) / CHARS_PER_TOKEN for ex in sample]
        stats[ability] = SourceStats(n, sum(lengths) / len(lengths) if lengths else 0.0)
    return stats


def stage_tokens(recipe: Recipe, settings: TrainSettings, stats: dict[str, SourceStats]) -> float:
    """Tokens a stage trains on: its epochs over its data, or fewer when ``max_steps`` stops it.

    A step takes ``global_batch_size`` rows: with packing a row holds up to ``max_length``
    tokens, without packing one example.
    """
    counts = recipe.counts({a: s.examples for a, s in stats.items()})
    examples = sum(counts.values())
    tokens = sum(c * stats[a].tokens_per_example for a, c in counts.items())
    total = tokens * settings.epochs
    if settings.max_steps is not None and examples:
        row = settings.max_length if settings.packing else tokens / examples
        total = min(total, settings.max_steps * settings.global_batch_size * row)
    return total


def plan_cost(plan: Plan, tokenizer_path: str | Path | None = None,
              stats: dict[str, SourceStats] | None = None) -> Cost:
    """The plan's training tokens; ``stats`` saves reading the sources again."""
    tokenizer = None
    if tokenizer_path is not None:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    stats = stats if stats is not None else source_stats(plan.study, tokenizer)
    per_stage = {key: stage_tokens(node.recipe, node.training, stats) for key, node in plan.stages.items()}
    naive = sum(per_stage[k] for run in plan.runs for k in run.stages)
    return Cost(sum(per_stage.values()), naive, tokenizer is not None, per_stage, stats)
