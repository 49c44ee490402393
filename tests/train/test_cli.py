"""``sftmix train``: runs a schedule, prints where its outputs are, reports mistakes cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sftmix.artifacts import is_complete
from tests.train.helpers import code_alpaca_examples

ROOT = Path(__file__).resolve().parents[2]


def _sftmix(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SFTMIX_PROGRESS": "0"}
    return subprocess.run([sys.executable, "-m", "sftmix", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_train_runs_a_strategy_on_raw_data_and_prints_its_outputs(shared_data: Path,
                                                                 tmp_path: Path) -> None:
    (tmp_path / "code.jsonl").write_text(
        "".join(e.to_json() + "\n" for e in code_alpaca_examples(shared_data, 8)))
    config = tmp_path / "mixed.yaml"
    config.write_text(f"""
model: {{tiny: {{vocab_size: 1024, hidden: 32, layers: 1, heads: 2}}}}
abilities:
  code: {{data: code.jsonl}}
  maths: {{data: {{path: {shared_data / 'gsm8k' / 'train.jsonl'}, format: gsm8k}}}}
  general: {{data: {{path: {shared_data / 'general' / 'fastchat_identity_sharegpt.json'}, format: sharegpt}}}}
strategy: mixed_sequential
training:
  max_length: 256
  max_steps: 2
  learning_rate: 1.0e-3
  global_batch_size: 2
  per_device_batch_size: 2
  precision: fp32
""")
    proc = _sftmix("train", "mixed.yaml", "-o", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == "training 2 stage(s) into out: 01-specialist, 02-general"
    assert lines[-1] == "final model: out/02-general"
    assert "stage: out/01-specialist" in lines
    assert is_complete(tmp_path / "out" / "01-specialist") and is_complete(tmp_path / "out" / "02-general")
    # Named stages are links to the keyed folders of a study directory of one run.
    assert (tmp_path / "out" / "02-general").resolve().parent == (tmp_path / "out" / "stages").resolve()
    status = _sftmix("status", "out", cwd=tmp_path)
    assert [line.split()[:2] for line in status.stdout.splitlines()[1:4]] == [
        ["model", "1"], ["mixture", "2"], ["stage", "2"]]
    # Run again: nothing to do, same answer.
    again = _sftmix("train", "mixed.yaml", "-o", "out", cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.splitlines()[-1] == "final model: out/02-general"


def test_a_bad_config_exits_2_with_file_line_and_field(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("model: {tiny: {}}\nstages:\n  - name: one\n    data: [{path: x.jsonl}]\n"
                      "training:\n  learning_rate: fast\n")
    proc = _sftmix("train", "bad.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "bad.yaml, line 6, field 'training.learning_rate': found 'fast'" in proc.stderr
    config.write_text("model: {tiny: {}}\nstrategy: {dmt: {}}\nabilities: {general: {data: g.jsonl}}\n")
    proc = _sftmix("train", "bad.yaml", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "bad.yaml, line 2, field 'strategy.dmt.k'" in proc.stderr and "required" in proc.stderr
    config.write_text("model: {tiny: {}}\nabilities: {maths: {data: m.jsonl}}\nstages:\n"
                      "  - name: one\n    data:\n      - {ability: maths}\n      - {ability: physics}\n")
    proc = _sftmix("train", "bad.yaml", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert ("bad.yaml, line 7, field 'stages[0].data[1].ability': found 'physics', expected: one of the "
            "abilities under 'abilities' (['maths'])") in proc.stderr, proc.stderr
    assert not (tmp_path / "runs").exists()  # nothing is created before the file is valid


def test_set_overrides_any_field_and_other_inputs_make_another_stage(
        shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from sftmix.cli import main

    (tmp_path / "code.jsonl").write_text(
        "".join(e.to_json() + "\n" for e in code_alpaca_examples(shared_data, 16)))
    (tmp_path / "one.yaml").write_text("""
model: {tiny: {vocab_size: 300, hidden: 16, layers: 1, heads: 2}}
stages:
  - name: only
    data: [{path: code.jsonl, fraction: 1/16}]
training: {max_length: 1024, epochs: 1, global_batch_size: 1, per_device_batch_size: 1,
           precision: fp32}
""")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SFTMIX_PROGRESS", "0")
    args = ["train", "one.yaml", "-o", "out", "--set", "training.max_steps=1"]
    assert main(args) == 0
    manifest = json.loads((tmp_path / "out" / "01-only" / "data_manifest.json").read_text())
    assert manifest["examples"] == 1  # 1/16 of 16
    log = (tmp_path / "out" / "01-only" / "train_log.jsonl").read_text().splitlines()
    assert len(log) == 1
    quarter = [*args, "--set", "stages[0].data[0].fraction=1/4"]
    # Other inputs are another keyed stage: the name follows it, the first one stays.
    assert main(quarter) == 0
    manifest = json.loads((tmp_path / "out" / "01-only" / "data_manifest.json").read_text())
    assert manifest["examples"] == 4
    assert len(list((tmp_path / "out" / "stages").iterdir())) == 2
    assert main([*quarter, "--overwrite"]) == 0  # accepted for older scripts; nothing to replace
    assert main([*args, "--set", "training.max_steps=0"]) == 2
    assert ("one.yaml as set by --set training.max_steps=0, field 'training.max_steps': found 0"
            in capsys.readouterr().err)
