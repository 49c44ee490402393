"""A real study killed with SIGKILL at several moments resumes to the same results.

The study is small but real: a tiny Llama built from the study's own texts, real
GSM8K / Code Alpaca / ShareGPT data, two training stages (DMT-style replay),
real evaluations. Each interrupted run is killed by a failpoint
(``SFTMIX_CRASH_AT``, see ``sftmix.faults``) that SIGKILLs the executor and the
worker at once; then the same command is run again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sftmix.artifacts import is_complete
from sftmix.faults import POINTS
from sftmix.study.store import STORE_NAME, ResultsStore
from tests.study.tiny_study import ABILITIES, DMT_RUN, EVALUATION, MODELS, TRAINING, metrics

pytestmark = pytest.mark.slow

STUDY = "name: crash\n" + ABILITIES + MODELS + TRAINING + EVALUATION + DMT_RUN

# Each interrupted run dies at the first of these moments that it reaches: every failpoint.
CRASHES = list(POINTS)


def _run(study: Path, out: Path, crash: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SFTMIX_PROGRESS="0")
    env.pop("SFTMIX_CRASH_AT", None)
    if crash:
        env["SFTMIX_CRASH_AT"] = crash
    return subprocess.run([sys.executable, "-m", "sftmix", "run", str(study), "-o", str(out)],
                          capture_output=True, text=True, env=env, timeout=900)


def _completed(out: Path) -> dict[str, float]:
    """Every complete artefact with the time it was completed."""
    found = {}
    for kind in ("models", "mixtures", "stages", "evals"):
        for d in (out / kind).glob("*"):
            if is_complete(d):
                found[str(d.relative_to(out))] = json.loads((d / "COMPLETE.json").read_text())["completed_at"]
    return found


def test_killed_study_resumes_to_the_same_results(tmp_path: Path, shared_data: Path) -> None:
    study = tmp_path / "study.yaml"
    study.write_text(STUDY.format(data=shared_data))

    reference = tmp_path / "reference"
    done = _run(study, reference)
    assert done.returncode == 0, done.stderr[-3000:]

    out = tmp_path / "crashed"
    for crash in CRASHES:
        before = _completed(out) if out.exists() else {}
        proc = _run(study, out, crash)
        assert proc.returncode == -signal.SIGKILL, (crash, proc.returncode, proc.stderr[-3000:])
        after = _completed(out)
        for path, stamp in before.items():
            assert after.get(path) == stamp, f"{path} was recomputed or lost after the crash at {crash}"
    final = _run(study, out)
    assert final.returncode == 0, final.stderr[-3000:]
    assert not list(out.glob("*/*.partial-*")), "half-built artefacts were left behind"

    assert metrics(out) == metrics(reference)
    assert len(metrics(out)) > 0
    ref_stages = sorted((reference / "stages").glob("*/model.safetensors"))
    out_stages = sorted((out / "stages").glob("*/model.safetensors"))
    assert [p.parent.name for p in ref_stages] == [p.parent.name for p in out_stages]
    for a, b in zip(ref_stages, out_stages, strict=True):
        wa, wb = load_file(a), load_file(b)
        for name in wa:
            torch.testing.assert_close(wa[name], wb[name], rtol=1e-5, atol=1e-6)

    status = subprocess.run([sys.executable, "-m", "sftmix", "status", str(out)],
                            capture_output=True, text=True, check=True).stdout
    assert "pending" in status and " 0 " in status


def test_failed_stage_stops_only_its_dependents(tmp_path: Path, shared_data: Path) -> None:
    """A stage that cannot train fails; the other run's stages and evaluations still finish."""
    text = STUDY.format(data=shared_data) + """
  - name: broken
    stages:
      - {name: only, data: [{ability: general, count: 8}], training: {max_length: 8}}
"""
    study = tmp_path / "study.yaml"
    study.write_text(text)
    out = tmp_path / "out"
    proc = _run(study, out)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "1 failed" in proc.stdout and "blocked" in proc.stdout
    failed = list((out / "jobs").glob("*.failed.json"))
    assert len(failed) == 1
    assert "no example has a trainable token" in json.loads(failed[0].read_text())["error"]
    store = ResultsStore(out / STORE_NAME)
    rows = store.results()
    store.close()
    runs = {r["run"] for r in rows}
    assert any(r.startswith("runs/dmt/") for r in runs)
    assert not any(r.startswith("runs/broken/") for r in runs)

    # The results: printed, exported, and rebuilt from the artefact directories alone.
    csv, parquet = tmp_path / "r.csv", tmp_path / "r.parquet"
    shown = subprocess.run([sys.executable, "-m", "sftmix", "results", str(out), "--csv", str(csv),
                            "--parquet", str(parquet)], capture_output=True, text=True, check=True).stdout
    assert "exact_match_flexible" in shown and "prompt_level_strict" in shown
    import pandas as pd

    table = pd.read_csv(csv)
    assert len(table) == len(rows) and set(table["suite"]) == {"gsm8k", "humaneval", "ifeval"}
    assert pd.read_parquet(parquet).shape == table.shape
    (out / STORE_NAME).unlink()
    subprocess.run([sys.executable, "-m", "sftmix", "results", str(out), "--rebuild"],
                   capture_output=True, text=True, check=True)
    rebuilt = ResultsStore(out / STORE_NAME)
    assert sorted((r["run"], r["metric"], r["value"]) for r in rebuilt.results()) == sorted(
        (r["run"], r["metric"], r["value"]) for r in rows)
    rebuilt.close()


def _workers_of(executor_pid: int) -> list[int]:
    """Live processes started by that executor (they carry its pid in their environment)."""
    marker = f"SFTMIX_EXECUTOR_PID={executor_pid}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_ctrl_c_stops_cleanly_and_a_rerun_finishes(tmp_path: Path, shared_data: Path) -> None:
    """SIGINT (Ctrl-C) cancels the running jobs, leaves no worker behind, and loses nothing."""
    import time

    study = tmp_path / "study.yaml"
    study.write_text(STUDY.format(data=shared_data))
    out = tmp_path / "out"
    env = dict(os.environ, SFTMIX_PROGRESS="0")
    env.pop("SFTMIX_CRASH_AT", None)
    # A shell that starts the test suite in the background (`cmd &`) leaves SIGINT ignored,
    # and Python installs no KeyboardInterrupt handler for a signal ignored at its start:
    # give the study the default disposition a terminal's Ctrl-C would meet.
    proc = subprocess.Popen([sys.executable, "-m", "sftmix", "run", str(study), "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while not list((out / "jobs").glob("s-*.running")) and time.monotonic() < deadline:
        time.sleep(0.2)  # wait until a training stage is under way
    assert list((out / "jobs").glob("s-*.running")), "no stage started"
    assert _workers_of(proc.pid), "the workers are not found by their environment"
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout
    assert "interrupted" in stdout
    assert not _workers_of(proc.pid), "a worker outlived the interrupted study"
    assert _run(study, out).returncode == 0
