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

from sftmix.artifacts import is_complete
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
    # Artefacts this job publishes, by key (an evaluation job publishes one per suite).
    outputs: dict[str, Path] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.outputs:
            self.outputs = {self.key: self.out}

    @property
    def complete(self) -> bool:
        return all(is_complete(p) for p in self.outputs.values())


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
    hf_dirs: dict[str, str] = {}
    for m in study.models:
        if m.path is not None and m.path != "smollm2" and not m.path.endswith(".gguf"):
            hf_dirs[m.name] = m.path  # already a Hugging Face folder: used in place
            continue
        # Otherwise the base model is made once as a plain Hugging Face folder: a GGUF
        # import, or a small Llama (and its BPE tokenizer) built from the study's texts.
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
        return hf_dirs.get(name) or str(artefact_dir(study_dir, "model", model_keys[name]))

    def base_deps(name: str) -> list[str]:
        return [model_keys[name]] if name in model_keys else []

    for key in plan.stage_order():
        node = plan.stages[key]
        mix = mixture(node.recipe, node.spec["data"])
        deps = [mix, f"s-{node.parent}"] if node.parent else [mix, *base_deps(node.model)]
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
    # Evaluations of the same model share one job: the model is loaded once for all suites,
    # and each suite still publishes its own artefact (and is skipped when complete).
    groups: dict[str | None, list[str]] = {}
    for key, ev in plan.evals.items():
        groups.setdefault(ev.stage if ev.stage else f"base-{ev.model}", []).append(key)
    for group, keys in groups.items():
        first = plan.evals[keys[0]]
        deps = [f"s-{first.stage}"] if first.stage else base_deps(first.model)
        outputs = {f"e-{k}": artefact_dir(study_dir, "eval", f"e-{k}") for k in keys}
        payload = {
            "model_dir": str(artefact_dir(study_dir, "stage", f"s-{first.stage}")) if first.stage
            else base_dir(first.model),
            "suites": [{"key": f"e-{k}", "suite": plan.evals[k].suite, "options": plan.evals[k].options,
                        "out": str(outputs[f"e-{k}"])} for k in keys],
        }
        target = plan.stages[first.stage].label if first.stage else f"{first.model} (base)"
        label = f"{', '.join(plan.evals[k].suite for k in keys)} on {target}"
        job_key = f"g-{group}"
        jobs[job_key] = Job(job_key, "eval", deps, payload, next(iter(outputs.values())), label,
                            {"cpus": 1, "gpus": 1}, outputs)
    return jobs
