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
