"""Two processes (accelerate launch, CPU, gloo) follow the loss curve of one process
with the same global batch."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sftmix.train.trainer import read_train_log
from tests.train.helpers import code_alpaca_examples, gsm8k_examples

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """
model: {{tiny: {{vocab_size: 1024, hidden: 64, layers: 2, heads: 4}}}}
training:
  max_length: 384
  packing: false
  epochs: 1
  learning_rate: 1.0e-3
  global_batch_size: 4
  per_device_batch_size: {per_device}
  precision: fp32
  seed: 11
stages:
  - name: one
    data: [{{path: data.jsonl}}]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd: list[str], cwd: Path) -> None:
    env = {**os.environ, "SFTMIX_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("accelerate") is None and not (Path(sys.executable).parent / "accelerate").exists(),
                    reason="the accelerate launcher is not installed")
def test_two_processes_follow_the_single_process_loss_curve(shared_data: Path, tmp_path: Path) -> None:
    """Global batch 4: one process x 4 rows against two processes x 2 rows (DDP over gloo).
    32 examples make 8 full global batches, so no process pads its last batch.
    Tolerance: losses rtol 1e-5, weights rtol 1e-4 / atol 1e-5 (fp32; the all-reduce
    sums the two halves of each gradient in another order than one process does)."""
    examples = gsm8k_examples(shared_data, 16) + code_alpaca_examples(shared_data, 16)
    (tmp_path / "data.jsonl").write_text("".join(e.to_json() + "\n" for e in examples))
    (tmp_path / "one.yaml").write_text(CONFIG.format(per_device=4))
    (tmp_path / "two.yaml").write_text(CONFIG.format(per_device=2))
    _run([sys.executable, "-m", "sftmix", "train", "one.yaml", "-o", "one"], tmp_path)
    launcher = Path(sys.executable).parent / "accelerate"
    _run([str(launcher) if launcher.exists() else "accelerate", "launch", "--multi_gpu",
          "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
          "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
          "-m", "sftmix", "train", "two.yaml", "-o", "two"], tmp_path)

    one, two = tmp_path / "one" / "01-one", tmp_path / "two" / "01-one"
    assert json.loads((two / "stage_config.json").read_text())["world_size"] == 2
    assert json.loads((one / "stage_config.json").read_text())["world_size"] == 1
    log_one, log_two = read_train_log(one / "train_log.jsonl"), read_train_log(two / "train_log.jsonl")
    assert [r["step"] for r in log_two] == list(range(1, 9))
    # The same rows in the same global batches: token counts agree exactly.
    assert [r["tokens"] for r in log_two] == [r["tokens"] for r in log_one]
    assert [r["trainable_tokens"] for r in log_two] == [r["trainable_tokens"] for r in log_one]
    torch.testing.assert_close([r["loss"] for r in log_two], [r["loss"] for r in log_one],
                               rtol=1e-5, atol=1e-6)
    w_one, w_two = load_file(one / "model.safetensors"), load_file(two / "model.safetensors")
    for name in w_one:
        torch.testing.assert_close(w_two[name], w_one[name], rtol=1e-4, atol=1e-5)
