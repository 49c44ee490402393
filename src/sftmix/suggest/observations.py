"""A study directory's completed runs as observations for the response model.

Each run's features come from the planner's recipes of its stages (so runs of
any design -- scaling, mixed, ratio, strategies, free-form -- count), its
scores from the results store: the headline metric of each of the ability's
suites (their mean where an ability has several), pooled over seeds, with the
evaluation error taken from the 95% interval. Only runs with a score for every
ability are used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sftmix.errors import SftmixError
from sftmix.report.data import Z95, StudyResults, load_results, run_group
from sftmix.study.config import StudyConfig
from sftmix.study.plan import Plan, build_plan
from sftmix.suggest.composition import features_of
from sftmix.suggest.model import Observation

log = logging.getLogger(__name__)


@dataclass
class SourceSizes:
    """Each ability's number of examples and mean tokens per example (from the data layer)."""

    examples: dict[str, int]
    tokens_per_example: dict[str, float]
    exact: bool


def source_sizes(study: StudyConfig, tokenizer: str | None = None) -> SourceSizes:
    from sftmix.study.cost import source_stats

    tok = None
    if tokenizer is not None:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(tokenizer)
    stats = source_stats(Plan(study), tok)
    return SourceSizes({a: n for a, (n, _) in stats.items()}, {a: m for a, (_, m) in stats.items()},
                       tok is not None)


def observations(res: StudyResults, plan: Plan, sizes: dict[str, int], model: str | None = None,
                 runs: set[str] | None = None) -> list[Observation]:
    """One observation per run (seeds pooled) of ``model`` (default: the study's first model).

    ``runs`` keeps only the named runs (names without the seed, as in the report).
    """
    model = model or res.study.models[0].name
    if model not in {m.name for m in res.study.models}:
        raise SftmixError(f"--model: {model!r} is not one of the study's models "
                          f"({', '.join(m.name for m in res.study.models)})")
    chains = {}
    for node in plan.runs:
        if node.model == model:
            chains.setdefault(run_group(node.name), [plan.stages[k].recipe for k in node.stages])
    primary = res.primary
    primary = primary[primary["model"] == model]
    abilities = res.abilities
    out = []
    for group, part in primary.groupby("run", sort=False):
        if runs is not None and group not in runs:
            continue
        if group not in chains or not chains[group]:
            continue  # a run of an earlier version of the study, or the base model
        scores, se = {}, {}
        for ability in abilities:
            rows = part[part["ability"] == ability]
            if rows.empty:
                break
            values = rows["value"].astype(float)
            halves = [(h - lo) / 2 / Z95 for lo, h in zip(rows["ci_low"], rows["ci_high"], strict=True)
                      if lo is not None and h is not None and lo == lo and h == h]
            scores[ability] = float(values.mean())
            se[ability] = (sum(x * x for x in halves) ** 0.5 / len(rows)) if halves else 0.0
        else:
            out.append(Observation(str(group), features_of(chains[group], sizes), scores, se))
    log.info("%d runs with every ability's score", len(out))
    return out


def study_observations(study_dir: Path, model: str | None = None, runs: set[str] | None = None,
                       tokenizer: str | None = None, sizes: SourceSizes | None = None
                       ) -> tuple[StudyResults, SourceSizes, list[Observation]]:
    res = load_results(study_dir)
    plan = build_plan(res.study, hash_files=False)
    sizes = sizes or source_sizes(res.study, tokenizer)
    return res, sizes, observations(res, plan, sizes.examples, model, runs)
