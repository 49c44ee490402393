"""``sftmix suggest`` and ``sftmix optimise`` explain what is wrong with their input, in one paragraph
and exit status 2, before anything is fitted or written (``suggest.json`` untouched)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sftmix.cli import main
from sftmix.config import dump_yaml
from sftmix.study.config import StudyConfig
from sftmix.study.cost import plan_cost, source_stats
from sftmix.study.load import load_study
from sftmix.study.plan import build_plan
from sftmix.suggest.composition import Composition
from sftmix.suggest.optimise import Settings, _round_study, check_settings, plan_tokens, read_rounds
from sftmix.suggest.search import Space
from tests.report.conftest import make_study, study_dict
from tests.study.tiny_study import ABILITIES, EVALUATION, MODELS, TRAINING

SENTINEL = '{"written": "before"}\n'


@pytest.fixture
def one_run(tmp_path: Path, shared_data: Path) -> Path:
    abilities = {
        "maths": {"data": {"path": str(shared_data / "gsm8k/train.jsonl"), "format": "gsm8k"}, "evals": ["gsm8k"]},
        "general": {"data": {"path": str(shared_data / "general/sharegpt_dpo_chosen.json"), "format": "sharegpt"},
                    "evals": ["ifeval"]},
    }
    study_dir = make_study(tmp_path, study_dict(shared_data, {"mixed": {"fractions": [1]}}, abilities=abilities)).dir
    (study_dir / "suggest.json").write_text(SENTINEL)
    return study_dir


def _snapshot(folder: Path) -> dict[str, float]:
    return {str(p.relative_to(folder)): p.stat().st_mtime for p in folder.rglob("*")}


def _refused(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert "Traceback" not in err and err.strip().count("\n") == 0, err  # one paragraph
    return err


@pytest.mark.parametrize(("args", "message"), [
    ([], "needs at least 2"),
    (["--weights", "maths=1,poetry=2"], "'poetry=2' is not '<ability>=<weight>'"),
    (["--weights", "maths=1,maths=5"], "--weights: 'maths' is given twice"),
    (["--weights", "maths=1e308,general=1e308"], "--weights: at least one weight must be > 0, and their sum finite"),
    (["--weights", "maths=nan"], "--weights: the weight of 'maths' must be a number >= 0"),
    (["--fractions", "1/8,half"], "--fractions: 'half' is not a number"),
    (["--ks", "0,2"], "--ks: '2' is out of range (0 <= k <= 1)"),
    # Checked before the fit: the study's single run would otherwise stop it first.
    (["--budget", "nan"], "--budget: expected a finite number of tokens > 0"),
    (["--budget", "inf"], "--budget: expected a finite number of tokens > 0"),
    (["--budget=-3M"], "--budget: expected a finite number of tokens > 0"),
    (["--floor", "maths=nan"], "--floor: the floor of 'maths' must be a finite scaled score"),
    (["--floor", "poetry=1"], "--floor: 'poetry=1' is not '<ability>=<score>'"),
    (["--export", "/proc/x"], "--export /proc/x: cannot write in /proc"),
    (["--export", "/sys/x"], "--export /sys/x: cannot write in /sys"),
])
def test_bad_input_is_explained(one_run: Path, args: list[str], message: str,
                                capsys: pytest.CaptureFixture[str]) -> None:
    before = _snapshot(one_run)
    _refused(["suggest", str(one_run), *args], message, capsys)
    assert (one_run / "suggest.json").read_text() == SENTINEL
    assert _snapshot(one_run) == before


def test_export_to_a_file_is_refused_before_the_fit(one_run: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "export.txt"
    target.write_text("mine\n")
    _refused(["suggest", str(one_run), "--export", str(target)], f"--export {target}: not a folder", capsys)
    _refused(["suggest", str(one_run), "--export", str(target / "sub")], f"({target} is a file)", capsys)
    assert target.read_text() == "mine\n" and (one_run / "suggest.json").read_text() == SENTINEL


def test_not_a_study_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _refused(["suggest", str(tmp_path)], "not a study directory", capsys)


@pytest.fixture
def study_file(tmp_path: Path, shared_data: Path) -> Path:
    study = tmp_path / "s.yaml"
    study.write_text(f"""
name: s
abilities:
  maths: {{data: {{path: {shared_data}/gsm8k/train.jsonl, format: gsm8k}}, evals: [gsm8k]}}
