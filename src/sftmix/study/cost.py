"""What a plan costs in training tokens, against running every run on its own.

Each ability's source is read once (with the data layer) for its number of
examples and its mean length; a stage's examples follow from its recipe
(nested amounts, replay) and its tokens from the mean length times its epochs,
or from ``max_steps`` when that stops the stage first.
Lengths are measured with a real tokenizer when one is given, otherwise
estimated at four characters per token (said so in the output).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sftmix.study.plan import Plan, Recipe
from sftmix.train.config import TrainSettings

CHARS_PER_TOKEN = 4.0
SAMPLE = 500


@dataclass
class Cost:
    plan_tokens: float
    naive_tokens: float
    exact: bool  # measured with a tokenizer (else estimated from characters)
    stage_tokens: dict[str, float]


def source_stats(plan: Plan, tokenizer: Any = None) -> dict[str, tuple[int, float]]:
    """ability -> (examples, mean tokens per example)."""
    from sftmix.data.sources import load_source

    stats = {}
    for ability, cfg in plan.study.abilities.items():
        examples = load_source(cfg.data.named(ability)).examples
        n = len(examples)
        step = max(1, n // SAMPLE)
        sample = [examples[i] for i in range(0, n, step)]
        if tokenizer is not None:
            lengths = [len(tokenizer("".join(m.content for m in ex.messages))["input_ids"]) for ex in sample]
        else:
            lengths = [sum(len(m.content) for m in ex.messages) / CHARS_PER_TOKEN for ex in sample]
        stats[ability] = (n, sum(lengths) / len(lengths) if lengths else 0.0)
    return stats


def _recipe_size(recipe: Recipe, stats: dict[str, tuple[int, float]]) -> tuple[float, float]:
    """(examples, tokens) of one pass over a recipe's data."""
    from sftmix.data.sampling import amount_count

    examples = tokens = 0.0
    for part in recipe.parts:
        n, mean = stats[part.ability]
        count = amount_count(n, part.amount, part.kind)  # type: ignore[arg-type]
        examples += count
        tokens += count * mean
    if recipe.replay is not None:
        more, more_tokens = _recipe_size(recipe.replay[0], stats)
        examples += recipe.replay[1] * more
        tokens += recipe.replay[1] * more_tokens
    return examples, tokens


def stage_tokens(recipe: Recipe, settings: TrainSettings, stats: dict[str, tuple[int, float]]) -> float:
    """Tokens a stage trains on: its epochs over its data, or fewer when ``max_steps`` stops it.

    A step takes ``global_batch_size`` rows: with packing a row holds up to ``max_length``
    tokens, without packing one example.
    """
    examples, tokens = _recipe_size(recipe, stats)
    total = tokens * settings.epochs
    if settings.max_steps is not None and examples:
        row = settings.max_length if settings.packing else tokens / examples
        total = min(total, settings.max_steps * settings.global_batch_size * row)
    return total


def plan_cost(plan: Plan, tokenizer_path: str | Path | None = None) -> Cost:
    tokenizer = None
    if tokenizer_path is not None:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    stats = source_stats(plan, tokenizer)
    per_stage = {}
    for key, node in plan.stages.items():
        per_stage[key] = stage_tokens(node.recipe, node.training, stats)
    naive = sum(per_stage[k] for run in plan.runs for k in run.stages)
    return Cost(sum(per_stage.values()), naive, tokenizer is not None, per_stage)
