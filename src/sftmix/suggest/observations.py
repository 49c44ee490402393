"""A study directory's completed runs as observations for the response model.

Each run's features come from what the study recorded its stages trained on (so
runs of any design -- scaling, mixed, ratio, strategies, free-form -- count),
its scores from the results: the headline metric of each of the ability's suites
as a scaled score (on the metric's range, 0 its worst end and 1 its best, as the
report's trade-off scales it; their mean where an ability has several), pooled
over seeds, with the evaluation error taken from the 95% interval on the same
scale. Only runs with a score for every
ability are used. Nothing here plans the study or reads its data
(:mod:`sftmix.results`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

from sftmix.errors import SftmixError
from sftmix.results.data import StudyResults, load_results
from sftmix.results.pool import Z95, metric_range, run_group, scaled
from sftmix.suggest.composition import features_of_stages
from sftmix.suggest.model import Observation

log = logging.getLogger(__name__)


@dataclass
class SourceSizes:
    """Each ability's number of examples and mean tokens per example."""

    examples: dict[str, int]
    tokens_per_example: dict[str, float]
    exact: bool


def recorded_sizes(res: StudyResults) -> SourceSizes:
    """The source sizes the study recorded when it ran."""
    missing = [a for a in res.abilities if a not in res.sources]
    if missing:
        raise SftmixError(f"{res.study_dir}: the results store records no size for the source of "
                          f"{', '.join(missing)} (a study directory of an earlier sftmix); run the study "
                          "again with this version ('sftmix run'), which records them and reuses every "
                          "complete artefact")
    return SourceSizes({a: res.sources[a].examples for a in res.abilities},
                       {a: res.sources[a].tokens_per_example for a in res.abilities},
                       all(res.sources[a].exact for a in res.abilities))


def observations(res: StudyResults, model: str | None = None,
                 runs: set[str] | None = None) -> list[Observation]:
    """One observation per run (seeds pooled) of ``model`` (default: the study's first model).

    ``runs`` keeps only the named runs (names without the seed, as in the report).
    """
    model = model or res.study.models[0].name
    if model not in {m.name for m in res.study.models}:
        raise SftmixError(f"--model: {model!r} is not one of the study's models "
                          f"({', '.join(m.name for m in res.study.models)})")
    chains = res.chains(model)
    tokens = _run_tokens(res, model)
    primary = res.primary
    primary = primary[primary["model"] == model]
    abilities = res.abilities
    out = []
    for group, part in primary.groupby("run", sort=False):
        if runs is not None and group not in runs:
            continue
        if not chains.get(str(group)):
            continue  # a run of an earlier version of the study, or the base model
        scores, se = {}, {}
        for ability in abilities:
            rows = part[part["ability"] == ability]
            if rows.empty:
                break
            values, halves = [], []
            for row in rows.itertuples():
                lo, hi = metric_range(str(row.suite), str(row.metric))
                span = hi - lo if hi > lo and math.isfinite(hi - lo) else 1.0
                values.append(scaled(float(row.value), str(row.suite), str(row.metric), bool(row.higher_is_better)))
                if row.ci_low is not None and row.ci_high is not None and row.ci_low == row.ci_low \
                        and row.ci_high == row.ci_high:
                    halves.append((float(row.ci_high) - float(row.ci_low)) / 2 / Z95 / span)
            scores[ability] = sum(values) / len(values)
            se[ability] = (sum(x * x for x in halves) ** 0.5 / len(rows)) if halves else 0.0
        else:
            out.append(Observation(str(group), features_of_stages(chains[str(group)], abilities), scores, se,
                                   tokens.get(str(group))))
    log.debug("%d runs with every ability's score", len(out))
    return out


def _run_tokens(res: StudyResults, model: str) -> dict[str, float]:
    """Run (without its seed) -> the training tokens of its stages, as the study recorded them
    (what the run costs trained from scratch; a stage shared with another run counts in both)."""
    out: dict[str, float] = {}
    for run, keys in res.run_stages.items():
        group = run_group(run)
        if group.endswith(f"/{model}") and keys and all(k in res.stage_data for k in keys):
            out.setdefault(group, sum(res.stage_data[k][1] for k in keys))
    return out


def study_observations(study_dir: Path, model: str | None = None, runs: set[str] | None = None
                       ) -> tuple[StudyResults, SourceSizes, list[Observation]]:
    res = load_results(study_dir)
    return res, recorded_sizes(res), observations(res, model, runs)
