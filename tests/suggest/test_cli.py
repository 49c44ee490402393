"""``sftmix suggest`` explains what is wrong with its input, in one paragraph and exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from sftmix.cli import main
from tests.report.conftest import make_study, study_dict


@pytest.fixture
def one_run(tmp_path: Path, shared_data: Path) -> Path:
    abilities = {
        "maths": {"data": {"path": str(shared_data / "gsm8k/train.jsonl"), "format": "gsm8k"}, "evals": ["gsm8k"]},
        "general": {"data": {"path": str(shared_data / "general/sharegpt_dpo_chosen.json"), "format": "sharegpt"},
                    "evals": ["ifeval"]},
    }
    return make_study(tmp_path, study_dict(shared_data, {"mixed": {"fractions": [1]}}, abilities=abilities)).dir


@pytest.mark.parametrize(("args", "message"), [
    ([], "needs at least 2"),
    (["--weights", "maths=1,poetry=2"], "'poetry=2' is not '<ability>=<weight>'"),
    (["--fractions", "1/8,half"], "--fractions: 'half' is not a number"),
    (["--ks", "0,2"], "--ks: '2' is out of range (0 <= k <= 1)"),
])
def test_bad_input_is_explained(one_run: Path, args: list[str], message: str,
                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["suggest", str(one_run), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_not_a_study_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["suggest", str(tmp_path)]) == 2
    assert "not a study directory" in capsys.readouterr().err


def test_optimise_budget_must_be_tokens(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        shared_data: Path) -> None:
    study = tmp_path / "s.yaml"
    study.write_text(f"""
name: s
abilities:
  maths: {{data: {{path: {shared_data}/gsm8k/train.jsonl, format: gsm8k}}, evals: [gsm8k]}}
models: [{{name: tiny, tiny: {{vocab_size: 400, hidden: 32, layers: 2, heads: 2}}}}]
evaluation: {{gsm8k: {{path: {shared_data}/gsm8k/test.jsonl}}}}
""")
    assert main(["optimise", str(study), "--budget", "lots", "-o", str(tmp_path / "out")]) == 2
    assert "--budget: expected a number of tokens" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
