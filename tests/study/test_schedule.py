"""``sftmix train``'s schedules: strategies as stages, older spellings, a study of one run, a real run."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from sftmix.artifacts import read_marker
from sftmix.config import read_yaml, validate
from sftmix.errors import ConfigError, SftmixError
from sftmix.study import spellings
from sftmix.study.plan import build_plan
from sftmix.study.schedule import ScheduleConfig, run_schedule, stages_of, to_study
from sftmix.train.strategies import STRATEGIES
from tests.train.helpers import code_alpaca_examples, gsm8k_examples, sharegpt_examples

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {"code": "code.jsonl", "maths": "maths.jsonl", "general": "general.jsonl"}
TINY = {"tiny": {"vocab_size": 1024, "hidden": 64, "layers": 2, "heads": 4}}


def _sources(shared_data: Path, folder: Path, n: int = 16) -> dict[str, str]:
    data = {"code": code_alpaca_examples(shared_data, n), "maths": gsm8k_examples(shared_data, n),
            "general": sharegpt_examples(shared_data, n // 2, min_turns=2)}
    for name, examples in data.items():
        (folder / SOURCES[name]).write_text("".join(e.to_json() + "\n" for e in examples))
    return {k: str(folder / v) for k, v in SOURCES.items()}


def _schedule(data: dict[str, Any]) -> ScheduleConfig:
    return validate(ScheduleConfig, spellings.schedule(data), "schedule.yaml")


def _config(strategy: str, options: dict | None = None, sources: dict | None = None) -> ScheduleConfig:
    return _schedule({
        "model": TINY, "abilities": {name: {"data": file} for name, file in (sources or SOURCES).items()},
        "strategy": {strategy: options or {}},
        "training": {"max_length": 384, "epochs": 1, "learning_rate": 1e-3, "global_batch_size": 4,
                     "per_device_batch_size": 4, "precision": "fp32"}})


def _stages(config: ScheduleConfig) -> list[tuple[list[tuple[str, float]], float | None]]:
    """Each stage's (ability, fraction) parts and the fraction of the previous stage it replays."""
    return [([(e.ability, e.fraction) for e in s.data], s.replay.fraction if s.replay else None)
            for s in stages_of(config)]


def test_built_in_strategies_are_the_reference_studys() -> None:
    assert STRATEGIES.names() == ["dmt", "mixed_sequential", "multi_task", "sequential"]
    assert _stages(_config("multi_task")) == [([("code", 1), ("maths", 1), ("general", 1)], None)]
    assert _stages(_config("sequential")) == [([("code", 1)], None), ([("maths", 1)], None),
                                              ([("general", 1)], None)]
    assert _stages(_config("sequential", {"order": ["general", "maths"]})) == [
        ([("general", 1)], None), ([("maths", 1)], None)]
    assert _stages(_config("mixed_sequential")) == [([("code", 1), ("maths", 1)], None),
                                                    ([("general", 1)], None)]
    assert _stages(_config("dmt", {"k": "1/256"})) == [([("code", 1), ("maths", 1)], None),
                                                       ([("general", 1)], 1 / 256)]
    assert [s.name for s in stages_of(_config("dmt", {"k": 0}))] == ["specialist", "general_replay"]


def test_strategy_mistakes_name_what_is_wrong() -> None:
    with pytest.raises(SftmixError, match="available: dmt, mixed_sequential, multi_task, sequential"):
        stages_of(_config("curriculum"))
    with pytest.raises(ConfigError, match=r"needs abilities \['physics'\]"):
        stages_of(_config("sequential", {"order": ["code", "physics"]}))
    with pytest.raises(ConfigError, match=r"field 'strategy\.dmt\.k'"):
        stages_of(_config("dmt", {"k": 2}))
    with pytest.raises(ConfigError, match=r"needs at least one specialist"):
        stages_of(_config("dmt", {"k": 0.5}, sources={"general": "g.jsonl"}))
    with pytest.raises(ConfigError, match=r"field 'training\.learning_rate': found -1"):
        _schedule({"model": TINY, "abilities": {"code": {"data": "c.jsonl"}}, "strategy": "multi_task",
                   "training": {"learning_rate": -1}})


