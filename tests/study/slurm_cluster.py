"""A real SLURM cluster on 127.0.0.1 for the tests: munged, slurmctld, and one slurmd per node
(``nodes``: several nodes on this one host, each slurmd on its own port).

Everything lives in one folder (configuration, keys, state, logs, sockets), on
free ports, so it runs beside any cluster the machine may belong to and leaves
nothing behind. A requeued job may start again once its credential has expired
(``cred_expire``: 120 s by default, 10 s here). The client commands (``sbatch``, ``squeue``, ``scancel``...)
find it through ``SLURM_CONF``, which :meth:`LoopbackCluster.start` exports.

The daemons run as the current user (root in CI). Process tracking is
``proctrack/linuxproc`` (no cgroups in a container); the node advertises more
CPUs than the machine has (``config_overrides``) so that a study's jobs can run
side by side, as on a real node. There is no accounting database: ``sacct``
does not work here, and the executor reads states from ``squeue``, which keeps
finished jobs for ``MinJobAge`` seconds.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from sftmix.study.pool import _die_with_parent

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol")


def missing_binaries() -> list[str]:
    search = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return [b for b in BINARIES if shutil.which(b, path=search) is None]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _binary(name: str) -> str:
    found = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    assert found, name
    return found


class LoopbackCluster:
    def __init__(self, root: Path, cpus: int = 8, nodes: int = 1) -> None:
        self.root = root
        self.cpus = cpus
        self.nodes = [f"node{i}" for i in range(nodes)]
        self.conf = root / "slurm.conf"
        self.socket = root / "munge" / "munge.socket"
        self._procs: list[subprocess.Popen[bytes]] = []
        self._saved_conf: str | None = None

    def _write_config(self) -> None:
        root = self.root
        for sub in ("munge", "state", "spool", "log"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(root / "munge", 0o700)
        key = root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o600)
        user = getpass.getuser()
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
        self.conf.write_text(f"""\
ClusterName=sftmix-loopback
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser={user}
SlurmdUser={user}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.socket},cred_expire=10
StateSaveLocation={root / 'state'}
SlurmdSpoolDir={root / 'spool' / '%n'}
SlurmctldPidFile={root / 'slurmctld.pid'}
SlurmdPidFile={root / 'slurmd.%n.pid'}
SlurmctldLogFile={root / 'log' / 'slurmctld.log'}
SlurmdLogFile={root / 'log' / 'slurmd.%n.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
JobRequeue=1
MinJobAge=3600
KillWait=2
InactiveLimit=0
MessageTimeout=10
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
{self._node_lines(memory)}PartitionName=debug Nodes={",".join(self.nodes)} Default=YES MaxTime=INFINITE State=UP
""")

    def _node_lines(self, memory: int) -> str:
        # Several nodes on one host: each slurmd listens on its own port (Port=).
        ports = [f" Port={_free_port()}" if len(self.nodes) > 1 else "" for _ in self.nodes]
        return "".join(f"NodeName={node} NodeAddr=127.0.0.1 NodeHostname={socket.gethostname()}{port} "
                       f"CPUs={self.cpus} RealMemory={memory} State=UNKNOWN\n"
                       for node, port in zip(self.nodes, ports, strict=True))

    def _start(self, *cmd: str) -> subprocess.Popen[bytes]:
        # The daemons die with the test process, even when it is killed before its teardown.
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                preexec_fn=_die_with_parent)
        self._procs.append(proc)
        return proc

    def start(self, timeout: float = 60) -> None:
        self._write_config()
        root = self.root
        self._start(_binary("munged"), "--foreground", "--force", f"--socket={self.socket}",
                    f"--key-file={root / 'munge' / 'munge.key'}",
                    f"--pid-file={root / 'munge' / 'munged.pid'}",
                    f"--log-file={root / 'log' / 'munged.log'}",
                    f"--seed-file={root / 'munge' / 'munged.seed'}")
        self._wait(lambda: self.socket.exists(), timeout, "munged")
        self._saved_conf = os.environ.get("SLURM_CONF")
        os.environ["SLURM_CONF"] = str(self.conf)
        self._start(_binary("slurmctld"), "-D", "-i", "-f", str(self.conf))
        self._wait(lambda: self._ok("scontrol", "ping") and "UP" in self._out("scontrol", "ping"),
                   timeout, "slurmctld")
        for node in self.nodes:
            (root / "spool" / node).mkdir(parents=True, exist_ok=True)
            self._start(_binary("slurmd"), "-D", "-N", node, "-f", str(self.conf))
        self._wait(lambda: all(state in ("idle", "mix", "alloc") for state in
                               self._out("sinfo", "-h", "-N", "-o", "%t").split()) and
                   len(self._out("sinfo", "-h", "-N", "-o", "%t").split()) == len(self.nodes),
                   timeout, "slurmd")

    def _ok(self, *cmd: str) -> bool:
        return subprocess.run(cmd, capture_output=True).returncode == 0

    def _out(self, *cmd: str) -> str:
        return subprocess.run(cmd, capture_output=True, text=True).stdout

    def _wait(self, ready, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            for proc in self._procs:
                if proc.poll() is not None:
                    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                    raise RuntimeError(f"{what}: {proc.args[0]} exited with {proc.returncode}: {err[-2000:]}"
                                       f"\n{self.logs()}")
            time.sleep(0.2)
        raise RuntimeError(f"{what} did not come up within {timeout:.0f} s\n{self.logs()}")

    def logs(self) -> str:
        out = []
        for path in sorted((self.root / "log").glob("*.log")):
            out.append(f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-20:]))
        return "\n".join(out)

    def stop(self) -> None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(["scancel", "--full", "--user", getpass.getuser()], capture_output=True, timeout=20)
        for proc in reversed(self._procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        self._procs.clear()
        if self._saved_conf is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = self._saved_conf
