"""configs/real/smollm2_paper.yaml, the real-model study: planned whole, and run at a CPU cut
through the command line.

The cut runs the study file as written -- SmolLM2-135M-Instruct imported from its GGUF file,
the real GSM8K, Code Alpaca + GPTeacher and general chat files read by their readers, the
mixtures built at the study's amounts, the model's own chat template, all four suites --
with its designs narrowed by ``--set`` to the base model and one DMT run (a two-stage chain
whose second stage replays the first's data: every source, every kind of job), two
optimiser steps on rows of 128 tokens per stage and the first two items of each suite with a
few new tokens. The whole study is 97 jobs; at this cut each stage costs about a minute and
each evaluation about 20 s on the shared 2-core machine, so the whole study at the cut is
not a CI test (docs/real_model.md gives its command and time).
"""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from sftmix.study.status import job_states

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "real" / "smollm2_paper.yaml"
LIMIT = 2
STEPS = 2
SUITES = ("gsm8k", "humaneval", "mbpp", "ifeval")
NARROW = ("designs={strategies: {baselines: false, multi_task: false, sequential: false, "
          "mixed_sequential: false, dmt: {ks: [1/4]}}}")
# The cut: what a GPU run spends its time on, made small.
CPU_CUT = [
    f"training.max_steps={STEPS}", "training.global_batch_size=1", "training.per_device_batch_size=1",
    "training.max_length=128", "training.warmup_ratio=0",
    *(f"evaluation.{suite}.max_new_tokens=12" for suite in SUITES),
    # The study's generator keeps 256 rows in flight on a GPU; on a CPU that cache is waste.
    *(f"evaluation.{suite}.generator.batch_size={LIMIT}" for suite in SUITES),
]


def environment(shared_data: Path) -> dict[str, str]:
    return {**os.environ, "SFTMIX_DATA_DIR": str(shared_data),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}


def sftmix(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sftmix", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT)


def test_the_whole_study_plans_on_a_clean_checkout(shared_data: Path) -> None:
    env = environment(shared_data)
    if shared_data.resolve() == (ROOT.parent / "shared" / "data").resolve():
        del env["SFTMIX_DATA_DIR"]  # the file's own default: ../shared/data beside the checkout
    plan = sftmix("plan", str(CONFIG), env=env)
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert "20 runs" in plan.stdout and "base: 1, scaling: 9, mixed: 2, strategies: 8" in plan.stdout
    assert "training stages: 17 distinct of 24" in plan.stdout
    assert re.search(r"evaluations: +64 distinct of 80", plan.stdout)
    assert re.search(r"training tokens: [\d.]+M of [\d.]+M", plan.stdout)


@pytest.mark.slow
@pytest.mark.real_model
def test_the_study_runs_at_a_cpu_cut(tmp_path: Path, shared_data: Path) -> None:
    env = environment(shared_data)
    study = tmp_path / "study"
    sets = [x for s in [*CPU_CUT, NARROW] for x in ("--set", s)]
    run = sftmix("run", str(CONFIG), "-o", str(study), *sets, "--limit", str(LIMIT), env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "0 failed" in run.stdout

    # Every job is complete: the GGUF import, both mixtures, both stages, eight evaluations.
    states = job_states(study)
    assert {s["state"] for s in states.values()} == {"done"}
    kinds = {k: sum(s["kind"] == k for s in states.values()) for k in ("model", "mixture", "stage", "eval")}
    assert kinds == {"model": 1, "mixture": 2, "stage": 2, "eval": 8}

    # The base model is SmolLM2 de-quantised from its GGUF into a plain model folder.
    (base,) = study.glob("models/b-*")
    config = json.loads((base / "config.json").read_text())
    assert config["model_type"] == "llama" and config["num_hidden_layers"] == 30
    assert "quantization_config" not in config

    # Each stage trained for the cut's steps, in the model's own chat template, with a
    # pretrained model's loss (a random one starts near ln(49152) = 10.8).
    stages = sorted(study.glob("stages/s-*"))
    assert len(stages) == kinds["stage"]
    for stage in stages:
        log = [json.loads(x) for x in (stage / "train_log.jsonl").read_text().splitlines()]
        assert [r["step"] for r in log] == list(range(1, STEPS + 1)), stage
        assert all(math.isfinite(r["loss"]) and 0 < r["loss"] < 8 for r in log), stage
        settings = json.loads((stage / "stage_config.json").read_text())["settings"]
        assert settings["template"] == "model" and settings["max_steps"] == STEPS

    # The real readers read every file of each ability: the manifests count their records.
    read = {}
    for manifest in study.glob("mixtures/*/manifest.json"):
        for name, source in json.loads(manifest.read_text())["sources"].items():
            read[name] = (source["records_read"], source["skipped"]["count"], len(source["path"])
                          if isinstance(source["path"], list) else 1)
    assert read == {"maths": (7473, 0, 1), "code": (2017 + 4535, 2, 2), "general": (999 + 1923 + 300 + 150, 0, 4)}

    # Every evaluated model has all four suites, each with its primary metric over LIMIT items.
    with sqlite3.connect(study / "results.sqlite") as db:
        rows = db.execute("SELECT e.stage, e.suite, m.metric, m.value, m.ci_low, m.ci_high, m.n "
                          "FROM evaluations e JOIN metrics m ON m.eval = e.key "
                          "WHERE m.is_primary = 1 AND e.status = 'done'").fetchall()
        runs = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    models = {r[0] for r in rows}
    assert len(rows) == kinds["eval"] == 4 * len(models)
    assert {r[1] for r in rows} == set(SUITES)
    for _, suite, metric, value, low, high, n in rows:
        assert n == LIMIT, (suite, metric)
        assert 0 <= low <= value <= high <= 1, (suite, metric)
    assert runs == 2
    results = sftmix("results", str(study), env=env)
    assert results.returncode == 0 and "strategies/dmt/1/4" in results.stdout, results.stdout[-2000:]
