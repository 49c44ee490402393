"""bench/real_model_gpu.py on the CPU: the parts a GPU machine receives, checked on arrival, and
the whole run -- GGUF joined, study, status, results, report, suggest, what comes back --
at the smallest cut (the base model alone, one item per suite), also when the deadline cuts
the study short."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from sftmix.train.models import smollm2_gguf_path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "real_model_gpu.py"
OUT_FILES = {"run.log", "results.sqlite", "report.tar.gz", "study.tar.gz", "evals.tar.gz",
             "suggest.txt", "timings.json", "summary.json"}
SMALLEST = ["--set", "designs={}", "--limit", "1",
            *(x for suite in ("gsm8k", "humaneval", "mbpp", "ifeval")
              for x in ("--set", f"evaluation.{suite}.max_new_tokens=8",
                        "--set", f"evaluation.{suite}.generator.batch_size=1"))]


def script(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    folder = tmp_path_factory.mktemp("real-model") / "assets"
    prepared = script("--prepare", "--no-wheels", "--assets", str(folder), "--data-dir", str(shared_data))
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    sizes = json.loads(prepared.stdout.splitlines()[-1])["mib"]
    # Each part fits one transfer beside the working tree (64 MiB in all).
    assert all(0 < mib < 50 for mib in sizes.values()), sizes
    return folder


def test_the_parts_are_checked_on_arrival_and_the_gguf_joined(assets: Path, tmp_path: Path) -> None:
    assert script("--arrive", "env", "--no-install", "--assets", str(assets)).returncode == 0
    assert script("--arrive", "gguf1", "--assets", str(assets)).returncode == 0
    arrived = script("--arrive", "gguf2", "--assets", str(assets))
    assert arrived.returncode == 0, arrived.stdout
    joined = assets / "model" / smollm2_gguf_path().name
    assert joined.read_bytes() == smollm2_gguf_path().read_bytes()
    data = json.loads((assets / "env" / "manifest.json").read_text())["files"]
    assert "data/gsm8k/train.jsonl" in data and "data/general/sharegpt_dpo_chosen.json" in data

    # A part damaged on the way is named, and nothing is joined from it.
    broken = tmp_path / "broken"
    subprocess.run(["cp", "-r", str(assets), str(broken)], check=True)
    (broken / "model" / joined.name).unlink()
    part = next((broken / "gguf2").glob("*.gguf2"))
    with open(part, "r+b") as fh:
        fh.seek(1000)
        fh.write(b"\x00" if fh.read(1) != b"\x00" else b"\x01")
    refused = script("--arrive", "gguf2", "--assets", str(broken))
    assert refused.returncode == 1
    assert f"wrong or missing: {part.name}" in refused.stdout
    assert not (broken / "model" / joined.name).exists()


@pytest.mark.slow
@pytest.mark.real_model
def test_the_run_writes_what_comes_back_also_when_cut_short(assets: Path, tmp_path: Path) -> None:
    study = tmp_path / "study"
    common = ["--assets", str(assets), "--no-install", "--study-dir", str(study)]
    # The deadline passes at once: the study is interrupted, the rest still reports and packs.
    cut = script(*common, "--out", str(tmp_path / "cut"), "--deadline", "1", "--reserve", "0", "--", *SMALLEST)
    assert cut.returncode == 1
    # Everything but the results store, which the study had no time to create.
    assert {p.name for p in (tmp_path / "cut").iterdir()} == OUT_FILES - {"results.sqlite"}
    log = (tmp_path / "cut" / "run.log").read_text()
    assert "deadline reached: interrupting" in log and "GGUF joined" in log
    assert json.loads((tmp_path / "cut" / "summary.json").read_text())["steps"]["run"]["exit"] != 0

    # Run again: it resumes the same study directory and completes it.
    out = tmp_path / "out"
    done = script(*common, "--out", str(out), "--", *SMALLEST)
    assert done.returncode == 0, done.stdout[-4000:]
    assert {p.name for p in out.iterdir()} == OUT_FILES
    summary = json.loads((out / "summary.json").read_text())
    assert {k: summary["steps"][k]["exit"] for k in ("plan", "run", "status", "results", "report")} == dict.fromkeys(
        ("plan", "run", "status", "results", "report"), 0)
    timings = json.loads((out / "timings.json").read_text())
    assert timings["per_kind"]["eval"]["jobs"] == 4
    assert all(j["state"] == "done" and j["wall_s"] >= 0 for j in timings["jobs"])
    assert sorted(e["suite"] for e in timings["evals"]) == ["gsm8k", "humaneval", "ifeval", "mbpp"]
    assert all(e["items"] == 1 and e["elapsed_s"] > 0 for e in timings["evals"])
    # The study read the data and the GGUF that travelled, not ../shared or the package.
    written = (study / "study.yaml").read_text()
    assert str(assets / "model") in written
    digest = hashlib.sha256((assets / "model" / smollm2_gguf_path().name).read_bytes()).hexdigest()
    assert digest in (assets / "gguf2" / "manifest.json").read_text()
    with tarfile.open(out / "evals.tar.gz") as tar:
        items = [n for n in tar.getnames() if n.endswith("items.jsonl")]
    assert len(items) == 4
    with tarfile.open(out / "report.tar.gz") as tar:
        assert any(n.endswith(".html") for n in tar.getnames())
