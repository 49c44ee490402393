"""Estimates before work: rates, the model's size, the executor's schedule, `plan` and `run`."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sftmix.errors import ConfigError
from sftmix.study.confirm import parse_duration
from sftmix.study.estimate import _wall
from sftmix.study.jobs import Job
from sftmix.study.rates import (
    CPU_ANCHORS,
    TOKENS,
    cpu_per_thread,
    llama_parameters,
    parse_throughput,
)
from tests.study.tiny_study import ABILITIES, EVALUATION, MODELS, TRAINING

ROOT = Path(__file__).resolve().parents[2]


def _sftmix(*args: str | Path, cwd: Path | None = None) -> tuple[int, str]:
    from sftmix.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([str(a) for a in args])
    return code, out.getvalue()


# -- rates ---------------------------------------------------------------------------------

def test_cpu_rates_pass_through_every_measured_size_and_fall_with_size() -> None:
    for anchor in CPU_ANCHORS:
        assert cpu_per_thread(anchor.parameters, "train") == pytest.approx(anchor.train)
        assert cpu_per_thread(anchor.parameters, "generate") == pytest.approx(anchor.generate)
    sizes = [2e5, 5e5, 1e6, 1e7, 1e8, 1e9, 7e9]
    rates = [cpu_per_thread(int(p), "train") for p in sizes]
    assert rates == sorted(rates, reverse=True)
    # Above the largest measured model: in proportion to parameters.
    largest = CPU_ANCHORS[-1]
    assert cpu_per_thread(largest.parameters * 10, "train") == pytest.approx(largest.train / 10)


@pytest.mark.parametrize("config", [
    {"vocab": 2048, "hidden": 128, "layers": 4, "heads": 4, "kv": 4, "mlp": 352, "tied": True},
    {"vocab": 1000, "hidden": 64, "layers": 3, "heads": 8, "kv": 2, "mlp": 200, "tied": False},
])
def test_the_parameter_count_is_the_real_model_s(config: dict[str, int]) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=config["vocab"], hidden_size=config["hidden"], num_hidden_layers=config["layers"],
        num_attention_heads=config["heads"], num_key_value_heads=config["kv"],
        intermediate_size=config["mlp"], tie_word_embeddings=config["tied"]))
    assert llama_parameters(config["vocab"], config["hidden"], config["layers"], config["heads"],
                            config["kv"], config["mlp"], bool(config["tied"])) == model.num_parameters()


def test_throughput_flags_are_read_and_checked() -> None:
    rates = parse_throughput(["train=40000", "eval=1.5e3tokens/s", "gsm8k=2items/s"], {"gsm8k"})
    assert (rates["train"].value, rates["train"].unit) == (40000, TOKENS)
    assert rates["eval"].value == 1500 and rates["gsm8k"].unit == "items/s"
    for bad in ("train", "train=0", "train=-3", "train=fast", "mmlu=3", "train=2items/s", "eval=inf"):
        with pytest.raises(ConfigError, match="--throughput"):
            parse_throughput([bad], {"gsm8k"})


def test_slurm_time_limits() -> None:
    from sftmix.study.estimate import slurm_seconds

    assert slurm_seconds("90") == 5400 and slurm_seconds("10:30") == 630
    assert slurm_seconds("2:00:00") == 7200 and slurm_seconds("1-12") == 129600
    assert slurm_seconds("2-00:30") == 174600 and slurm_seconds("1-00:00:05") == 86405


def test_durations() -> None:
    assert parse_duration("90s", "x") == 90 and parse_duration("30m", "x") == 1800
    assert parse_duration("2h", "x") == 7200 and parse_duration("1.5d", "x") == 129600
    assert parse_duration("1:30:00", "x") == 5400 and parse_duration("3", "x") == 10800
    with pytest.raises(ConfigError, match="--ask-over: found 'soon'"):
        parse_duration("soon", "--ask-over")


def _job(key: str, deps: list[str]) -> Job:
    return Job(key, "stage", deps, {}, Path("/nowhere") / key, key)  # type: ignore[arg-type]


def test_the_wall_time_follows_the_executor_s_schedule() -> None:
    # a -> b (a chain of 10 + 10), c and d alone (6 each).
    jobs = {"a": _job("a", []), "b": _job("b", ["a"]), "c": _job("c", []), "d": _job("d", [])}
    seconds = {"a": 10.0, "b": 10.0, "c": 6.0, "d": 6.0}
    assert _wall(jobs, seconds, None) == 20  # every ready job at once: the longest chain
    assert _wall(jobs, seconds, 1) == 32  # one at a time: the sum
    # Two at a time, longest chain first: a and c, then d when c ends, b when a ends.
    assert _wall(jobs, seconds, 2) == 20


# -- the commands ----------------------------------------------------------------------------

@pytest.mark.usefixtures("paper_data")
def test_plan_of_the_paper_study_prints_an_estimated_time() -> None:
    code, out = _sftmix("plan", ROOT / "configs" / "paper" / "all.yaml", "-o", "/nonexistent/study")
    assert code == 0, out
    assert "estimate on the local executor (this machine:" in out
    assert "wall time: about" in out and "192 of 192 jobs to run" in out
    assert "training, model model (134.52M parameters):" in out and "bench/estimate_rates.py" in out
    assert "calls to the MT-Bench judge" in out

    code, out = _sftmix("plan", ROOT / "configs" / "paper" / "all.yaml", "--executor", "slurm",
                        "--throughput", "train=50000")
    assert code == 0, out
    assert "given with --throughput" in out and "assumed, not measured" in out  # generation is
    assert "sbatch header, stage jobs:" in out and "#SBATCH --gpus-per-node=1" in out
    assert "the longest chain of dependent jobs" in out

    # Stages on one CPU each: the longest outlasts a 12-hour limit.
    code, out = _sftmix("plan", ROOT / "configs" / "paper" / "all.yaml", "--executor", "slurm",
                        "--set", "executor.stage={gpus: 0, cpus: 1}", "--set", "executor.time='12:00:00'")
    assert code == 0, out
    assert "stage: the longest job, about " in out
    assert "is over its time limit 12:00:00: it checkpoints and requeues itself, up to 10 times" in out


def _tiny_study(folder: Path, shared: Path, executor: str = "") -> Path:
    study = folder / "tiny.yaml"
    study.write_text(("name: tiny\n" + ABILITIES + MODELS + TRAINING + EVALUATION).format(data=shared)
                     + executor + "runs:\n  - name: one\n    stages:\n"
                     "      - {name: maths, data: [{ability: maths, count: 8}]}\n")
    return study


def test_run_over_the_threshold_off_a_terminal_stops_before_any_work(shared_data: Path, tmp_path: Path) -> None:
    study = _tiny_study(tmp_path, shared_data)
    env = {**os.environ, "SFTMIX_ASK_OVER": "1s"}
    proc = subprocess.run([sys.executable, "-m", "sftmix", "run", str(study), "-o", str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "estimate on the local executor" in proc.stdout and "wall time: about" in proc.stdout
    assert "over the 1 s above which 'sftmix run' asks first (SFTMIX_ASK_OVER)" in proc.stderr
    assert "Give --yes to run it" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
    # The flag wins over the variable: an hour is enough for this study.
    code, out = _sftmix("run", study, "-o", tmp_path / "out", "--ask-over", "1h", "--executor", "slurm",
                        "--dry-run")
    assert code == 0 and "nothing was submitted" in out, out


def test_a_dry_run_writes_every_script_and_submits_nothing(shared_data: Path, tmp_path: Path) -> None:
    executor = ("executor: {name: slurm, partition: gpu, time: '2:00:00', stage: {nodes: 2, gpus: 4, "
                "cpus: 16}, eval: {gpus: 1, cpus: 4}}\n")
    study = _tiny_study(tmp_path, shared_data, executor)
    out = tmp_path / "out"
    env_path = os.environ["PATH"]
    os.environ["PATH"] = str(tmp_path / "no-slurm-here")  # no sbatch, squeue or scontrol to call
    try:
        # 2 nodes x 4 GPUs: 8 processes of 4 rows each, 32 rows a step.
        code, printed = _sftmix("run", study, "-o", out, "--dry-run", "--set", "training.global_batch_size=32")
    finally:
        os.environ["PATH"] = env_path
    assert code == 0, printed
    jobs = sorted(p.stem for p in (out / "jobs").glob("*.json"))
    scripts = sorted(p.stem for p in (out / "slurm" / "dry-run").glob("*.sbatch"))
    assert scripts == jobs and len(jobs) == 6  # the model, the mixture, the stage, three suites
    assert f"dry run: {len(jobs)} sbatch scripts written" in printed
    assert not (out / "slurm" / "jobs").exists()  # no job was recorded as submitted
    stage = next((out / "slurm" / "dry-run").glob("s-*.sbatch")).read_text()
    mixture = next(p.stem for p in (out / "slurm" / "dry-run").glob("m-*.sbatch"))
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=1", "#SBATCH --gpus-per-node=4",
                 "#SBATCH --partition=gpu", "#SBATCH --time=2:00:00", "#SBATCH --requeue"):
        assert line + "\n" in stage, line
    assert f"#SBATCH --dependency='afterok:<{mixture}>:<b-" in stage  # ids unknown: keys
    assert "--num_processes 8 --num_machines 2 --machine_rank 0" in stage
    index = (out / "slurm" / "dry-run" / "index.tsv").read_text().splitlines()
    assert len(index) == len(jobs) + 1 and index[1].split("\t")[1] == "model"


@pytest.mark.slow
def test_a_study_s_own_finished_jobs_set_the_rates_of_the_rest(shared_data: Path, tmp_path: Path) -> None:
    """Run the two-stage study, remove its second stage (and what depends on it): the plan of
    the same directory then counts only that work, at the rates the first stage and the
    evaluations measured."""
    import json
    import shutil

    from sftmix.study.estimate import estimate_study
    from sftmix.study.load import load_study
    from sftmix.study.runner import checked_plan
    from tests.study.tiny_study import DMT_RUN

    study_file = tmp_path / "dmt.yaml"
    study_file.write_text(("name: dmt\n" + ABILITIES + MODELS + TRAINING + EVALUATION + DMT_RUN)
                          .format(data=shared_data))
    out = tmp_path / "out"
    code, printed = _sftmix("run", study_file, "-o", out)
    assert code == 0, printed
    jobs = {p.stem: json.loads(p.read_text()) for p in (out / "jobs").glob("*.json")}
    second = next(k for k, j in jobs.items() if j["label"] == "dmt.general")
    removed = [second, *(k for k, j in jobs.items() if j["kind"] == "eval")]
    for key in removed:
        shutil.rmtree(out / jobs[key]["out"])

    code, printed = _sftmix("plan", study_file, "-o", out)
    assert code == 0, printed
    assert f"{len(removed)} of {len(jobs)} jobs to run" in printed
    assert "measured: this study's complete jobs" in printed
    # The stage's time is its estimated tokens at the rate the first stage trained them.
    plan = checked_plan(load_study(study_file))
    est, _ = estimate_study(plan, out, "local")
    first = next(k for k, j in jobs.items() if j["label"] == "dmt.specialist")
    seconds = json.loads((out / "stages" / first / "COMPLETE.json").read_text())["train_seconds"]
    rate = plan.cost.stage_tokens[first] / seconds
    assert est.jobs[second].seconds == pytest.approx(10 + plan.cost.stage_tokens[second] / rate)
    assert est.jobs[first].seconds == 0 and est.jobs[first].complete
