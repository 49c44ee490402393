"""What a plan costs in training tokens, against running every run on its own.

Each ability's source is read once (with the data layer) for its number of
examples and its mean length; a stage's examples follow from its recipe
(nested amounts, replay) and its tokens from the mean length times its epochs.
Lengths are measured with a real tokenizer when one is given, otherwise
estimated at four characters per token (said so in the output).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sftmix.study.plan import Plan, Recipe

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


def _recipe_tokens(recipe: Recipe, stats: dict[str, tuple[int, float]]) -> float:
    from sftmix.data.sampling import amount_count

    total = 0.0
    for part in recipe.parts:
        n, mean = stats[part.ability]
        total += amount_count(n, part.amount, part.kind) * mean  # type: ignore[arg-type]
    if recipe.replay is not None:
        total += recipe.replay[1] * _recipe_tokens(recipe.replay[0], stats)
    return total


def plan_cost(plan: Plan, tokenizer_path: str | Path | None = None) -> Cost:
    tokenizer = None
    if tokenizer_path is not None:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    stats = source_stats(plan, tokenizer)
    per_stage = {}
    for key, node in plan.stages.items():
        per_stage[key] = _recipe_tokens(node.recipe, stats) * node.training.epochs
    naive = sum(per_stage[k] for run in plan.runs for k in run.stages)
    return Cost(sum(per_stage.values()), naive, tokenizer is not None, per_stage)
