"""The SLURM executor against a real SLURM on 127.0.0.1 (munged, slurmctld, and two slurmd: two
nodes on this host).

The study is the small real one of ``test_crash.py``: a tiny Llama built from
the study's own texts, real GSM8K / Code Alpaca / ShareGPT data, two stages with
DMT-style replay, real evaluations. Every test runs ``sftmix`` as a subprocess,
as a user would, with one thread per job on both executors so that the weights
can be compared bit for bit. Without packing, the amounts give whole global
batches (48 and 24 examples keep a trainable token within 192 tokens), so two
training processes see the same batches as one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sftmix.artifacts import is_complete
from sftmix.study.slurm_queue import read_records
from tests.study.slurm_cluster import LoopbackCluster
from tests.study.tiny_study import ABILITIES, EVALUATION, TEMPLATE, metrics
from tests.study.tiny_study import TINY as TINY_TEMPLATE

pytestmark = pytest.mark.slow

STUDY = "name: {name}\n" + ABILITIES + "models: [{{name: tiny, {model}}}]\n" + """\
training: {{max_length: 192, max_steps: 24, save_steps: 3, global_batch_size: 4, per_device_batch_size: 2,
           packing: false, precision: fp32, learning_rate: 1.0e-3, """ + TEMPLATE + """}}
""" + EVALUATION + """\
executor:
  name: slurm
  time: "{time}"
  warning_seconds: 30
  setup: {setup}
  model: {{cpus: 1}}
  mixture: {{cpus: 1}}
  stage: {{cpus: {stage_cpus}, gpus: 0, processes: {processes}, nodes: {nodes}}}
  eval: {{cpus: 1, gpus: 0}}
runs:
  - name: dmt
    stages:
      - {{name: specialist, data: [{{ability: maths, count: 24}}, {{ability: code, count: 26}}]}}
      - {{name: general, data: [{{ability: general, count: 26}}], replay: {{stage: specialist, fraction: 1/4}}}}
"""

TINY = TINY_TEMPLATE.format()


def _write_study(folder: Path, data: Path, name: str, model: str = TINY, time_limit: str = "10:00",
                 setup: str = "[]", processes: int = 1, nodes: int = 1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(STUDY.format(name=name, data=data, model=model, time=time_limit, setup=setup,
                                 processes=processes, stage_cpus=processes, nodes=nodes))
    return path


def _env() -> dict[str, str]:
    env = dict(os.environ, SFTMIX_PROGRESS="0", OMP_NUM_THREADS="1")
    env.pop("SFTMIX_CRASH_AT", None)
    return env


def _sftmix(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "sftmix", *map(str, args)], capture_output=True,
                          text=True, env=_env(), timeout=600)
    if check:
        assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    return proc


def _wait_for(what: str, ready: Callable[[], bool], timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _state(job_id: str) -> tuple[str, str]:
    out = subprocess.run(["squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T|%r"],
                         capture_output=True, text=True).stdout.strip()
    state, _, reason = out.partition("|")
    return state, reason


def _study_jobs(name: str) -> list[str]:
    """Every SLURM job (any state) submitted for the study called ``name``."""
    out = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i|%j"], capture_output=True, text=True).stdout
    return [line.split("|")[0] for line in out.splitlines() if f"|sftmix-{name}-" in line]


def _job_keys(out: Path) -> list[str]:
    return sorted(p.stem for p in (out / "jobs").glob("*.json") if not p.name.endswith(".failed.json"))


def _assert_same_weights(out: Path, reference: Path) -> None:
    """Both DMT stages of ``out`` end with the weights of the single-process local run."""
    ours, theirs = _stages(out), _stages(reference)
    for label in ("dmt.specialist", "dmt.general"):
        a = load_file(ours[label] / "model.safetensors")
        b = load_file(theirs[label] / "model.safetensors")
        for name in a:  # two processes sum each gradient in another order than one
            torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5)


def _stages(out: Path) -> dict[str, Path]:
    """Stage label -> folder, for complete stages."""
    return {json.loads((d / "stage_config.json").read_text())["name"]: d
            for d in (out / "stages").iterdir() if is_complete(d)}


def _stage_key(out: Path, label: str) -> str:
    for path in (out / "jobs").glob("s-*.json"):
        if not path.name.endswith(".failed.json") and json.loads(path.read_text())["label"] == label:
            return path.stem
    raise AssertionError(f"no job file for stage {label}")


@pytest.fixture(scope="module")
def timed_out_study(slurm_cluster: LoopbackCluster, shared_data: Path,
                    tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Submitted first, checked last: SLURM enforces limits in whole minutes, checked every
    30 s, so this job ends 60-90 s after it starts while the other tests run. Its setup
    line hangs, as a module load on a stuck file system would, so it costs no CPU."""
    folder = tmp_path_factory.mktemp("timeout")
    study = _write_study(folder, shared_data, "timeout", time_limit="1", setup='["sleep 600"]')
    _sftmix("run", study, "-o", folder / "out")
    return folder / "out"


