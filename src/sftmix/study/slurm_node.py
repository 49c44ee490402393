"""What runs inside a SLURM allocation: one study job, supervised.

submitit starts a :class:`NodeCommand` on the node. It runs the same command as the
local executor, ``python -m sftmix.study.worker JOB.json``, as a child process
whose output goes to the study's ``logs/<key>.log`` -- or, for a stage that asks
for several processes, that command under ``accelerate launch`` (DDP, or the
FSDP / DeepSpeed configuration named in the executor block).

A stage that asks for several nodes is one SLURM job of one task per node (``srun``
starts them; submitit's script does it): each task runs this command, which starts
the launcher of its node with SLURM's rendezvous -- the first node of the allocation
(``SLURM_JOB_NODELIST``, its address as ``scontrol`` knows it) at a port derived from
the job id, and its own rank, ``SLURM_NODEID``. Node 0 writes the job's log; node k
writes ``<key>.node<k>.log`` beside it.

The scheduler's warning (``--signal=USR2@<warning_seconds>``, sent before a
preemption or the end of the time limit) reaches every process of the job. A
stage's training processes then save a checkpoint at the end of the step under
way and stop (``sftmix.train.preemption``); this process waits for them and
requeues the job (``scontrol requeue``), which starts again from that
checkpoint under the same SLURM id, so dependent jobs keep waiting on it. Any
other job ignores the warning and runs until it ends or is killed at its limit
(TIMEOUT). After ``max_requeues`` restarts a stage ignores it too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sftmix.study.pool import THREAD_VARIABLES
from sftmix.train.preemption import PREEMPTED_EXIT, SIGNAL_ENV

log = logging.getLogger(__name__)

WARNING_SIGNAL = signal.SIGUSR2  # submitit asks SLURM for USR2 (sbatch --signal)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_host(nodelist: str) -> str:
    """The first host of a SLURM host list: ``gpu-[017-020,031],login1`` -> ``gpu-017``."""
    first = re.match(r"([^,\[]*)(\[([^\]]*)\])?([^,]*)", nodelist.strip())
    if first is None or not first[0]:
        raise ValueError(f"not a SLURM host list: {nodelist!r}")
    prefix, _, ranges, suffix = first.groups()
    if ranges is None:
        return prefix + suffix
    return prefix + ranges.split(",")[0].split("-")[0] + suffix


def node_address(host: str) -> str:
    """The address SLURM reaches ``host`` at (its ``NodeAddr``), else the host name itself."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        shown = subprocess.run(["scontrol", "show", "node", host], capture_output=True, text=True,
                               timeout=30).stdout
        found = re.search(r"\bNodeAddr=(\S+)", shown)
        if found:
            return found[1]
    return host


def rendezvous(env: Mapping[str, str]) -> tuple[str, str, int, int]:
    """(first node's address, port, this node's rank, nodes) of a multi-node allocation, from
    the variables ``srun`` sets; ``MASTER_ADDR`` / ``MASTER_PORT`` win where set."""
    try:
        nodes, rank = int(env["SLURM_NNODES"]), int(env["SLURM_NODEID"])
        address = env.get("MASTER_ADDR") or node_address(first_host(env["SLURM_JOB_NODELIST"]))
    except (KeyError, ValueError) as exc:
        raise RuntimeError(f"a multi-node stage runs under srun, which sets SLURM_NNODES, SLURM_NODEID "
                           f"and SLURM_JOB_NODELIST ({exc})") from None
    # Every node must agree on the port without talking: derive it from the job id.
    port = env.get("MASTER_PORT") or str(20000 + int(env.get("SLURM_JOB_ID", "0") or 0) % 20000)
    return address, port, rank, nodes


def _ignore_warning() -> None:
    # Inherited through exec: the accelerate launcher, which would die of USR2, ignores it;
    # the training processes install their own handler once training starts.
    signal.signal(WARNING_SIGNAL, signal.SIG_IGN)
    os.setpgrp()