models: [{{name: tiny, tiny: {{vocab_size: 400, hidden: 32, layers: 2, heads: 2}}}}]
evaluation: {{gsm8k: {{path: {shared_data}/gsm8k/test.jsonl}}}}
""")
    return study


@pytest.mark.parametrize(("args", "message"), [
    (["--budget", "lots"], "--budget: expected a number of tokens"),
    (["--budget", "nan"], "--budget: expected a finite number of tokens > 0"),
    (["--budget", "inf"], "--budget: expected a finite number of tokens > 0"),
    (["--budget", "0"], "--budget: expected a finite number of tokens > 0"),
    (["--budget", "1M", "--run-budget", "nan"], "--run-budget: expected a finite number of tokens > 0"),
    (["--budget", "1M", "--threshold", "nan"], "--threshold: expected a finite expected gain >= 0"),
    (["--budget", "1M", "--threshold=-1"], "--threshold: expected a finite expected gain >= 0"),
    (["--budget", "1M", "--threshold", "inf"], "--threshold: expected a finite expected gain >= 0"),
    (["--budget", "1M", "--floor", "maths=high"], "--floor: the floor of 'maths' must be a finite scaled score"),
    (["--budget", "1M", "--weights", "maths=1,maths=5"], "--weights: 'maths' is given twice"),
])
def test_optimise_bad_numbers(study_file: Path, tmp_path: Path, args: list[str], message: str,
                              capsys: pytest.CaptureFixture[str]) -> None:
    _refused(["optimise", str(study_file), *args, "-o", str(tmp_path / "out")], message, capsys)
    assert not (tmp_path / "out").exists()


def test_optimise_output_must_be_a_folder_it_may_use(study_file: Path, tmp_path: Path, one_run: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "file.txt"
    target.write_text("mine\n")
    _refused(["optimise", str(study_file), "--budget", "1M", "-o", str(target)],
             f"-o/--out {target}: not a folder", capsys)
    assert target.read_text() == "mine\n"
    _refused(["optimise", str(study_file), "--budget", "1M", "-o", "/proc/x"], "-o/--out /proc/x: cannot write in /proc", capsys)
    # Another study's directory, and this study's own directory of 'sftmix run': left as they are.
    before = _snapshot(one_run)
    _refused(["optimise", str(study_file), "--budget", "1M", "-o", str(one_run)],
             "holds the study 'known' run by 'sftmix run', not an optimiser's directory", capsys)
    assert _snapshot(one_run) == before
    own = tmp_path / "own"
    own.mkdir()
    (own / "study.yaml").write_text("name: s\n")
    _refused(["optimise", str(study_file), "--budget", "1M", "-o", str(own)], "holds the study 's'", capsys)
    assert sorted(p.name for p in own.iterdir()) == ["study.yaml"]
    other = tmp_path / "other"
    (other / "optimise").mkdir(parents=True)
    (other / "optimise" / "settings.json").write_text("{}")
    (other / "study.yaml").write_text("name: t\n")
    _refused(["optimise", str(study_file), "--budget", "1M", "-o", str(other)],
             "the optimiser's directory of the study 't', not 's'", capsys)


def _settings(study: StudyConfig, weights: dict[str, float]) -> Settings:
    return Settings(weights, 1e9, Space(list(study.abilities)))


def test_a_first_try_that_completed_nothing_can_be_planned_again(study_file: Path, tmp_path: Path) -> None:
    study = load_study(study_file)
    out = tmp_path / "out"
    (out / "optimise").mkdir(parents=True)
    check_settings(out, _settings(study, {"maths": 1.0}))
    planned = {"round": 0, "status": "planned", "runs": []}
    (out / "optimise" / "round-000.json").write_text(json.dumps(planned))
    (out / "optimise" / "round-000.yaml").write_text("name: s\n")
    # Nothing completed: other settings replace the first ones, and the planned round goes.
    check_settings(out, _settings(study, {"maths": 2.0}))
    assert json.loads((out / "optimise" / "settings.json").read_text())["weights"] == {"maths": 2.0}
    assert read_rounds(out) == [] and not (out / "optimise" / "round-000.yaml").exists()
    # Once a round is done, the directory holds to its settings.
    (out / "optimise" / "round-000.json").write_text(json.dumps(planned | {"status": "done"}))
    with pytest.raises(Exception, match="optimised with other settings"):
        check_settings(out, _settings(study, {"maths": 3.0}))
    check_settings(out, _settings(study, {"maths": 2.0}))


def test_optimise_counts_tokens_as_plan_does(tmp_path: Path, shared_data: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A round's tokens are what 'sftmix plan' of its round file reports (``max_steps`` respected)."""
    study = load_study_text(tmp_path, shared_data)
    space = Space(list(study.abilities), (1 / 256, 1 / 128), (1 / 4,), "general")
    comps = [*space.candidates()[:2], Composition.dmt(dict.fromkeys(study.abilities, 1 / 128), 1 / 4, "general")]
    round_study = _round_study(study, comps)
    path = tmp_path / "round-000.yaml"
    path.write_text(dump_yaml(round_study))
    ours = plan_tokens(round_study, source_stats(study))
    assert ours == plan_cost(build_plan(load_study(path))).plan_tokens
    # max_steps: 6 caps every stage: 6 steps of 4 packed rows of 192 tokens, DMT's stage 1 shared.
    stages = len(build_plan(round_study).stages)
    assert ours <= stages * 6 * 4 * 192
    assert main(["plan", str(path)]) == 0
    assert f"training tokens: {_big(ours)}" in capsys.readouterr().out


def load_study_text(tmp_path: Path, shared_data: Path) -> StudyConfig:
    path = tmp_path / "tiny.yaml"
    path.write_text(("name: tiny\n" + ABILITIES + MODELS + TRAINING + EVALUATION).format(data=shared_data))
    return load_study(path)


def _big(n: float) -> str:
    from sftmix.study.summary import _big as big

    return big(n)
