"""The optimise loop, killed in the middle of a round, resumes that round instead of choosing again.

A real study (a tiny Llama built from the study's texts, real GSM8K / Code Alpaca
/ ShareGPT data, real evaluations) is optimised in a subprocess; it is killed
with SIGKILL once round 1 is planned and its jobs are under way, then the same
command is run again. ``sftmix suggest`` then reads the study directory and
exports its recommendation.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from sftmix.artifacts import is_complete
from tests.study.tiny_study import ABILITIES, EVALUATION, MODELS, TRAINING

pytestmark = pytest.mark.slow

STUDY = "name: opt\n" + ABILITIES + MODELS + TRAINING + EVALUATION + "designs:\n  mixed: {{fractions: [1/64]}}\n"
# A threshold of 0 stops the loop only when no run is worth its tokens, or after --max-rounds.
ARGS = ["--fractions", "1/256,1/128", "--ks", "0", "--budget", "1G", "--max-rounds", "2", "--batch", "1",
        "--threshold", "0", "--replicates", "10", "--weights", "maths=2,code=1,general=1"]


def _cmd(study: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "sftmix", "optimise", str(study), "-o", str(out), *ARGS, *extra]


def _env() -> dict[str, str]:
    env = dict(os.environ, SFTMIX_PROGRESS="0")
    env.pop("SFTMIX_CRASH_AT", None)
    return env


def _completed(out: Path) -> dict[str, float]:
    found = {}
    for kind in ("models", "mixtures", "stages", "evals"):
        for d in (out / kind).glob("*"):
            if is_complete(d):
                found[str(d.relative_to(out))] = json.loads((d / "COMPLETE.json").read_text())["completed_at"]
    return found


def test_killed_optimise_resumes_its_round(tmp_path: Path, shared_data: Path) -> None:
    study = tmp_path / "study.yaml"
    study.write_text(STUDY.format(data=shared_data))
    out = tmp_path / "out"
    proc = subprocess.Popen(_cmd(study, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env())
    planned = out / "optimise" / "round-001.json"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if planned.exists() and any((out / "jobs").glob("*.running")):
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    assert planned.exists(), "round 1 was never planned"
    proc.send_signal(signal.SIGKILL)  # its workers die with it (PR_SET_PDEATHSIG)
    proc.wait(timeout=60)
    record = json.loads(planned.read_text())
    assert record["status"] == "planned" and len(record["runs"]) == 1
    assert record["runs"][0]["predicted"] is not None
    round0 = json.loads((out / "optimise" / "round-000.json").read_text())
    assert round0["status"] == "done" and len(round0["measured"]) == 2  # the Latin square's two runs
    before = _completed(out)

    done = subprocess.run(_cmd(study, out), capture_output=True, text=True, env=_env(), timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    after = _completed(out)
    for path, stamp in before.items():
        assert after.get(path) == stamp, f"{path} was recomputed after the kill"
    resumed = json.loads(planned.read_text())
    assert resumed["status"] == "done"
    assert [r["run"] for r in resumed["runs"]] == [r["run"] for r in record["runs"]]
    assert len(resumed["measured"]) == 1 and resumed["tokens_spent"] > round0["tokens_spent"]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["rounds"] == 2 and result["stop"] == "2 rounds"
    # The designs of the study file are not run: only the optimiser's runs are in its rounds.
    rounds_yaml = yaml.safe_load((out / "optimise" / "round-001.yaml").read_text())
    assert not any((rounds_yaml.get("designs") or {}).values())
    assert [r["name"] for r in rounds_yaml["runs"]] == [
        *(r["run"] for r in round0["runs"]), record["runs"][0]["run"]]
    assert not any((out / "jobs").glob("*.failed.json"))

    # The same directory with other weights is refused, before any work.
    other = subprocess.run([*_cmd(study, out)[:-2], "--weights", "maths=1,code=1,general=1"],
                           capture_output=True, text=True, env=_env(), timeout=300)
    assert other.returncode == 2 and "other settings" in other.stderr

    # suggest reads the optimiser's study directory and exports its recommendation.
    export = tmp_path / "export"
    sug = subprocess.run([sys.executable, "-m", "sftmix", "suggest", str(out), "--fractions", "1/256,1/128",
                          "--ks", "0", "--replicates", "10", "--export", str(export)],
                         capture_output=True, text=True, env=_env(), timeout=300)
    assert sug.returncode == 0, sug.stderr[-3000:]
    assert "recommended:" in sug.stdout and "next run" in sug.stdout
    assert json.loads((out / "suggest.json").read_text())["recommended"]["run"] == \
        json.loads(sug.stdout.strip().splitlines()[-1])["recommended"]
    assert (export / "llamafactory" / "dataset_info.json").is_file()
