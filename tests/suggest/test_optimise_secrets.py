"""No judge key on disk after an optimise round: every file the round writes is searched for it.

A real optimise round through the command line: a tiny Llama built from the study's own
texts, real chat data, real training, and MT-Bench judged by a real server on loopback
that accepts only the planted key (so the key demonstrably reached the judge).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.eval.fake_openai import FakeOpenAI

pytestmark = pytest.mark.slow

STUDY = """\
name: opt-secret
abilities:
  general: {{data: {{path: {data}/general/messages_kto_positive.jsonl, format: messages}}, evals: [mtbench]}}
models: [{{name: tiny, tiny: {{vocab_size: 400, hidden: 32, layers: 2, heads: 2}}}}]
training: {{max_length: 128, max_steps: 1, global_batch_size: 4, per_device_batch_size: 4, precision: fp32,
           template: {{user: "Q: {{content}}\\n", assistant: "A: {{content}}{{eos}}\\n"}}}}
evaluation:
  mtbench:
    path: {data}/eval/mt_bench
    limit: 1
    repetitions: 1
    max_new_tokens: 4
    judge: {{base_url: "{url}", model: fake-judge, api_key: "${{PLANTED_JUDGE_KEY}}", cache_path: null}}
"""


def test_an_optimise_round_writes_no_judge_key(tmp_path: Path, shared_data: Path) -> None:
    study_key, env_key = "sk-planted-opt-7c1e5a93d2", "sk-planted-env-4b8f0e61aa"
    out = tmp_path / "out"
    with FakeOpenAI(api_key=study_key) as judge:
        study = tmp_path / "study.yaml"
        study.write_text(STUDY.format(data=shared_data, url=judge.url))
        env = {**os.environ, "SFTMIX_PROGRESS": "0", "PLANTED_JUDGE_KEY": study_key,
               "OPENAI_API_KEY": env_key, "SFTMIX_JUDGE_API_KEY": env_key}
        done = subprocess.run(
            [sys.executable, "-m", "sftmix", "optimise", str(study), "-o", str(out), "--fractions", "1/16,1/8",
             "--ks", "0", "--budget", "1G", "--max-rounds", "1", "--replicates", "10", "--weights", "general=1"],
            capture_output=True, text=True, env=env, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        assert judge.requests, "the judge was never asked"
    round0 = json.loads((out / "optimise" / "round-000.json").read_text())
    assert round0["status"] == "done" and len(round0["measured"]) == 2
    files = [p for p in out.rglob("*") if p.is_file()]
    kinds = {p.relative_to(out).parts[0] for p in files}
    # The round's own files, the study it ran and what its jobs wrote are all searched.
    assert {"optimise", "jobs", "logs", "models", "mixtures", "stages", "evals", "study.yaml"} <= kinds
    assert (out / "optimise" / "round-000.yaml").is_file()
    for path in files:
        data = path.read_bytes()
        for key in (study_key, env_key):
            assert key.encode() not in data, f"{key} written to {path}"
    assert study_key not in done.stdout + done.stderr
