"""``sftmix lab corpus``: the lab's data written by the CLI, and its errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _sftmix(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sftmix", *args], capture_output=True, text=True)


def test_lab_corpus_writes_every_file(tmp_path: Path) -> None:
    config = tmp_path / "corpus.yaml"
    config.write_text("seed: 3\nsizes: {maths_train: 20, maths_test: 5, code_train: 20, code_test: 5,"
                      " general_train: 20, general_test: 5}\n")
    out = tmp_path / "corpus"
    proc = _sftmix("lab", "corpus", str(out), "--config", str(config))
    assert proc.returncode == 0, proc.stderr
    assert str(out) in proc.stdout
    assert len((out / "maths_train.jsonl").read_text().splitlines()) == 20
    assert len(json.loads((out / "code_train.json").read_text())) == 20
    assert len((out / "general_test.jsonl").read_text().splitlines()) == 5
    again = _sftmix("lab", "corpus", str(out), "--config", str(config))
    assert again.returncode == 0, again.stderr


def test_lab_corpus_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "corpus.yaml"
    config.write_text("seed: 3\nsizes: {maths_trian: 20}\n")
    proc = _sftmix("lab", "corpus", str(tmp_path / "out"), "--config", str(config))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "maths_trian" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_lab_configs_are_valid_studies(monkeypatch, tmp_path: Path) -> None:
    from sftmix.lab.cli import configs_dir, write_corpus
    from sftmix.study.load import load_study
    from sftmix.study.plan import build_plan

    corpus = tmp_path / "corpus"
    config = tmp_path / "corpus.yaml"
    config.write_text("sizes: {maths_train: 16, maths_test: 4, code_train: 16, code_test: 4,"
                      " general_train: 16, general_test: 4}\n")
    write_corpus(corpus, config)
    monkeypatch.setenv("SFTMIX_LAB_DIR", str(corpus))
    full = build_plan(load_study(configs_dir() / "full.yaml"))
    assert {r.design for r in full.runs} == {"scaling", "mixed", "ratio", "strategies"}
    assert full.study.seeds == [0]
    # The demo: every run a lab finding rests on (bench/lab_checks.py), at three seeds, nothing else.
    demo = build_plan(load_study(configs_dir() / "demo.yaml"))
    assert demo.study.seeds == [0, 1, 2]
    runs = {(r.design, tuple(sorted((k, str(v)) for k, v in r.coords.items())), r.seed) for r in demo.runs}
    needed = [("scaling", (("ability", a), ("fraction", f))) for a in ("maths", "code")
              for f in ("1.0", "0.125")]
    needed += [("strategies", (("strategy", "sequential"),)),
               ("strategies", (("k", "0.125"), ("strategy", "dmt")))]
    assert {(d, c, s) for d, c in needed for s in (0, 1, 2)} <= runs
    assert {r.design for r in demo.runs} == {"scaling", "strategies"}
    assert {r.coords.get("strategy") for r in demo.runs if r.design == "strategies"} == {
        "maths-only", "code-only", "general-only", "sequential", "dmt"}
