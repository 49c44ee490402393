"""``sftmix run``'s command-line overrides: --set, --limit, --overwrite reach the study loader."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from sftmix.cli import main
from sftmix.errors import ConfigError
from sftmix.study.cli import _check_other_study, _overrides
from sftmix.study.load import load_study
from tests.study.test_load import BASE


def _study(tmp_path: Path, shared_data: Path) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(BASE.format(data=shared_data) + "designs: {scaling: {fractions: [1/64]}}\n")
    return path


def test_set_and_limit_reach_the_study(tmp_path: Path, shared_data: Path) -> None:
    path = _study(tmp_path, shared_data)
    args = argparse.Namespace(study=path, settings=["training.max_steps=2"], limit=3)
    study = load_study(path, _overrides(args))
    assert study.training["max_steps"] == 2
    # Every suite of the study is limited, those with options and those without.
    assert {s: o.get("limit") for s, o in study.evaluation.items()} == {
        "gsm8k": 3, "ifeval": 3, "humaneval": 3}


def test_a_bad_override_exits_2_naming_the_flag(tmp_path: Path, shared_data: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = _study(tmp_path, shared_data)
    assert main(["run", str(path), "-o", str(tmp_path / "out"), "--set", "training.epoch=1"]) == 2
    assert "field 'training.epoch'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(path), "--limit", "0"])
    assert exit_info.value.code == 2
    assert "--limit: found '0', expected a whole number >= 1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_directory_of_another_study_needs_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "studies" / "x"
    out.mkdir(parents=True)
    (out / "study.yaml").write_text("name: other\n")
    _check_other_study(out, "other", overwrite=False)  # the same study: resumed
    with pytest.raises(ConfigError, match=r"holds the study 'other', not 'mine'.*--overwrite"):
        _check_other_study(out, "mine", overwrite=False)
    _check_other_study(out, "mine", overwrite=True)
    assert not out.exists()
