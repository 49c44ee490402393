"""The job graph: typed specs, dependencies, job files relative to the study directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sftmix.errors import ConfigError
from sftmix.study.jobs import build_jobs, check_layout, read_job, write_layout
from sftmix.study.kinds import KINDS
from sftmix.study.load import load_study
from sftmix.study.plan import build_plan
from sftmix.study.specs import EvalSpec, MixtureSpec, StageSpec

STUDY = """
name: graph
abilities:
  maths: {{data: {{path: {data}/gsm8k/train.jsonl, format: gsm8k}}, evals: [gsm8k]}}
  general: {{data: {{path: {data}/general/messages_kto_positive.jsonl, format: messages}}, evals: [ifeval]}}
models: [{{name: tiny, tiny: {{vocab_size: 400, hidden: 32, layers: 2, heads: 2}}}}]
evaluate_base: true
evaluation:
  gsm8k: {{path: {data}/gsm8k/test.jsonl, limit: 2}}
  ifeval: {{path: {data}/eval/ifeval/input_data.jsonl, limit: 2}}
runs:
  - name: dmt
    stages:
      - {{name: specialist, data: [{{ability: maths, count: 8}}]}}
      - {{name: general, data: [{{ability: general, count: 8}}], replay: {{stage: specialist, fraction: 1/2}}}}
"""


@pytest.fixture
def jobs(tmp_path: Path, shared_data: Path):
    path = tmp_path / "study.yaml"
    path.write_text(STUDY.format(data=shared_data))
    study_dir = tmp_path / "out"
    return study_dir, build_jobs(build_plan(load_study(path)), study_dir)


def test_every_dependency_comes_first_and_exists(jobs) -> None:
    _, graph = jobs
    seen: set[str] = set()
    for key, job in graph.items():
        assert set(job.deps) <= seen, (key, job.deps)
        seen.add(key)
    kinds = [j.kind for j in graph.values()]
    # One base model, two mixtures (specialist, general + replay), two stages, and one
    # evaluation job per suite of each evaluated model (base, final stage).
    assert kinds.count("model") == 1 and kinds.count("mixture") == 2
    assert kinds.count("stage") == 2 and kinds.count("eval") == 4
    assert all(isinstance(j.spec, KINDS[j.kind].spec) for j in graph.values())


def test_specs_refer_to_artefacts_by_relative_folders(jobs) -> None:
    study_dir, graph = jobs
    stages = [j for j in graph.values() if j.kind == "stage"]
    first, second = stages
    assert isinstance(first.spec, StageSpec)
    assert first.spec.parent.startswith("models/b-") and first.spec.parent.split("/")[1] in first.deps
    assert second.spec.parent == f"stages/{first.key}"
    replaying = graph[second.spec.mixture.split("/")[1]]
    assert isinstance(replaying.spec, MixtureSpec) and replaying.spec.replay is not None
    assert replaying.deps == [replaying.spec.replay.mixture.split("/")[1]]
    evals = [j for j in graph.values() if j.kind == "eval"]
    assert {j.spec.model for j in evals} == {first.spec.parent, f"stages/{second.key}"}
    for job in graph.values():
        assert job.out == study_dir / KINDS[job.kind].folder / next(iter(job.outputs))


def test_job_file_round_trip_is_relative_and_validated(jobs, tmp_path: Path) -> None:
    study_dir, graph = jobs
    job = next(j for j in graph.values() if j.kind == "eval")
    path = study_dir / "jobs" / f"{job.key}.json"
    path.parent.mkdir(parents=True)
    data = job.to_file(study_dir)
    assert not any(str(tmp_path) in json.dumps(v) for k, v in data.items() if k != "spec")
    assert all(not Path(p).is_absolute() for p in data["outputs"].values())
    path.write_text(json.dumps(data))
    back = read_job(path)
    assert isinstance(back.spec, EvalSpec) and back.spec == job.spec
    assert back.outputs == job.outputs and back.deps == job.deps and back.out == job.out
    # The same file read through another path to the study directory resolves there.
    moved = tmp_path / "moved"
    study_dir.rename(moved)
    assert read_job(moved / "jobs" / f"{job.key}.json").out == moved / "evals" / next(iter(job.outputs))
    data["spec"]["suite"] = {"suite": "gsm8k", "options": {}, "extra": 1}
    (moved / "jobs" / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r"bad.json, field 'spec': not a valid eval job"):
        read_job(moved / "jobs" / "bad.json")


def test_an_old_job_file_or_study_directory_is_named_as_such(tmp_path: Path) -> None:
    old = tmp_path / "old"
    (old / "jobs").mkdir(parents=True)
    (old / "jobs" / "s-1.json").write_text(json.dumps(
        {"key": "s-1", "kind": "stage", "deps": [], "payload": {}, "out": "studies/x/stages/s-1"}))
    with pytest.raises(ConfigError, match=r"s-1.json: a job file of another layout"):
        read_job(old / "jobs" / "s-1.json")
    with pytest.raises(ConfigError, match=r"an earlier sftmix layout \(layout 1.*-o NEW_DIR"):
        check_layout(old)
    check_layout(tmp_path / "new")  # nothing there yet: fine
    write_layout(old)
    check_layout(old)


def test_run_refuses_an_old_study_directory_and_changes_nothing(tmp_path: Path, shared_data: Path) -> None:
    from sftmix.study.runner import prepare

    path = tmp_path / "study.yaml"
    path.write_text(STUDY.format(data=shared_data))
    old = tmp_path / "old"
    (old / "jobs").mkdir(parents=True)
    (old / "study.yaml").write_text("name: graph\n")
    (old / "jobs" / "s-1.json").write_text("{}")
    before = sorted((p.relative_to(old), p.read_bytes()) for p in old.rglob("*") if p.is_file())
    with pytest.raises(ConfigError, match="earlier sftmix layout"):
        prepare(load_study(path), old)
    assert sorted((p.relative_to(old), p.read_bytes()) for p in old.rglob("*") if p.is_file()) == before
