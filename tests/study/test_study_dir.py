"""A finished study directory: moved elsewhere it still reports and resumes; no secret is in it.

Both tests run real studies through the command line: a tiny Llama built from
the study's own texts, real data, real training and evaluation, and for MT-Bench
a real judge server on loopback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.eval.fake_openai import FakeOpenAI

pytestmark = pytest.mark.slow

TINY = "{name: tiny, tiny: {vocab_size: 400, hidden: 32, layers: 2, heads: 2}}"
TRAINING = ("{max_length: 128, max_steps: 2, save_steps: 1, global_batch_size: 4, per_device_batch_size: 4, "
            "precision: fp32, learning_rate: 1.0e-3, template: {user: \"Q: {content}\\n\", "
            "assistant: \"A: {content}{eos}\\n\"}}")


def sftmix(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "SFTMIX_PROGRESS": "0", **(env or {})}
    return subprocess.run([sys.executable, "-m", "sftmix", *args], capture_output=True, text=True,
                          cwd=cwd, env=full, timeout=900)


def test_a_moved_study_reports_complete_and_a_rerun_does_nothing(tmp_path: Path, shared_data: Path) -> None:
    study = tmp_path / "study.yaml"
    study.write_text(f"""
name: moved
abilities:
  maths: {{data: {{path: {shared_data}/gsm8k/train.jsonl, format: gsm8k}}, evals: [gsm8k]}}
  general: {{data: {{path: {shared_data}/general/messages_kto_positive.jsonl, format: messages}}, evals: [ifeval]}}
models: [{TINY}]
training: {TRAINING}
evaluation:
  gsm8k: {{path: {shared_data}/gsm8k/test.jsonl, limit: 2, max_new_tokens: 4}}
  ifeval: {{path: {shared_data}/eval/ifeval/input_data.jsonl, limit: 2, max_new_tokens: 4}}
runs:
  - name: two
    stages:
      - {{name: a, data: [{{ability: maths, count: 8}}]}}
      - {{name: b, data: [{{ability: general, count: 8}}], replay: {{stage: a, fraction: 1/2}}}}
""")
    launch = tmp_path / "launch"
    launch.mkdir()
    # Started from one directory with a relative output path, as a user would.
    first = sftmix("run", str(study), "-o", "studies/moved", cwd=launch)
    assert first.returncode == 0, first.stderr[-3000:]
    before = sftmix("results", "studies/moved", cwd=launch).stdout

    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    (launch / "studies" / "moved").rename(moved)
    other = tmp_path / "other"
    other.mkdir()
    status = sftmix("status", str(moved), cwd=other)
    assert status.returncode == 0, status.stderr
    rows = {line.split()[0]: line.split()[1:] for line in status.stdout.splitlines()[1:] if line.strip()}
    assert rows["stage"] == ["2", "0", "0", "0"] and rows["mixture"] == ["2", "0", "0", "0"]
    assert rows["model"] == ["1", "0", "0", "0"] and rows["eval"] == ["2", "0", "0", "0"]

    again = sftmix("run", str(study), "-o", str(moved), cwd=other)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "jobs: 0 done now, 7 already complete" in again.stdout
    assert sftmix("results", str(moved), cwd=other).stdout == before
    assert sftmix("results", str(moved), "--rebuild", cwd=other).stdout == before


def test_a_judge_key_reaches_the_judge_and_no_file(tmp_path: Path, shared_data: Path) -> None:
    study_key, env_key = "sk-study-0f9e8d7c6b5a", "sk-environment-1a2b3c4d5e"
    with FakeOpenAI(api_key=study_key) as judge:
        study = tmp_path / "study.yaml"
        study.write_text(f"""
name: secret
abilities:
  general: {{data: {{path: {shared_data}/general/messages_kto_positive.jsonl, format: messages}}, evals: [mtbench]}}
models: [{TINY}]
evaluate_base: true
evaluation:
  mtbench:
    path: {shared_data}/eval/mt_bench
    limit: 1
    repetitions: 1
    max_new_tokens: 4
    judge: {{base_url: "{judge.url}", model: fake-judge, api_key: "${{STUDY_JUDGE_KEY}}", cache_path: null}}
""")
        out = tmp_path / "out"
        env = {"STUDY_JUDGE_KEY": study_key, "OPENAI_API_KEY": env_key, "SFTMIX_JUDGE_API_KEY": env_key}
        done = sftmix("-v", "run", str(study), "-o", str(out), env=env)
        assert done.returncode == 0, done.stderr[-3000:]
        assert judge.requests, "the judge was never asked"
        results = sftmix("results", str(out))
        assert "mtbench" in results.stdout and "score" in results.stdout
        report = sftmix("report", str(out), "--no-paper", env=env)
        assert report.returncode == 0, report.stderr[-3000:]
    assert study_key not in done.stdout + done.stderr
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "results.sqlite" for p in files) and any(p.suffix == ".log" for p in files)
    assert (out / "report").is_dir()
    for path in files:
        data = path.read_bytes()
        for key in (study_key, env_key):
            assert key.encode() not in data, f"{key} written to {path}"
