"""The benchmark files shipped with sftmix: manifest, licenses, and ``sftmix eval`` with no data flag."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from sftmix.cli import main
from sftmix.eval.runner import build_suite
from sftmix.eval.task_options import DEFAULT_PATHS, bundled_dir, bundled_path
from tests.conftest import ROOT
from tests.eval.models import one_torch_thread, tiny_model_dir

# Licenses that allow redistribution of an unchanged copy with its notice.
REDISTRIBUTABLE = {"MIT", "Apache-2.0", "CC-BY-4.0"}


def manifest() -> dict:
    return json.loads((bundled_dir() / "manifest.json").read_text())


def test_manifest_lists_every_file_with_license_and_checksum(shared_data: Path) -> None:
    files = manifest()["files"]
    listed = {f["path"] for f in files}
    on_disk = {str(p.relative_to(bundled_dir())) for p in bundled_dir().rglob("*.jsonl")}
    assert listed == on_disk
    notice = (bundled_dir() / "LICENSES.md").read_text()
    for f in files:
        data = (bundled_dir() / f["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f["sha256"], f["path"]
        assert len(data) == f["bytes"] and f["records"] == len(data.splitlines())
        assert f["license"] in REDISTRIBUTABLE and f"`{f['path']}`" in notice
        # Copied as published: byte for byte the copy in the shared data folder.
        assert (shared_data / f["path"]).read_bytes() == data, f["path"]
    suites = {f["suite"] for f in files}
    assert suites == set(DEFAULT_PATHS)
    assert all(bundled_path(s) is not None for s in DEFAULT_PATHS)


@pytest.mark.parametrize("suite", sorted(DEFAULT_PATHS))
def test_every_suite_reads_its_bundled_file(suite: str) -> None:
    task = build_suite(suite, {})
    assert len(task.items(limit=3)) == 3


@pytest.mark.slow
def test_the_wheel_carries_the_benchmarks(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--quiet", "-w", str(tmp_path), str(ROOT)], check=True, timeout=600,
                   capture_output=True)
    wheel = next(tmp_path.glob("sftmix-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in manifest()["files"]:
        assert f"sftmix/resources/benchmarks/{f['path']}" in names
    assert {"sftmix/resources/benchmarks/manifest.json",
            "sftmix/resources/benchmarks/LICENSES.md"} <= names


@pytest.mark.slow
def test_eval_with_no_data_flag_uses_the_bundled_benchmarks(
        tmp_path: Path, shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    model = tiny_model_dir(shared_data, tmp_path_factory)
    env = {k: v for k, v in os.environ.items() if k != "SFTMIX_DATA_DIR"}
    env["OMP_NUM_THREADS"] = "1"
    run = subprocess.run(
        [sys.executable, "-m", "sftmix", "eval", str(model), "--suite", "gsm8k,humaneval,mbpp,ifeval",
         "--limit", "2", "--max-new-tokens", "8", "-o", "out"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert set(summary) == {"gsm8k", "humaneval", "mbpp", "ifeval"}
    assert all(s["n_items"] == 2 for s in summary.values())
    ids = {suite: [json.loads(line)["id"] for line in
                   (tmp_path / "out" / suite / "items.jsonl").read_text().splitlines()]
           for suite in summary}
    assert ids["humaneval"] == ["HumanEval/0", "HumanEval/1"]
    assert ids["mbpp"] == ["mbpp/11", "mbpp/12"]
    ifeval_keys = [json.loads(line)["key"] for line in
                   bundled_path("ifeval").read_text().splitlines()[:2]]
    assert ids["ifeval"] == [f"ifeval/{k}" for k in ifeval_keys]
    question = json.loads(bundled_path("gsm8k").read_text().splitlines()[0])["question"]
    first = json.loads((tmp_path / "out" / "gsm8k" / "items.jsonl").read_text().splitlines()[0])
    assert question in first["prompt"]
    assert "gsm8k" in run.stdout and "pass@1*" in run.stdout


def test_data_dir_and_path_override_the_bundled_files(
        tmp_path: Path, shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    model = tiny_model_dir(shared_data, tmp_path_factory)
    data = tmp_path / "data"
    (data / "gsm8k").mkdir(parents=True)
    (data / "gsm8k" / "test.jsonl").write_text(json.dumps(
        {"question": "How many legs do 3 ducks have?", "answer": "3 * 2 = 6\n#### 6"}) + "\n")
    ifeval = tmp_path / "mine.jsonl"
    ifeval.write_text(json.dumps({"key": 77, "prompt": "Say hi without commas.",
                                  "instruction_id_list": ["punctuation:no_comma"],
                                  "kwargs": [{}]}) + "\n")
    out = tmp_path / "out"
    with one_torch_thread():
        code = main(["eval", str(model), "--suite", "gsm8k,ifeval", "--data-dir", str(data),
                     "--set", f"ifeval.path={ifeval}", "--max-new-tokens", "4", "-o", str(out)])
    assert code == 0
    gsm8k = [json.loads(line) for line in (out / "gsm8k" / "items.jsonl").read_text().splitlines()]
    assert len(gsm8k) == 1 and "3 ducks" in gsm8k[0]["prompt"]
    items = [json.loads(line) for line in (out / "ifeval" / "items.jsonl").read_text().splitlines()]
    assert [i["id"] for i in items] == ["ifeval/77"]