def test_a_schedule_is_a_study_of_one_run_and_dmt_replays_stage_one(shared_data: Path, tmp_path: Path) -> None:
    sources = _sources(shared_data, tmp_path)
    plans = {k: build_plan(to_study(_config("dmt", {"k": k}, sources))) for k in (0, 0.25, 1)}
    for k, plan in plans.items():
        (run,) = plan.runs
        first, second = (plan.stages[key] for key in run.stages)
        assert second.parent == first.key and first.recipe == plans[0].stages[run.stages[0]].recipe
        # Stage 2: the general data plus a nested fraction k of stage 1's mixture.
        assert [p.ability for p in second.recipe.parts] == ["general"]
        assert (second.recipe.replay is None) if k == 0 else (second.recipe.replay == (first.recipe, k))
    mixed = build_plan(to_study(_config("mixed_sequential", sources=sources)))
    # Same parent, data and settings: DMT(0)'s stage 2 is the same stage as mixed sequential's.
    assert mixed.runs[0].stages == plans[0].runs[0].stages
    study = to_study(_config("multi_task", sources=sources))
    assert {a.data.format for a in study.abilities.values()} == {"messages"}
    assert study.models[0].tiny is not None and study.training.learning_rate == 1e-3


def test_older_schedule_files_are_read_as_the_study_vocabulary_with_a_warning(
        shared_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sources = _sources(shared_data, tmp_path)
    with caplog.at_level(logging.WARNING, logger="sftmix.study.spellings"):
        old = _schedule({"model": TINY, "sources": sources, "strategy": {"name": "dmt", "options": {"k": "1/4"}},
                         "training": _config("dmt").training.model_dump(exclude_unset=True)})
    assert "'sources: {NAME: FILE}' is the old spelling of 'abilities: {NAME: {data: FILE}}'" in caplog.text
    assert "'{name: dmt, options: ...}' is the old spelling of '{dmt: {...}}'" in caplog.text
    # The same plan, key for key, as the file written in today's words.
    assert build_plan(to_study(old)).stages == build_plan(
        to_study(_config("dmt", {"k": 0.25}, sources))).stages
    # An option's mistake is named where today's spelling puts it.
    with pytest.raises(ConfigError, match=r"strategy\.dmt\.k"):
        stages_of(_schedule({"model": TINY, "sources": SOURCES,
                             "strategy": {"name": "dmt", "options": {"k": 2}}}))
    # A GGUF model written as a path, a part's seed and a file's ability are read with warnings.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sftmix.study.spellings"):
        config = _schedule({"model": {"path": "smollm2"},
                            "stages": [{"name": "s", "data": [{"path": {"path": "a.json", "format": "alpaca",
                                                                        "ability": "chat"}, "seed": 3}]}]})
    assert config.model.gguf == "smollm2"
    assert "'path: smollm2' is the old spelling of 'gguf: smollm2'" in caplog.text
    assert "a part's 'seed' is no longer used" in caplog.text and "'ability: chat' is no longer used" in caplog.text
    # A strategy without options may be written as its bare name; two strategies are one too many.
    assert _stages(_schedule({"model": TINY, "abilities": {n: {"data": f} for n, f in SOURCES.items()},
                              "strategy": "mixed_sequential"})) == _stages(_config("mixed_sequential"))
    with pytest.raises(ConfigError, match="name one strategy"):
        _schedule({"model": TINY, "abilities": {"code": {"data": "c.jsonl"}},
                   "strategy": {"dmt": {"k": 1}, "multi_task": {}}})


def test_explicit_stages_name_abilities_as_a_studys_stages_do(shared_data: Path, tmp_path: Path) -> None:
    sources = _sources(shared_data, tmp_path)
    by_ability = _schedule({
        "model": TINY, "abilities": {n: {"data": f} for n, f in sources.items()},
        "stages": [{"name": "maths", "data": [{"ability": "maths"}]},
                   {"name": "general", "data": [{"ability": "general"}, {"ability": "code", "fraction": "1/4"}]}]})
    by_file = _schedule({
        "model": TINY,
        "stages": [{"name": "maths", "data": [{"path": sources["maths"]}]},
                   {"name": "general", "data": [{"path": sources["general"]},
                                                {"path": sources["code"], "fraction": 0.25}]}]})
    study = to_study(by_ability)
    assert [[(e.ability, e.fraction) for e in s.data] for s in study.runs[0].stages] == [
        [("maths", 1.0)], [("general", 1.0), ("code", 0.25)]]
    # Naming the ability or its file gives the same stages.
    assert build_plan(study).stages == build_plan(to_study(by_file)).stages
    with pytest.raises(ConfigError, match="takes ability 'physics', which it does not name"):
        _schedule({"model": TINY, "abilities": {"maths": {"data": "m.jsonl"}},
                   "stages": [{"name": "s", "data": [{"ability": "physics"}]}]})


def test_explicit_parts_become_sources_at_their_fraction(tmp_path: Path) -> None:
    config = _schedule({
        "model": {"gguf": "smollm2"},
        "stages": [{"name": "one", "data": [{"path": ["a.jsonl", {"path": "b.json", "format": "alpaca"}],
                                             "fraction": "1/4"}, {"path": "a.jsonl", "fraction": 0}]}]})
    study = to_study(config, "x y", base_dir=tmp_path)
    assert study.name == "x_y" and study.models[0].gguf == "smollm2"
    (stage,) = study.runs[0].stages
    assert [(e.ability, e.fraction) for e in stage.data] == [("a", 0.25), ("b", 0.25)]
    assert study.abilities["b"].data.path == str(tmp_path / "b.json")
    with pytest.raises(ConfigError, match=r"mix\.yaml is a mixture spec; build it first"):
        to_study(_schedule({"model": {"gguf": "smollm2"}, "stages": [{"name": "s", "data": [{"path": "mix.yaml"}]}]}))


def test_a_raw_file_trains_the_ability_it_is_listed_under() -> None:
    study = to_study(_schedule({
        "model": TINY, "strategy": "multi_task",
        "abilities": {"code": {"data": {"path": "code_alpaca.json", "format": "alpaca"}},
                      "general": {"data": [{"path": "chat.json", "format": "alpaca"}, "more.jsonl"]},
                      "maths": {"data": "maths.jsonl"}}}))
    assert {n: (a.data.path, a.data.format) for n, a in study.abilities.items()} == {
        "code": ("code_alpaca.json", "alpaca"), "general": ("chat.json", "alpaca"),
        "general_2": ("more.jsonl", "messages"), "maths": ("maths.jsonl", "messages")}
    # Each of general's files is part of the stage at general's fraction.
    assert [e.ability for e in study.runs[0].stages[0].data] == ["code", "general", "general_2", "maths"]


@pytest.mark.slow
def test_an_n_stage_schedule_in_yaml_runs_each_stage_from_the_last(shared_data: Path,
                                                                  tmp_path: Path) -> None:
    _sources(shared_data, tmp_path, n=8)
    config = {
        "model": TINY,
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
    data, source = read_yaml(path)
    study = to_study(validate(ScheduleConfig, spellings.schedule(data), source), "schedule", tmp_path)
    outcome, outputs = run_schedule(study, tmp_path / "run")
    assert outcome.ok and [p.name for p in outputs] == ["01-maths", "02-code", "03-general"]
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
    again, same = run_schedule(study, tmp_path / "run")
    assert same == outputs and sorted(again.skipped) == sorted(outcome.done) and not again.done
    assert [read_marker(p) for p in outputs] == markers


def test_example_configs_are_valid() -> None:
    for path in sorted((ROOT / "configs" / "train").glob("*.yaml")):
        data, source = read_yaml(path)
        assert stages_of(validate(ScheduleConfig, spellings.schedule(data), source), source.name), path
