"""Workers on one CPU machine share its cores instead of fighting for them."""

from __future__ import annotations

import subprocess
import sys

from sftmix.faults import EXECUTOR_ENV
from sftmix.study.pool import usable_cpus, worker_env


def torch_threads(env: dict[str, str]) -> int:
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                         env=env, capture_output=True, text=True, check=True)
    return int(out.stdout)


def test_cpu_workers_split_the_cores() -> None:
    base = {k: v for k, v in __import__("os").environ.items()
            if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    cpus = usable_cpus()
    one = worker_env(None, 1, base)
    many = worker_env(None, cpus + 1, base)
    assert one["OMP_NUM_THREADS"] == str(cpus) and many["OMP_NUM_THREADS"] == "1"
    assert one[EXECUTOR_ENV] and "CUDA_VISIBLE_DEVICES" not in one
    assert torch_threads(worker_env(None, cpus, base)) == 1  # torch takes the setting


def test_a_users_thread_setting_is_kept() -> None:
    env = worker_env("3", 2, {"OMP_NUM_THREADS": "7", "PATH": "/usr/bin"})
    assert env["OMP_NUM_THREADS"] == "7" and "MKL_NUM_THREADS" not in env
    assert env["CUDA_VISIBLE_DEVICES"] == "3"
