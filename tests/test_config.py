"""Command-line overrides of config fields: parsing, setting, and errors that name the flag."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field

from sftmix.config import (
    Amount,
    StrictModel,
    apply_overrides,
    load_config,
    parse_override,
    parse_overrides,
    read_yaml,
)
from sftmix.errors import ConfigError


class Part(StrictModel):
    fraction: Amount = 1.0


class Settings(StrictModel):
    max_steps: int | None = Field(None, ge=1)
    epochs: float = 3.0


class Config(StrictModel):
    training: Settings = Settings()
    parts: list[Part] = Field(default_factory=list)
    name: str = "x"


def test_parse_override_paths_and_yaml_values() -> None:
    assert parse_override("training.max_steps=2").path == ("training", "max_steps")
    assert parse_override("training.max_steps=2").value == 2
    o = parse_override("stages[0].data[1].fraction=1/4")
    assert o.path == ("stages", 0, "data", 1, "fraction") and o.value == "1/4"
    assert parse_override("evaluation.gsm8k={path: x.jsonl, limit: 3}").value == {"path": "x.jsonl",
                                                                                  "limit": 3}
    assert parse_override("name=").value == ""
    for bad in ("training.max_steps", "=3", "a..b=1", "a[x]=1"):
        with pytest.raises(ConfigError, match=r"--set .*expected KEY=VALUE"):
            parse_override(bad)


def test_apply_sets_nested_fields_without_touching_the_input() -> None:
    data = {"training": {"epochs": 1}, "parts": [{"fraction": 1}]}
    out = apply_overrides(data, parse_overrides(["training.max_steps=5", "parts[0].fraction=1/16",
                                                 "evaluation.gsm8k.limit=3"]), "f.yaml")
    assert out == {"training": {"epochs": 1, "max_steps": 5}, "parts": [{"fraction": "1/16"}],
                   "evaluation": {"gsm8k": {"limit": 3}}}
    assert data == {"training": {"epochs": 1}, "parts": [{"fraction": 1}]}
    with pytest.raises(ConfigError, match=r"--set parts\[3\]\.fraction=1: f\.yaml has no item \[3\] "
                                          r"at parts \(a list of 1\)"):
        apply_overrides(data, parse_overrides(["parts[3].fraction=1"]), "f.yaml")
    with pytest.raises(ConfigError, match=r"training\.epochs is 1, not a mapping"):
        apply_overrides(data, parse_overrides(["training.epochs.x=1"]), "f.yaml")


def test_a_bad_overridden_value_is_named_by_its_flag(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("training:\n  epochs: 1\nparts:\n  - {fraction: 1/16}\n")
    config = load_config(path, Config, parse_overrides(["training.max_steps=7"]))
    assert config.training.max_steps == 7 and config.parts[0].fraction == 1 / 16
    with pytest.raises(ConfigError, match=r"c\.yaml as set by --set training\.max_steps=0, "
                                          r"field 'training\.max_steps': found 0"):
        load_config(path, Config, parse_overrides(["training.max_steps=0"]))
    with pytest.raises(ConfigError, match=r"c\.yaml as set by --set training\.max_stepz=1, "
                                          r"field 'training\.max_stepz': unknown field"):
        load_config(path, Config, parse_overrides(["training.max_stepz=1"]))
    # A mistake in the file itself is still named by its line, overrides or not.
    path.write_text("training:\n  epochs: fast\n")
    with pytest.raises(ConfigError, match=r"c\.yaml, line 2, field 'training\.epochs'"):
        load_config(path, Config, parse_overrides(["training.max_steps=7"]))


def test_overrides_are_set_on_the_data_read_and_named_in_its_source(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: a\ntraining:\n  epochs: 1\n")
    overrides = parse_overrides(["name=b"])
    data, source = read_yaml(path, overrides)
    assert data["name"] == "b" and read_yaml(path)[0]["name"] == "a"
    assert source.where(("name",)) == f"{path} as set by --set name=b"
    assert source.where(("training", "epochs")) == f"{path}, line 3"


def test_one_spelling_for_amounts() -> None:
    assert Part(fraction="1/16").fraction == 1 / 16 and Part(fraction=0.5).fraction == 0.5
    with pytest.raises(ValueError, match="a fraction such as '1/64'"):
        Part(fraction="half")
