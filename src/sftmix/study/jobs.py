"""The plan as a graph of jobs: build a mixture, train a stage, run an evaluation.

Every job has a key (the content hash of what it produces), the keys it depends
on, a payload (everything the worker needs, as JSON) and the artefact directory
it publishes. Mixtures are jobs of their own so that a recipe shared by several
stages (or replayed by DMT's stage 2) is built once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sftmix.hashing import config_hash
from sftmix.study.plan import Plan, Recipe

KINDS = ("model", "mixture", "stage", "eval")


@dataclass
class Job:
    key: str
    kind: str
    deps: list[str]
    payload: dict[str, Any]
    out: Path
    label: str
    resources: dict[str, int] = field(default_factory=lambda: {"cpus": 1, "gpus": 0})


def artefact_dir(study_dir: Path, kind: str, key: str) -> Path:
    return study_dir / {"model": "models", "mixture": "mixtures", "stage": "stages", "eval": "evals"}[kind] / key


def build_jobs(plan: Plan, study_dir: Path) -> dict[str, Job]:
    """Jobs in an order where every dependency comes first."""
    study = plan.study
    jobs: dict[str, Job] = {}
    recipe_keys: dict[Recipe, str] = {}

    def mixture(recipe: Recipe, spec: dict[str, Any]) -> str:
        if recipe in recipe_keys:
            return recipe_keys[recipe]
        deps = []
        replay = None
        if recipe.replay is not None:
            replayed = mixture(recipe.replay[0], spec["replay"]["of"])
            deps.append(replayed)
            replay = {"mixture": str(artefact_dir(study_dir, "mixture", replayed)),
                      "fraction": recipe.replay[1]}
        key = "m-" + config_hash(spec)
        recipe_keys[recipe] = key
        jobs[key] = Job(key, "mixture", deps, {"parts": spec["parts"], "seed": spec["seed"], "replay": replay},
                        artefact_dir(study_dir, "mixture", key), recipe.describe())
        return key

    models = {m.name: m for m in study.models}
    model_keys: dict[str, str] = {}
    for m in study.models:
        # The base model as a plain Hugging Face folder: a GGUF import, or a small Llama
        # (and its BPE tokenizer) built from the study's own training texts.
        spec = m.model_dump(mode="json", exclude={"name"})
        payload: dict[str, Any] = {"model": spec}
        if m.tiny is not None:
            payload["texts"] = [a.data.model_dump(mode="json") for a in study.abilities.values()]
        key = "b-" + config_hash(payload)
        model_keys[m.name] = key
        if key not in jobs:
            jobs[key] = Job(key, "model", [], payload, artefact_dir(study_dir, "model", key),
                            f"base model {m.name}")

    def base_dir(name: str) -> str:
        return str(artefact_dir(study_dir, "model", model_keys[name]))

    for key in plan.stage_order():
        node = plan.stages[key]
        mix = mixture(node.recipe, node.spec["data"])
        deps = [mix, f"s-{node.parent}" if node.parent else model_keys[node.model]]
        payload = {
            "model": models[node.model].model_dump(mode="json"),
            "parent": str(artefact_dir(study_dir, "stage", f"s-{node.parent}")) if node.parent
            else base_dir(node.model),
            "mixture": str(artefact_dir(study_dir, "mixture", mix)),
            "training": node.training,
            "label": node.label,
        }
        jobs[f"s-{key}"] = Job(f"s-{key}", "stage", deps, payload,
                               artefact_dir(study_dir, "stage", f"s-{key}"), node.label,
                               {"cpus": 1, "gpus": 1})
    for key, ev in plan.evals.items():
        deps = [f"s-{ev.stage}"] if ev.stage else [model_keys[ev.model]]
        payload = {
            "model": models[ev.model].model_dump(mode="json"),
            "model_dir": str(artefact_dir(study_dir, "stage", f"s-{ev.stage}")) if ev.stage
            else base_dir(ev.model),
            "suite": ev.suite,
            "ability": ev.ability,
            "options": ev.options,
        }
        label = f"{ev.suite} on {plan.stages[ev.stage].label if ev.stage else ev.model + ' (base)'}"
        jobs[f"e-{key}"] = Job(f"e-{key}", "eval", deps, payload,
                               artefact_dir(study_dir, "eval", f"e-{key}"), label, {"cpus": 1, "gpus": 1})
    return jobs
