"""``sftmix eval``: options, the printed table, user errors without tracebacks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sftmix.cli import build_parser, main
from sftmix.errors import ConfigError
from sftmix.eval.cli import format_table, parse_settings
from tests.eval.fake_openai import FakeOpenAI, server_error
from tests.eval.models import one_torch_thread, tiny_model_dir


def test_parse_settings() -> None:
    opts = parse_settings(["gsm8k.mode=fewshot", "gsm8k.num_fewshot=3",
                           "mtbench.judge.model=gpt-4o", "mtbench.judge.concurrency=2"],
                          ["gsm8k", "mtbench"])
    assert opts == {"gsm8k": {"mode": "fewshot", "num_fewshot": 3},
                    "mtbench": {"judge": {"model": "gpt-4o", "concurrency": 2}}}
    with pytest.raises(ConfigError, match=r"expected SUITE\.KEY=VALUE"):
        parse_settings(["gsm8k"], ["gsm8k"])
    with pytest.raises(ConfigError, match="'ifeval' is not among the suites"):
        parse_settings(["ifeval.path=x"], ["gsm8k"])


def test_format_table() -> None:
    table = format_table({"gsm8k": {"primary": "acc", "metrics": {
        "acc": {"mean": 0.25, "ci_low": 0.0, "ci_high": 0.75, "n": 4, "low": 0.0, "high": 1.0},
        "empty": {"mean": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "n": 0}}},
        "mtbench": {"primary": "score", "metrics": {
            "score": {"mean": 6.5, "ci_low": 6.0, "ci_high": 7.0, "n": 80, "low": 1.0, "high": 10.0}}}})
    lines = table.splitlines()
    assert lines[0].split() == ["suite", "metric", "value", "95%", "CI", "n"]
    assert lines[2].split() == ["gsm8k", "acc*", "25.0%", "[0.0%,", "75.0%]", "4"]
    assert lines[3].split() == ["mtbench", "score*", "6.50", "[6.00,", "7.00]", "80"]
    assert "empty" not in table


def test_eval_command_on_a_real_model(tmp_path: Path, shared_data: Path,
                                      tmp_path_factory: pytest.TempPathFactory,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    model = tiny_model_dir(shared_data, tmp_path_factory)
    out = tmp_path / "out"
    with one_torch_thread():
        code = main(["eval", str(model), "--suite", "gsm8k,ifeval", "--limit", "3",
                     "--data-dir", str(shared_data), "--max-new-tokens", "6", "-o", str(out),
                     "--set", "gsm8k.mode=fewshot", "--set", "gsm8k.num_fewshot=1"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "exact_match_strict*" in printed and "ifeval" in printed and str(out) in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["gsm8k"]["options"]["mode"] == "fewshot"
    assert summary["gsm8k"]["n_items"] == summary["ifeval"]["n_items"] == 3
    first = json.loads((out / "gsm8k" / "items.jsonl").read_text().splitlines()[0])
    assert first["prompt"].startswith("Question: ")


def test_user_errors_exit_2_without_traceback(tmp_path: Path, shared_data: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    env = {**os.environ, "SFTMIX_DATA_DIR": ""}
    bad_suite = subprocess.run([sys.executable, "-m", "sftmix", "eval", str(tmp_path), "--suite",
                                "gsm8k,nope"], capture_output=True, text=True, env=env, timeout=300)
    assert bad_suite.returncode == 2 and "Traceback" not in bad_suite.stderr
    assert "unknown suite(s) nope; available:" in bad_suite.stderr and "gsm8k" in bad_suite.stderr
    data = ["--data-dir", str(shared_data)]
    assert main(["eval", str(tmp_path / "missing"), "--suite", "gsm8k", *data]) == 2
    assert "no config.json" in capsys.readouterr().err
    assert main(["eval", str(tmp_path), "--suite", "gsm8k", "--set", "gsm8k.shots=2", *data]) == 2
    assert "unknown option(s) 'shots' for evaluation suite 'gsm8k'" in capsys.readouterr().err
    assert main(["eval", str(tmp_path), "--suite", "gsm8k", "--limit", "0"]) == 2
    assert "--limit 0" in capsys.readouterr().err


def test_help_lists_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert "evaluate a model on benchmark suites" in build_parser().format_help()
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    assert "SFTMIX_JUDGE_BASE_URL" in capsys.readouterr().out


def test_models_with_the_same_folder_name_get_separate_folders(
        tmp_path: Path, shared_data: Path, tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    model = tiny_model_dir(shared_data, tmp_path_factory)
    for run in ("a", "b"):
        shutil.copytree(model, tmp_path / "runs" / run / "01-maths")
    monkeypatch.chdir(tmp_path)
    args = ["--suite", "gsm8k", "--limit", "1", "--max-new-tokens", "2", "--data-dir", str(shared_data)]
    with one_torch_thread():
        assert main(["eval", "runs/a/01-maths", *args]) == 0
        assert main(["eval", "runs/b/01-maths", *args]) == 0
        assert main(["eval", "runs/a/01-maths", *args]) == 0
    printed = capsys.readouterr().out
    folders = sorted((tmp_path / "evals").iterdir())
    assert len(folders) == 2 and all(f.name.startswith("01-maths-") for f in folders)
    models = {json.loads((f / "gsm8k" / "summary.json").read_text())["model"] for f in folders}
    assert models == {"runs/a/01-maths", "runs/b/01-maths"}
    assert printed.count("gsm8k: reused the complete evaluation in evals/01-maths-") == 1


def test_failed_judge_exits_1_and_a_rerun_completes(
        tmp_path: Path, shared_data: Path, tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    model = tiny_model_dir(shared_data, tmp_path_factory)
    monkeypatch.setenv("SFTMIX_JUDGE_CACHE", str(tmp_path / "judge.sqlite"))
    monkeypatch.setenv("SFTMIX_JUDGE_API_KEY", "k")
    args = ["eval", str(model), "--suite", "gsm8k,mtbench", "--limit", "1", "--max-new-tokens", "2",
            "--data-dir", str(shared_data), "-o", str(tmp_path / "out"),
            "--set", "mtbench.repetitions=1", "--set", "mtbench.judge.max_retries=0"]
    with FakeOpenAI(lambda req: "Rating: [[4]]") as srv:
        monkeypatch.setenv("SFTMIX_JUDGE_BASE_URL", srv.url)
        srv.inject(server_error(), server_error())
        with one_torch_thread():
            assert main(args) == 1
            failed = capsys.readouterr()
            assert main(args) == 0
            done = capsys.readouterr()
    assert "sftmix: error: mtbench: not marked complete: the judge at" in failed.err
    assert "did not answer 2 of 2 judgement(s)" in failed.err and "Traceback" not in failed.err
    table = [line.split()[0] for line in failed.out.splitlines()[2:-2]]
    assert table and set(table) == {"gsm8k"}  # what completed is shown
    assert "gsm8k: reused the complete evaluation" in done.out
    assert "score*" in done.out and "4.00" in done.out
    assert len(srv.requests) == 4


@pytest.fixture
def judgeless_model(shared_data: Path, tmp_path_factory: pytest.TempPathFactory,
                    monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny model to evaluate, with no judge configured in the environment."""
    for name in ("SFTMIX_JUDGE_BASE_URL", "SFTMIX_JUDGE_API_KEY", "OPENAI_API_KEY", "SFTMIX_JUDGE_MODEL"):
        monkeypatch.delenv(name, raising=False)
    return tiny_model_dir(shared_data, tmp_path_factory)


