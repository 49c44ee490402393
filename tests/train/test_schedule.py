"""Strategies as stage schedules, YAML schedules, and a real two-stage run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from sftmix.artifacts import read_marker
from sftmix.config import load_config
from sftmix.errors import ConfigError, SftmixError
from sftmix.study.plan import build_plan
from sftmix.train.config import ScheduleConfig
from sftmix.train.schedule import STRATEGIES, plan_schedule, run_schedule, schedule_study
from tests.train.helpers import code_alpaca_examples, gsm8k_examples, sharegpt_examples

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {"code": "code.jsonl", "maths": "maths.jsonl", "general": "general.jsonl"}


def _sources(shared_data: Path, folder: Path, n: int = 16) -> dict[str, str]:
    data = {"code": code_alpaca_examples(shared_data, n), "maths": gsm8k_examples(shared_data, n),
            "general": sharegpt_examples(shared_data, n // 2, min_turns=2)}
    for name, examples in data.items():
        (folder / SOURCES[name]).write_text("".join(e.to_json() + "\n" for e in examples))
    return {k: str(folder / v) for k, v in SOURCES.items()}


def _config(strategy: str, options: dict | None = None, sources: dict | None = None) -> ScheduleConfig:
    return ScheduleConfig.model_validate({
        "model": {"tiny": {"vocab_size": 1024, "hidden": 64, "layers": 2, "heads": 4}},
        "abilities": {name: {"data": file} for name, file in (sources or SOURCES).items()},
        "strategy": {strategy: options or {}},
        "training": {"max_length": 384, "epochs": 1, "learning_rate": 1e-3, "global_batch_size": 4,
                     "per_device_batch_size": 4, "precision": "fp32"}})


def _names(config: ScheduleConfig) -> list[list[tuple[list[str], float]]]:
    return [[([Path(f.path).stem for f in part.files], part.fraction) for part in s.config.data]
            for s in plan_schedule(config)]


def test_built_in_strategies_are_the_reference_studys() -> None:
    assert STRATEGIES.names() == ["dmt", "mixed_sequential", "multi_task", "sequential"]
    assert _names(_config("multi_task")) == [[(["code"], 1), (["maths"], 1), (["general"], 1)]]
    assert _names(_config("sequential")) == [[(["code"], 1)], [(["maths"], 1)], [(["general"], 1)]]
    assert _names(_config("sequential", {"order": ["general", "maths"]})) == [
        [(["general"], 1)], [(["maths"], 1)]]
    assert _names(_config("mixed_sequential")) == [[(["code", "maths"], 1)], [(["general"], 1)]]
    assert _names(_config("dmt", {"k": "1/256"})) == [
        [(["code", "maths"], 1)], [(["general"], 1), (["code", "maths"], 1 / 256)]]
    names = [s.config.name for s in plan_schedule(_config("dmt", {"k": 0}))]
    assert names == ["specialist", "general_replay"]


def test_strategy_mistakes_name_what_is_wrong() -> None:
    with pytest.raises(SftmixError, match="available: dmt, mixed_sequential, multi_task, sequential"):
        plan_schedule(_config("curriculum"))
    with pytest.raises(ConfigError, match=r"needs abilities \['physics'\]"):
        plan_schedule(_config("sequential", {"order": ["code", "physics"]}))
    with pytest.raises(ConfigError, match=r"strategy.dmt.k"):
        plan_schedule(_config("dmt", {"k": 2}))
    with pytest.raises(ConfigError, match=r"needs at least one specialist"):
        plan_schedule(_config("dmt", {"k": 0.5}, sources={"general": "g.jsonl"}))
    bad = _config("multi_task")
    bad.training = {"learning_rate": -1}
    with pytest.raises(ConfigError, match=r"learning_rate"):
        plan_schedule(bad)


def test_a_schedule_is_a_study_of_one_run_and_dmt_replays_stage_one(shared_data: Path, tmp_path: Path) -> None:
    sources = _sources(shared_data, tmp_path)
    plans = {k: build_plan(schedule_study(_config("dmt", {"k": k}, sources))) for k in (0, 0.25, 1)}
    for k, plan in plans.items():
        (run,) = plan.runs
        first, second = (plan.stages[key] for key in run.stages)
        assert second.parent == first.key and first.recipe == plans[0].stages[run.stages[0]].recipe
        # Stage 2: the general data plus a nested fraction k of stage 1's mixture.
        assert [p.ability for p in second.recipe.parts] == ["general"]
        assert (second.recipe.replay is None) if k == 0 else (second.recipe.replay == (first.recipe, k))
    mixed = build_plan(schedule_study(_config("mixed_sequential", sources=sources)))
    # Same parent, data and settings: DMT(0)'s stage 2 is the same stage as mixed sequential's.
    assert mixed.runs[0].stages == plans[0].runs[0].stages
    study = schedule_study(_config("multi_task", sources=sources))
    assert {a.data.format for a in study.abilities.values()} == {"messages"}
    assert study.models[0].tiny is not None and study.training.learning_rate == 1e-3


def test_older_schedule_files_are_read_as_the_study_vocabulary_with_a_warning(
        shared_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sources = _sources(shared_data, tmp_path)
    old = ScheduleConfig.model_validate({
        "model": {"tiny": {"vocab_size": 1024, "hidden": 64, "layers": 2, "heads": 4}},
        "sources": sources, "strategy": {"name": "dmt", "options": {"k": "1/4"}},
        "training": _config("dmt").training})
    assert "'sources: {NAME: FILE}' is the old spelling of 'abilities: {NAME: {data: FILE}}'" in caplog.text
    assert "'{name: dmt, options: ...}' is the old spelling of '{dmt: {...}}'" in caplog.text
    # The same plan, key for key, as the file written in today's words.
    assert build_plan(schedule_study(old)).stages == build_plan(
        schedule_study(_config("dmt", {"k": 0.25}, sources))).stages
    with pytest.raises(ConfigError, match=r"strategy.options.k"):
        plan_schedule(ScheduleConfig.model_validate(
            {"model": {"tiny": {}}, "sources": SOURCES, "strategy": {"name": "dmt", "options": {"k": 2}}}))
    # Where the options were written is the loader's business, not a key of the file.
    with pytest.raises(ValueError, match="where"):
        ScheduleConfig.model_validate({"model": {"tiny": {}}, "sources": SOURCES,
                                       "strategy": {"name": "dmt", "options": {"k": 1}, "where": ["x"]}})
    # A strategy without options may be written as its bare name.
    assert _names(ScheduleConfig.model_validate(
        {"model": {"tiny": {}}, "abilities": {n: {"data": f} for n, f in SOURCES.items()},
         "strategy": "mixed_sequential"})) == _names(_config("mixed_sequential"))
    with pytest.raises(ValueError, match="name one strategy"):
        ScheduleConfig.model_validate({"model": {"tiny": {}}, "abilities": {"code": {"data": "c.jsonl"}},
                                       "strategy": {"dmt": {"k": 1}, "multi_task": {}}})


def test_explicit_stages_name_abilities_as_a_studys_stages_do(shared_data: Path, tmp_path: Path) -> None:
    sources = _sources(shared_data, tmp_path)
    by_ability = ScheduleConfig.model_validate({
        "model": {"tiny": {}}, "abilities": {n: {"data": f} for n, f in sources.items()},
        "stages": [{"name": "maths", "data": [{"ability": "maths"}]},
                   {"name": "general", "data": [{"ability": "general"}, {"ability": "code", "fraction": "1/4"}]}]})
    by_file = ScheduleConfig.model_validate({
        "model": {"tiny": {}},
        "stages": [{"name": "maths", "data": [{"path": sources["maths"]}]},
                   {"name": "general", "data": [{"path": sources["general"]},
                                                {"path": sources["code"], "fraction": 0.25}]}]})
    study = schedule_study(by_ability)
    assert [[(e.ability, e.fraction) for e in s.data] for s in study.runs[0].stages] == [
        [("maths", 1.0)], [("general", 1.0), ("code", 0.25)]]
    # Naming the ability or its file gives the same stages.
    assert build_plan(study).stages == build_plan(schedule_study(by_file)).stages
    with pytest.raises(ValueError, match="takes ability 'physics', which it does not name"):
        ScheduleConfig.model_validate({"model": {"tiny": {}}, "abilities": {"maths": {"data": "m.jsonl"}},
                                       "stages": [{"name": "s", "data": [{"ability": "physics"}]}]})
    with pytest.raises(ValueError, match="exactly one of 'path'"):
        ScheduleConfig.model_validate({"model": {"tiny": {}}, "abilities": {"maths": {"data": "m.jsonl"}},
                                       "stages": [{"name": "s", "data": [{"ability": "maths", "path": "m.jsonl"}]}]})


def test_explicit_parts_become_sources_at_their_fraction(tmp_path: Path) -> None:
    config = ScheduleConfig.model_validate({
        "model": {"gguf": "smollm2"},
        "stages": [{"name": "one", "data": [{"path": ["a.jsonl", {"path": "b.json", "format": "alpaca"}],
                                             "fraction": "1/4"}, {"path": "a.jsonl", "fraction": 0}]}]})
    study = schedule_study(config, "x y", base_dir=tmp_path)
    assert study.name == "x_y" and study.models[0].gguf == "smollm2"
    (stage,) = study.runs[0].stages
    assert [(e.ability, e.fraction) for e in stage.data] == [("a", 0.25), ("b", 0.25)]
    assert study.abilities["b"].data.path == str(tmp_path / "b.json")
    with pytest.raises(ConfigError, match=r"mix\.yaml is a mixture spec; build it first"):
        schedule_study(ScheduleConfig.model_validate(
            {"model": {"gguf": "smollm2"}, "stages": [{"name": "s", "data": [{"path": "mix.yaml"}]}]}))


@pytest.mark.slow
def test_an_n_stage_schedule_in_yaml_runs_each_stage_from_the_last(shared_data: Path,
                                                                  tmp_path: Path) -> None:
    _sources(shared_data, tmp_path, n=8)
    config = {
        "model": {"tiny": {"vocab_size": 1024, "hidden": 64, "layers": 2, "heads": 4}},
        "training": {"max_length": 384, "epochs": 1, "learning_rate": 1e-3, "global_batch_size": 4,
                     "per_device_batch_size": 4, "precision": "fp32"},
        "stages": [
            {"name": "maths", "data": [{"path": "maths.jsonl"}]},
            {"name": "code", "data": [{"path": "code.jsonl", "fraction": 0.5}],
             "training": {"learning_rate": 5e-4}},
            {"name": "general", "data": [{"path": "general.jsonl"},
                                         {"path": ["maths.jsonl", "code.jsonl"], "fraction": 0.25}]},
        ],
    }
    path = tmp_path / "schedule.yaml"
    path.write_text(yaml.safe_dump(config))
    schedule = load_config(path, ScheduleConfig)
    outputs = run_schedule(schedule, tmp_path / "run", base_dir=tmp_path)
    assert [p.name for p in outputs] == ["01-maths", "02-code", "03-general"]
    # Each is a relative link to a keyed stage folder; paths inside the output folder are relative.
    keyed = [Path(os.readlink(p)) for p in outputs]
    assert [k.parent for k in keyed] == [Path("stages")] * 3
    resolved = [json.loads((p / "stage_config.json").read_text()) for p in outputs]
    assert resolved[0]["parent"].startswith("models/b-")
    assert [r["parent"] for r in resolved[1:]] == [k.as_posix() for k in keyed[:2]]
    assert [r["settings"]["learning_rate"] for r in resolved] == [1e-3, 5e-4, 1e-3]
    assert [r["name"] for r in resolved] == ["train.maths", "train.code", "train.general"]
    manifests = [json.loads((p / "data_manifest.json").read_text()) for p in outputs]
    assert [m["examples"] for m in manifests] == [8, 4, 4 + 2 + 2]
    # A second run reuses every completed stage.
    markers = [read_marker(p) for p in outputs]
    assert run_schedule(schedule, tmp_path / "run", base_dir=tmp_path) == outputs
    assert [read_marker(p) for p in outputs] == markers


def test_example_configs_are_valid() -> None:
    for path in sorted((ROOT / "configs" / "train").glob("*.yaml")):
        stages = plan_schedule(load_config(path, ScheduleConfig), str(path))
        assert stages, path


def test_a_strategys_raw_source_trains_the_ability_it_is_listed_under() -> None:
    config = ScheduleConfig.model_validate({
        "model": {"tiny": {}}, "strategy": "multi_task",
        "abilities": {"code": {"data": {"path": "code_alpaca.json", "format": "alpaca"}},
                      "general": {"data": {"path": "chat.json", "format": "alpaca", "ability": "chat"}},
                      "maths": {"data": "maths.jsonl"}}})
    [stage] = plan_schedule(config)
    refs = {ref.path: ref.ability for part in stage.config.data for ref in part.files}
    assert refs == {"code_alpaca.json": "code", "chat.json": "chat", "maths.jsonl": None}
