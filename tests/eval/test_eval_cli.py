"""``sftmix eval``: options, the printed table, user errors without tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sftmix.cli import build_parser, main
from sftmix.errors import ConfigError
from sftmix.eval.cli import format_table, parse_settings
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
