"""Study directories with known results, built with the real planner and results store.

Every evaluation of the plan gets a ``summary.json`` like the evaluation runner
writes, with a value derived from the evaluation's key (so that merged work --
DMT's shared stage 1, RQ2's full mixture being RQ4's multi-task -- carries one
value, as in a real study), and the store records it through ``record_eval``.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sftmix.artifacts import building
from sftmix.config import dump_yaml
from sftmix.report.build import Report, build_report, write_report
from sftmix.results.data import load_results
from sftmix.study.config import StudyConfig
from sftmix.study.cost import plan_cost
from sftmix.study.plan import Plan, build_plan
from sftmix.study.store import STORE_NAME, ResultsStore

MT_CATEGORIES = ("writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities")
PRIMARY = {"gsm8k": "accuracy", "humaneval": "pass@1", "mtbench": "score", "ifeval": "prompt_level_strict"}


def study_dict(data: Path, designs: dict[str, Any], seeds: list[int] | None = None,
               abilities: dict[str, Any] | None = None, runs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "name": "known",
        "abilities": abilities or {
            "maths": {"data": {"path": str(data / "gsm8k/train.jsonl"), "format": "gsm8k"}, "evals": ["gsm8k"]},
            "code": {"data": {"path": str(data / "code/code_alpaca_2k.json"), "format": "alpaca",
                              "on_error": "skip"},
                     "evals": ["humaneval"]},
            "general": {"data": {"path": str(data / "general/sharegpt_dpo_chosen.json"), "format": "sharegpt"},
                        "evals": ["mtbench"]},
        },
        "models": [{"name": "m", "path": "smollm2"}],
        "seeds": seeds or [0],
        "designs": designs,
        "runs": runs or [],
    }


ALL_DESIGNS = {
    "scaling": {"fractions": [1, "1/4", "1/16"]},
    "mixed": {"fractions": [1, "1/4", "1/16"]},
    "ratio": {"setups": ["a", "b", "c"], "ks": [1, "1/4", "1/16"], "general_fraction": "1/16"},
    "strategies": {"dmt": {"ks": [0, "1/256", "1/16"]}},
}


def known_value(eval_key: str, suite: str) -> tuple[float, float, float]:
    """The value and 95% interval recorded for an evaluation: a function of its key."""
    rng = random.Random(eval_key)
    if suite == "mtbench":
        v = round(rng.uniform(2.0, 8.0), 3)
        return v, round(v - 0.4, 3), round(v + 0.4, 3)
    v = round(rng.uniform(0.1, 0.9), 4)
    return v, round(v - 0.05, 4), round(v + 0.05, 4)


def summary(eval_key: str, suite: str, categories: bool = True,
            value: tuple[float, float, float] | None = None) -> dict[str, Any]:
    value, low, high = value or known_value(eval_key, suite)
    primary = PRIMARY[suite]
    metrics = {primary: {"mean": value, "ci_low": low, "ci_high": high, "n": 80, "higher_is_better": True}}
    if suite == "mtbench" and categories:
        rng = random.Random(eval_key + "/cat")
        for cat in MT_CATEGORIES:
            metrics[f"score_{cat}"] = {"mean": round(rng.uniform(1, 10), 2), "n": 10, "higher_is_better": True}
        for turn in (1, 2):  # per-turn scores, as MT-Bench records them: not categories
            metrics[f"score_turn{turn}"] = {"mean": value, "n": 80, "higher_is_better": True}
    return {"suite": suite, "primary": primary, "metrics": metrics}


@dataclass
class KnownStudy:
    dir: Path
    plan: Plan

    def value(self, run: str, suite: str) -> tuple[float, float, float]:
        """The recorded (value, low, high) of a seeded run's evaluation on a suite."""
        node = next(r for r in self.plan.runs if r.name == run)
        key = next(k for k in node.evals if self.plan.evals[k].suite == suite)
        return known_value(key, suite)


def make_study(tmp: Path, config: dict[str, Any], categories: bool = True,
               skip: set[str] | None = None,
               values: dict[tuple[str, str], tuple[float, float, float]] | None = None) -> KnownStudy:
    """A study directory: study.yaml, and a store holding the plan and every evaluation's result.

    ``values`` sets (value, ci_low, ci_high) for (seeded run name, suite); other
    evaluations get :func:`known_value`.
    """
    study = StudyConfig.model_validate(config)
    plan = build_plan(study)
    plan.cost = plan_cost(plan)  # recorded as a run records it: each source's size
    study_dir = tmp / study.name
    study_dir.mkdir(parents=True)
    (study_dir / "study.yaml").write_text(dump_yaml(study))
    store = ResultsStore(study_dir / STORE_NAME)
    store.record_plan(plan)
    for key, ev in plan.evals.items():
        if skip and ev.suite in skip:
            continue
        out = study_dir / "evals" / key
        given = next((values[(r.name, ev.suite)] for r in plan.runs
                      if key in r.evals and (r.name, ev.suite) in (values or {})), None)
        with building(out) as tmp_out:
            (tmp_out / "summary.json").write_text(json.dumps(summary(key, ev.suite, categories, given)))
        store.record_eval(key, out)
    store.close()
    return KnownStudy(study_dir, plan)


@pytest.fixture(scope="session")
def full_study(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> KnownStudy:
    """Every design of the reference study, one model, one seed."""
    return make_study(tmp_path_factory.mktemp("full"), study_dict(shared_data, ALL_DESIGNS))


@pytest.fixture(scope="session")
def full_report(full_study: KnownStudy, tmp_path_factory: pytest.TempPathFactory) -> tuple[Report, Path, Path]:
    """The report of :func:`full_study` (no t-SNE), written once: (report, html, markdown)."""
    report = build_report(load_results(full_study.dir), tsne_queries=0)
    html, md = write_report(report, tmp_path_factory.mktemp("full-report"))
    return report, html, md