def test_default_suites_without_a_judge_run_the_others_and_say_so(
        tmp_path: Path, shared_data: Path, judgeless_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = judgeless_model
    out = tmp_path / "out"
    with one_torch_thread():
        code = main(["eval", str(model), "--limit", "1", "--max-new-tokens", "2",
                     "--data-dir", str(shared_data), "-o", str(out)])
    printed = capsys.readouterr().out.splitlines()
    assert code == 0
    assert printed[0] == ("mtbench: not run: it needs an LLM judge; set SFTMIX_JUDGE_BASE_URL (any "
                          "OpenAI-compatible server) and SFTMIX_JUDGE_API_KEY (or OPENAI_API_KEY "
                          "for OpenAI's), or give --suite without mtbench")
    assert printed[-1] == "mtbench: not run (no judge configured)"
    table = {line.split()[0] for line in printed if line.split()[0] in ("gsm8k", "humaneval", "ifeval",
                                                                       "mtbench")}
    assert table == {"gsm8k", "humaneval", "ifeval"}
    assert set(json.loads((out / "summary.json").read_text())) == {"gsm8k", "humaneval", "ifeval"}


def test_mtbench_named_without_a_judge_stops_before_any_work(
        tmp_path: Path, judgeless_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["eval", str(judgeless_model), "--suite", "gsm8k,mtbench", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "mtbench: the judge is https://api.openai.com/v1 but no API key is set" in err
    assert not out.exists()


def _stage_of(model: Path, study: Path) -> Path:
    """``model`` laid out as a training stage whose parent is a copy of itself."""
    shutil.copytree(model, study / "models" / "b-base")
    shutil.copytree(model, study / "stages" / "s-stage")
    (study / "stages" / "s-stage" / "stage_config.json").write_text(
        json.dumps({"parent": "models/b-base"}), encoding="utf-8")
    (study / "01-maths").symlink_to(Path("stages") / "s-stage", target_is_directory=True)
    return study / "01-maths"


def test_baseline_evaluates_the_parent_on_the_same_items(
        tmp_path: Path, shared_data: Path, tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    stage = _stage_of(tiny_model_dir(shared_data, tmp_path_factory), tmp_path / "runs" / "q")
    args = ["--suite", "gsm8k", "--limit", "3", "--max-new-tokens", "4", "--data-dir", str(shared_data)]
    with one_torch_thread():
        assert main(["eval", "runs/q/01-maths", "--baseline", *args]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "before: runs/q/models/b-base"
    header = printed.index(next(line for line in printed if line.startswith("suite")))
    assert printed[header].split() == ["suite", "metric", "before", "95%", "CI", "after", "95%", "CI",
                                       "change", "95%", "CI", "p", "n"]
    # The same weights on both sides: no change, and the sign test sees no discordant item.
    row = printed[header + 2].split()
    assert row[:2] == ["gsm8k", "exact_match_flexible*"] and row[-1] == "3"
    assert row[-5] == "+0.0%" and row[-2] == "1.000"
    evals = sorted(p.name for p in (tmp_path / "evals").iterdir())
    assert [e.split("-")[:2] for e in evals] == [["b", "base"], ["s", "stage"]]
    # A model named explicitly; a folder that is not a stage needs one.
    with one_torch_thread():
        assert main(["eval", str(stage), "--baseline", str(tmp_path / "runs/q/models/b-base"),
                     "-o", str(tmp_path / "mine"), *args]) == 0
    assert (tmp_path / "mine-baseline" / "gsm8k" / "COMPLETE.json").is_file()
    capsys.readouterr()
    assert main(["eval", "runs/q/models/b-base", "--baseline", *args]) == 2
    assert "is not a training stage (no stage_config.json)" in capsys.readouterr().err


def test_format_comparison() -> None:
    from sftmix.eval.cli import value_format
    from sftmix.eval.compare import format_comparison
    from sftmix.eval.stats import paired_comparison

    def summary(mean: float, low: float, high: float) -> dict:
        return {"primary": "acc", "metrics": {"acc": {"mean": mean, "ci_low": low, "ci_high": high,
                                                      "n": 4, "low": 0.0, "high": 1.0}}}

    diff = paired_comparison({"a": 0, "b": 0, "c": 1, "d": 0}, {"a": 1, "b": 1, "c": 1, "d": 0})
    table = format_comparison({"gsm8k": summary(0.25, 0.0, 0.75)}, {"gsm8k": summary(0.75, 0.25, 1.0)},
                              {"gsm8k": {"acc": diff}}, value_format)
    row = table.splitlines()[2].split()
    assert row == ["gsm8k", "acc*", "25.0%", "[0.0%,", "75.0%]", "75.0%", "[25.0%,", "100.0%]",
                   "+50.0%", f"[{100 * diff.ci_low:.1f}%,", f"{100 * diff.ci_high:.1f}%]", "0.500", "4"]


@pytest.mark.slow
def test_the_quick_start_learns_far_beyond_its_intervals(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The README's quick start, its three commands as written (about 80 CPU-seconds)."""
    root = Path(__file__).resolve().parents[2]
    (tmp_path / "configs" / "train").mkdir(parents=True)
    shutil.copy(root / "configs" / "train" / "quickstart.yaml", tmp_path / "configs" / "train")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SFTMIX_LAB_DIR", raising=False)
    with one_torch_thread():
        assert main(["lab", "corpus", "data/lab"]) == 0
        assert main(["train", "configs/train/quickstart.yaml"]) == 0
        assert main(["eval", "runs/quickstart/01-maths", "--baseline", "--suite", "gsm8k",
                     "--set", "gsm8k.path=data/lab/maths_test.jsonl", "--max-new-tokens", "96",
                     "--limit", "50"]) == 0
    printed = capsys.readouterr().out
    (before_dir,) = (p for p in (tmp_path / "evals").iterdir() if p.name.startswith("b-"))
    (after_dir,) = (p for p in (tmp_path / "evals").iterdir() if p.name.startswith("s-"))
    before = json.loads((before_dir / "summary.json").read_text())["gsm8k"]["metrics"]
    after = json.loads((after_dir / "summary.json").read_text())["gsm8k"]["metrics"]
    for metric in ("exact_match_flexible", "exact_match_strict"):
        assert before[metric]["n"] == after[metric]["n"] == 50
        assert after[metric]["ci_low"] > before[metric]["ci_high"] + 0.3, (before[metric], after[metric])
    row = next(line for line in printed.splitlines() if line.startswith("gsm8k  exact_match_flexible"))
    assert row.split()[-2] == "<0.001"
