"""The SLURM executor's cost on a real one-node SLURM (loopback), against the local executor.

Starts the loopback cluster the tests use (munged, slurmctld, slurmd on
127.0.0.1; needs the Debian packages that ``.ci/system-deps`` installs), then,
in the same run:

* **per-job overhead, submission to start.** ``plain``: bare ``sbatch --wrap``
  jobs that write the time they start (the scheduler's own latency, the
  baseline), timed both from ``sbatch`` to the job's first command and, on
  SLURM's clock, from ``SubmitTime`` to ``StartTime``. ``sftmix``: the reduced
  study's jobs through ``--executor slurm``, from the moment each could start
  (submitted, and its dependencies ended) to the moment its job started
  (SLURM's ``StartTime``; whole seconds) -- the figure to set beside the plain
  jobs' SLURM-clock one;
* **wall time of the reduced study** (the tiny-Llama study of
  ``tests/study/test_slurm.py``: a base model, two mixtures, two DMT stages, one
  evaluation job of three suites), local executor against ``--executor slurm
  --wait``, one thread per job in both.

Usage (as root, on a machine with nothing else running)::

    python bench/slurm_bench.py [--quick]

The last line printed is a JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from statistics import mean, median

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import shared_data_dir  # noqa: E402
from tests.study.slurm_cluster import LoopbackCluster, missing_binaries  # noqa: E402
from tests.study.test_slurm import _write_study  # noqa: E402


def _sftmix(*args: str | Path) -> float:
    env = dict(os.environ, SFTMIX_PROGRESS="0", OMP_NUM_THREADS="1")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "sftmix", *map(str, args)], capture_output=True,
                          text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"sftmix {' '.join(map(str, args))} failed:\n{proc.stdout}\n{proc.stderr[-3000:]}")
    return time.monotonic() - started


def job_times(job_id: str) -> tuple[float, float, float]:
    """SLURM's SubmitTime, StartTime and EndTime of a job (whole seconds)."""
    fields = dict(item.split("=", 1) for item in subprocess.run(
        ["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True,
        check=True).stdout.split() if "=" in item)
    return (_slurm_time(fields["SubmitTime"]), _slurm_time(fields["StartTime"]),
            _slurm_time(fields["EndTime"]))


def plain_latency(folder: Path, jobs: int) -> tuple[list[float], list[float]]:
    """Bare jobs, one at a time: seconds from ``sbatch`` to the job's first command (client
    clock), and from submission to SLURM's StartTime (SLURM's clock, as for sftmix's jobs)."""
    first_command, allocated = [], []
    for i in range(jobs):
        stamp = folder / f"plain{i}.txt"
        submitted = time.time()
        job_id = subprocess.run(["sbatch", "--parsable", "-o", "/dev/null", "--wrap",
                                 f"date +%s.%N > {stamp}"], check=True, capture_output=True,
                                text=True).stdout.strip().split(";")[0]
        while not stamp.exists() or not stamp.read_text().strip():
            time.sleep(0.02)
        first_command.append(float(stamp.read_text()) - submitted)
        submit, start, _ = job_times(job_id)
        allocated.append(start - submit)
    return first_command, allocated


def _slurm_time(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def sftmix_latency(out: Path) -> list[float]:
    """Per job of the study: SLURM's StartTime minus the moment it could start (submitted,
    and every dependency ended), in whole seconds."""
    from sftmix.study.slurm_queue import read_records

    records = read_records(out)
    times = {record["job_id"]: job_times(record["job_id"]) for record in records.values()}
    out_ = []
    for record in records.values():
        submit, start, _ = times[record["job_id"]]
        out_.append(start - max([submit, *(times[d][2] for d in record["deps"])]))
    return out_


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 plain jobs instead of 20")
    args = parser.parse_args()
    missing = missing_binaries()
    if missing:
        raise SystemExit(f"SLURM is not installed ({', '.join(missing)}); run: bash .ci/system-deps")
    data = shared_data_dir()
    with tempfile.TemporaryDirectory(prefix="slurm-bench-") as tmp:
        root = Path(tmp)
        cluster = LoopbackCluster(root / "cluster")
        cluster.start()
        try:
            plain, plain_allocated = plain_latency(root, 5 if args.quick else 20)
            study = _write_study(root / "local", data, "bench")
            local = _sftmix("run", study, "-o", root / "local" / "out", "--executor", "local")
            study = _write_study(root / "slurm", data, "bench")
            slurm = _sftmix("run", study, "-o", root / "slurm" / "out", "--wait")
            to_start = sftmix_latency(root / "slurm" / "out")
        finally:
            cluster.stop()
    figures = {
        "plain_sbatch_to_start_s": {"median": round(median(plain), 3), "mean": round(mean(plain), 3),
                                    "max": round(max(plain), 3), "jobs": len(plain)},
        "plain_submit_to_start_slurm_clock_s": {
            "mean": round(mean(plain_allocated), 2), "max": round(max(plain_allocated), 2),
            "jobs": len(plain_allocated), "resolution_s": 1},
        "sftmix_ready_to_start_s": {"mean": round(mean(to_start), 2), "max": round(max(to_start), 2),
                                    "jobs": len(to_start), "resolution_s": 1},
        "study_wall_s": {"local": round(local, 1), "slurm": round(slurm, 1),
                         "ratio_slurm_over_local": round(slurm / local, 2)},
    }
    print(f"plain sbatch, submission to start: median {figures['plain_sbatch_to_start_s']['median']} s")
    print(f"plain sbatch, submission to start (SLURM clock): mean "
          f"{figures['plain_submit_to_start_slurm_clock_s']['mean']} s")
    print(f"sftmix jobs, ready to start (SLURM clock): mean {figures['sftmix_ready_to_start_s']['mean']} s")
    print(f"reduced study: local {local:.1f} s, SLURM {slurm:.1f} s ({slurm / local:.2f}x)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