@pytest.fixture(scope="module")
def reference(timed_out_study: Path, shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The study run by the local executor."""
    folder = tmp_path_factory.mktemp("local")
    study = _write_study(folder, shared_data, "same")
    _sftmix("run", study, "-o", folder / "out", "--executor", "local")
    return folder / "out"


def test_racing_reruns_submit_each_job_once_and_give_the_local_results(
        slurm_cluster: LoopbackCluster, reference: Path, shared_data: Path, tmp_path: Path) -> None:
    study = _write_study(tmp_path, shared_data, "same")
    out = tmp_path / "out"
    # Two submissions racing on one study directory, then a rerun while the jobs are queued.
    racing = [subprocess.Popen([sys.executable, "-m", "sftmix", "run", str(study), "-o", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
              for _ in range(2)]
    for proc in racing:
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, (stdout, stderr[-3000:])
    jobs = _job_keys(out)
    assert len(jobs) >= 6 and sorted(read_records(out)) == jobs
    assert len(_study_jobs("same")) == len(jobs)
    waited = _sftmix("run", study, "-o", out, "--wait")
    done = re.search(r"jobs: (\d+) done now, (\d+) already complete, 0 failed", waited.stdout)
    assert done and int(done[1]) + int(done[2]) == len(jobs), waited.stdout
    assert len(_study_jobs("same")) == len(jobs), "a rerun submitted a job twice"
    assert all(r["state"] == "COMPLETED" for r in read_records(out).values())

    assert metrics(out) == metrics(reference) and metrics(out)
    ours, theirs = _stages(out), _stages(reference)
    assert sorted(ours) == sorted(theirs) == ["dmt.general", "dmt.specialist"]
    for label, folder in ours.items():
        a, b = load_file(folder / "model.safetensors"), load_file(theirs[label] / "model.safetensors")
        assert all(torch.equal(a[n], b[n]) for n in a), label
    # A rerun of a finished study submits nothing.
    again = _sftmix("run", study, "-o", out)
    assert f"{len(jobs)} already complete" in again.stdout and len(_study_jobs("same")) == len(jobs)


def test_warned_stage_requeues_itself_and_cancelled_stage_resumes_on_rerun(
        slurm_cluster: LoopbackCluster, reference: Path, shared_data: Path, tmp_path: Path) -> None:
    """Stages train with two processes (accelerate launch, gloo) inside their allocation.

    The first stage gets SLURM's warning signal mid-training: it checkpoints, requeues
    itself under the same id and finishes. The second is cancelled mid-training with
    scancel: its evaluation is cancelled with it, and a rerun resubmits both; the stage
    resumes from its checkpoint. Both end with the weights of the local single-process run.
    """
    model = next((reference / "models").iterdir())
    study = _write_study(tmp_path, shared_data, "preempt", model=f"path: {model}", processes=2)
    out = tmp_path / "out"
    _sftmix("run", study, "-o", out)

    first = _stage_key(out, "dmt.specialist")
    first_id = read_records(out)[first]["job_id"]
    _wait_for("a checkpoint of the first stage",
              lambda: any((out / "stages" / f"{first}.work" / "checkpoints").glob("checkpoint-*/trainer_state.json")))
    subprocess.run(["scancel", "--signal=USR2", first_id], check=True)
    _wait_for("the first stage", lambda: is_complete(out / "stages" / first))
    resolved = json.loads((out / "stages" / first / "stage_config.json").read_text())
    assert resolved["world_size"] == 2 and resolved["resumed_from"], resolved
    assert read_records(out)[first]["job_id"] == first_id
    assert "Restarts=1" in subprocess.run(["scontrol", "show", "job", first_id],
                                          capture_output=True, text=True).stdout

    second = _stage_key(out, "dmt.general")
    second_id = read_records(out)[second]["job_id"]
    _wait_for("a checkpoint of the second stage",
              lambda: any((out / "stages" / f"{second}.work" / "checkpoints").glob("checkpoint-*/trainer_state.json")))
    subprocess.run(["scancel", second_id], check=True)
    _wait_for("the cancellation", lambda: _state(second_id)[0] == "CANCELLED")
    assert not is_complete(out / "stages" / second)
    status = _sftmix("status", out).stdout
    assert f"SLURM {second_id} CANCELLED" in status and "log:" in status, status

    rerun = _sftmix("run", study, "-o", out, "--wait")
    assert re.search(r"jobs: [1-9]\d* done now, \d+ already complete, 0 failed", rerun.stdout), rerun.stdout
    assert read_records(out)[second]["job_id"] != second_id
    resolved = json.loads((out / "stages" / second / "stage_config.json").read_text())
    assert resolved["resumed_from"], resolved
    _assert_same_weights(out, reference)


def test_a_two_node_stage_trains_as_one_process(slurm_cluster: LoopbackCluster, reference: Path,
                                                shared_data: Path, tmp_path: Path) -> None:
    """Each stage asks for two nodes (``nodes: 2``): SLURM allocates both nodes of the
    loopback cluster (two slurmd on this host), srun starts a launcher on each, and the two
    gloo processes meet at the first node's address; the stages end with the weights of the
    single-process local run."""
    model = next((reference / "models").iterdir())
    study = _write_study(tmp_path, shared_data, "twonode", model=f"path: {model}", nodes=2)
    out = tmp_path / "out"
    waited = _sftmix("run", study, "-o", out, "--wait")
    assert re.search(r"jobs: \d+ done now, \d+ already complete, 0 failed", waited.stdout), waited.stdout
    for key in (_stage_key(out, "dmt.specialist"), _stage_key(out, "dmt.general")):
        shown = subprocess.run(["scontrol", "show", "job", read_records(out)[key]["job_id"]],
                               capture_output=True, text=True).stdout
        assert "NumNodes=2" in shown and "NodeList=node[0-1]" in shown, shown
        assert (out / "logs" / f"{key}.log").is_file() and (out / "logs" / f"{key}.node1.log").is_file()
        resolved = json.loads((out / "stages" / key / "stage_config.json").read_text())
        assert resolved["world_size"] == 2, resolved
    _assert_same_weights(out, reference)


def test_cancel_stops_the_queued_jobs(slurm_cluster: LoopbackCluster, reference: Path,
                                      shared_data: Path, tmp_path: Path) -> None:
    model = next((reference / "models").iterdir())
    study = _write_study(tmp_path, shared_data, "cancel", model=f"path: {model}")
    out = tmp_path / "out"
    _sftmix("run", study, "-o", out)
    ids = [r["job_id"] for r in read_records(out).values()]
    assert len(ids) == len(_job_keys(out))  # the model is a folder already: no job builds it
    cancelled = _sftmix("cancel", out).stdout
    # The stages and the evaluation wait on the mixtures, so they are still queued.
    assert sum(line.startswith("cancelled SLURM job") for line in cancelled.splitlines()) >= 3, cancelled
    _wait_for("the cancellations", lambda: all(_state(i)[0] in ("CANCELLED", "COMPLETED") for i in ids))
    assert not list((out / "stages").glob("*/COMPLETE.json"))
    assert _sftmix("cancel", out).stdout.startswith("0 jobs cancelled")


def test_optimise_waits_for_each_round_on_slurm(slurm_cluster: LoopbackCluster, reference: Path,
                                                shared_data: Path, tmp_path: Path) -> None:
    """``sftmix optimise --executor slurm`` waits for a round's jobs on the cluster before it
    records the round and chooses the next: every run it asked for is measured."""
    model = next((reference / "models").iterdir())
    study = _write_study(tmp_path, shared_data, "optimise", model=f"path: {model}")
    out = tmp_path / "out"
    done = _sftmix("optimise", study, "--executor", "slurm", "--budget", "50M", "--fractions", "1/512,1/256",
                   "--ks", "0,1/64", "--max-rounds", "1", "--replicates", "5", "-o", out)
    assert re.search(r"stopped: .*; 1 rounds, ", done.stdout), done.stdout
    (record,) = [json.loads(p.read_text()) for p in (out / "optimise").glob("round-*.json")]
    assert record["status"] == "done" and len(record["measured"]) == len(record["runs"]) == 3, record
    jobs = _job_keys(out)
    assert sorted(read_records(out)) == jobs and all(r["state"] == "COMPLETED" for r in read_records(out).values())
    assert len(_study_jobs("optimise")) == len(jobs)


def test_a_job_past_its_time_limit_is_reported_as_timeout(timed_out_study: Path) -> None:
    key = next(k for k, r in read_records(timed_out_study).items() if r["kind"] == "model")
    job_id = read_records(timed_out_study)[key]["job_id"]
    _wait_for("the time limit", lambda: _state(job_id)[0] == "TIMEOUT", timeout=150)
    status = _sftmix("status", timed_out_study).stdout
    assert f"failed: model base model tiny [{key}] SLURM {job_id} TIMEOUT" in status, status
    assert "DUE TO TIME LIMIT" in status, status
    # Its dependents are cancelled by SLURM, not left waiting forever (the first mixture
    # depends on nothing: its setup line hangs too, and it times out as well).
    records = read_records(timed_out_study)
    _wait_for("the dependents", lambda: all(
        _state(r["job_id"])[0] == ("CANCELLED" if r["deps"] else "TIMEOUT") for r in records.values()))
    assert sum(bool(r["deps"]) for r in records.values()) >= 3