@dataclass
class NodeCommand:
    key: str
    job_file: str
    log_file: str
    cpus: int = 1
    processes: int = 1  # on each node
    accelerate_config: str | None = None
    nodes: int = 1
    checkpoint_on_warning: bool = False
    max_requeues: int = 0
    python: str = field(default_factory=lambda: sys.executable)

    def command(self, env: Mapping[str, str] | None = None) -> list[str]:
        """The command of this node (``env``: the task's environment, for a multi-node stage)."""
        worker = ["-m", "sftmix.study.worker", self.job_file]
        if self.processes <= 1 and self.nodes <= 1:
            return [self.python, *worker]
        launch = [self.python, "-m", "accelerate.commands.launch",
                  "--num_processes", str(self.processes * self.nodes)]
        if self.nodes > 1:
            address, port, rank, nodes = rendezvous(os.environ if env is None else env)
            if nodes != self.nodes:
                raise RuntimeError(f"job {self.key} asked for {self.nodes} nodes and runs on {nodes}")
            launch += ["--num_machines", str(nodes), "--machine_rank", str(rank),
                       "--main_process_ip", address, "--main_process_port", port]
        else:
            launch += ["--num_machines", "1", "--main_process_port", str(_free_port())]
        if self.accelerate_config:
            launch += ["--config_file", self.accelerate_config]
        else:  # plain DDP; accelerate's multi-process launcher is --multi_gpu whatever the device
            launch += ["--multi_gpu", "--mixed_precision", "no", "--dynamo_backend", "no"]
        return [*launch, *worker]

    def environment(self, checkpointing: bool) -> dict[str, str]:
        env = dict(os.environ)
        if "OMP_NUM_THREADS" not in env:
            threads = str(max(1, self.cpus // max(1, self.processes)))
            for name in THREAD_VARIABLES:
                env.setdefault(name, threads)
        env["SFTMIX_PROGRESS"] = "0"  # a log file, not a terminal
        if checkpointing:
            env[SIGNAL_ENV] = WARNING_SIGNAL.name
        else:
            env.pop(SIGNAL_ENV, None)
        return env

    def __call__(self) -> int:
        restarts = int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0)
        checkpointing = self.checkpoint_on_warning and restarts < self.max_requeues
        warned = False
        child: subprocess.Popen[bytes] | None = None

        def on_warning(signum: int, frame: object) -> None:
            nonlocal warned
            warned = True
            if child is not None and checkpointing:
                # SLURM signals every process of the job already; this reaches the
                # training processes too where the scheduler only signals the first one.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, WARNING_SIGNAL)

        # Replaces submitit's own handler, which would requeue at once, before a checkpoint.
        signal.signal(WARNING_SIGNAL, on_warning if checkpointing else signal.SIG_IGN)
        node = int(os.environ.get("SLURM_NODEID", "0") or 0) if self.nodes > 1 else 0
        log_file = Path(self.log_file)
        if node:  # the other nodes of a multi-node stage: a log each, beside the job's
            log_file = log_file.with_name(f"{log_file.stem}.node{node}{log_file.suffix}")
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "ab") as out:
            out.write(f"--- SLURM job {os.environ.get('SLURM_JOB_ID', '?')} on {socket.gethostname()}, "
                      f"restart {restarts}\n".encode())
            out.flush()
            child = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT,
                                     env=self.environment(checkpointing), preexec_fn=_ignore_warning)
            while (code := child.poll()) is None:
                time.sleep(0.5)
        if code == 0:
            return 0
        if checkpointing and (warned or code == PREEMPTED_EXIT):
            job_id = os.environ.get("SLURM_JOB_ID")
            log.warning("job %s (%s) checkpointed after the warning signal; requeueing", self.key, job_id)
            if job_id and node == 0:  # one requeue for the whole job
                subprocess.run(["scontrol", "requeue", job_id], check=True, timeout=60)
            sys.exit(PREEMPTED_EXIT)
        raise RuntimeError(f"job {self.key} exited with code {code}; log: {log_file}")
