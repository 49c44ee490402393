"""Run untrusted Python programs (model-written code) in an isolated child process.

Every program runs in its own interpreter (``python -I``), in a new session and
process group, with a scrubbed environment (only ``PATH``, ``LANG``, ``HOME``,
``TMPDIR`` and single-thread hints: no API keys or tokens), its own temporary
working directory, and ``resource`` limits on CPU time, address space, file
size, number of processes/threads and open files. The wall-time limit kills the
whole run with SIGKILL. Output is captured up to a cap (head and tail kept).

Two isolation modes, chosen once per process (``isolation="auto"``):

``namespaces`` (root with ``unshare``): the program runs in fresh network, mount
    and PID namespaces (``unshare --net --mount --pid --fork --mount-proc``), as
    a per-run unprivileged uid with no groups and ``no_new_privs``. It sees no
    network at all (not even loopback), only its own processes in ``/proc``,
    and private size-limited tmpfs on ``/tmp``, ``/var/tmp``, ``/dev/shm`` and
    ``/run/lock``. The run's interpreter is PID 1 of its namespace, so when it
    exits or is killed the kernel kills every descendant, however daemonised;
    the uid is unique per concurrent run, so ``RLIMIT_NPROC`` bounds one run's
    processes only and the run cannot signal or ptrace anything of ours.
``process`` (fallback: not root, or no namespaces): the same uid as the caller,
    a temporary directory as cwd, sockets refused by patching the ``socket``
    module when it is imported (NOT a security boundary: ``_socket`` or
    ``ctypes`` bypass it), and descendants hunted after the run through ``/proc`` by session,
    process group and a per-run marker in their environment.

In both modes a seccomp filter installed by the driver refuses new namespaces
(``unshare -r`` and ``clone(CLONE_NEWUSER)`` fail; see docs/sandbox.md).

Scoring: a run *passes* only if the interpreter exits with status 0 **and**
the trusted epilogue wrote a random per-run nonce on a private pipe after the
program and its checks completed (see :mod:`sftmix.eval.sandbox.driver`).

What this does NOT protect against (read before running hostile code):

- kernel exploits or bugs in namespaces; this is not a VM or gVisor;
- reading world-readable files anywhere on the machine (there is no
  filesystem view other than the private tmpfs mounts; the host filesystem is
  not writable by the run's uid except where it is world-writable outside the
  covered directories);
- CPU and memory-bandwidth contention with other work (no cgroups), and page
  cache or kernel memory used on its behalf;
- a program written to forge a pass: the checks run in the same interpreter,
  so code that searches its own memory for the nonce, patches shared modules
  the tests import (``math``, ...), returns objects whose ``__eq__`` is always
  true, or edits objects through ``ctypes`` can make failing tests look
  passed. The scheme defeats early exits, redefinition of ``check`` or of
  builtins, and swallowing the tests with an unterminated string — not a
  deliberate attack on the scoring;
- in ``process`` mode: network access through the raw ``_socket`` module,
  signals to the caller's processes (same uid), reading the caller's
  environment through ``/proc``, writes anywhere the caller may write, zombies of escaped descendants, and a descendant that clears its
  environment and leaves the session before it is found.
"""

from __future__ import annotations

import logging
import marshal
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path

from sftmix.errors import ConfigError, SftmixError
from sftmix.eval.sandbox.watch import boot_ticks, capture_output, hunt_marked_processes

log = logging.getLogger(__name__)

_DRIVER = (Path(__file__).with_name("driver.py")).read_text(encoding="utf-8")
# For this very interpreter the driver is sent compiled (marshal is version-specific),
# ahead of the payload on stdin, which saves compiling it in every run.
_DRIVER_CODE = marshal.dumps(compile(_DRIVER, "<sftmix-sandbox-driver>", "exec"))
_BOOTSTRAP = "import marshal, sys; exec(marshal.load(sys.stdin.buffer))"
_SETUP_FAILED = 97
_MARKER_ENV = "SFTMIX_SANDBOX_RUN"
_WORKDIR_IN_NAMESPACE = "/tmp/work"
_UNSHARE = ("--net", "--mount", "--pid", "--fork", "--mount-proc", "--kill-child")


class Status(StrEnum):
    PASSED = "passed"  # exit 0 and the completion marker
    FAILED = "failed"  # raised, crashed, was killed by a limit, or exited early
    TIMEOUT = "timeout"  # wall-time or CPU-time limit
    ERROR = "error"  # the sandbox itself could not run the program


@dataclass(frozen=True)
class Limits:
    """Per-run limits; the defaults suit HumanEval/MBPP-style test programs."""

    timeout_s: float = 3.0  # wall time; the whole run is SIGKILLed after it
    cpu_s: int | None = None  # RLIMIT_CPU; default: the wall time rounded up, plus 1
    memory_bytes: int = 1 << 30  # RLIMIT_AS (address space)
    file_size_bytes: int = 16 << 20  # RLIMIT_FSIZE (largest file it may write)
    disk_bytes: int = 64 << 20  # size of each private tmpfs (namespaces mode)
    max_processes: int = 32  # RLIMIT_NPROC: processes and threads of the run
    open_files: int = 64  # RLIMIT_NOFILE
    output_bytes: int = 64 << 10  # captured per stream (head and tail halves)

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value is not None and not value > 0:
                raise ConfigError(f"sandbox limit '{name}' is {value!r}; expected a positive "
                                  "number")

    def rlimits(self) -> dict[str, int]:
        cpu = self.cpu_s if self.cpu_s is not None else int(self.timeout_s + 0.999) + 1
        return {
            "RLIMIT_CPU": cpu,
            "RLIMIT_AS": self.memory_bytes,
            "RLIMIT_FSIZE": self.file_size_bytes,
            "RLIMIT_NPROC": self.max_processes,
            "RLIMIT_NOFILE": self.open_files,
            "RLIMIT_CORE": 0,
        }


@dataclass(frozen=True)
class Program:
    """Source to run, and optional check code run after it with pristine builtins.

    ``expose`` lists names the check code must see from the program even when
    they shadow a builtin (e.g. an entry point called ``sum``).
    """

    source: str
    check: str = ""
    expose: tuple[str, ...] = ()


@dataclass
class ExecResult:
    status: Status
    reason: str
    exit_code: int | None
    signal: int | None
    stdout: str
    stderr: str
    duration_s: float
    marker: bool
    output_truncated: bool = False
    isolation: str = ""
    run_id: str = ""  # the value of SFTMIX_SANDBOX_RUN in the run's environment

    @property
    def passed(self) -> bool:
        return self.status is Status.PASSED


class _UidPool:
    """Distinct unprivileged uids for concurrent runs of this process.

    The range depends on our pid so that two evaluations on one machine do not
    share uids (RLIMIT_NPROC counts per uid).
    """

    def __init__(self, size: int = 100) -> None:
        base = 1_000_000_000 + (os.getpid() % 100_000) * size
        self.uids = range(base, base + size)
        self._free = list(reversed(self.uids))
        self._lock = threading.Lock()

    def acquire(self) -> int:
        with self._lock:
            if not self._free:
                raise SftmixError("more than 100 concurrent sandbox runs in one process; "
                                  "use fewer workers")
            return self._free.pop()

    def release(self, uid: int) -> None:
        with self._lock:
            self._free.append(uid)


_UIDS = _UidPool()


def sandbox_uids() -> range:
    """The uids this process gives its runs in namespaces mode (to look for leftovers)."""
    return _UIDS.uids


@cache
def namespaces_available() -> bool:
    """Whether runs can get fresh net/mount/PID namespaces here (probed once, with a real run).

    Needs root and ``unshare``; the probe also catches hosts where namespaces
    can be created but mounting inside them is refused.
    """
    if os.name != "posix" or os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    uid = _UIDS.acquire()
    try:
        probe = _run(Program("pass"), Limits(timeout_s=30.0), "namespaces", uid, None,
                     _argv(None, site_packages=False))
    finally:
        _UIDS.release(uid)
    if not probe.passed:
        log.warning("sandbox namespaces unavailable, falling back to process isolation: %s",
                    probe.reason or probe.stderr[-300:])
    return probe.passed


def _argv(python: str | None, site_packages: bool) -> list[str]:
    source = _BOOTSTRAP if python in (None, sys.executable) else _DRIVER
    return [python or sys.executable, "-I", *(() if site_packages else ("-S",)), "-c", source]


def resolve_isolation(isolation: str) -> str:
    """``auto``/``namespaces``/``process`` to the mode runs will use; errors name the choices."""
    if isolation == "auto":
        return "namespaces" if namespaces_available() else "process"
    if isolation == "namespaces" and not namespaces_available():
        raise SftmixError("sandbox isolation 'namespaces' was requested but this process cannot "
                          "create namespaces (it needs root and the 'unshare' tool); use "
                          "isolation 'auto' or 'process'")
    if isolation not in ("namespaces", "process"):
        raise SftmixError(f"unknown sandbox isolation '{isolation}'; expected one of: "
                          "auto, namespaces, process")
    return isolation


def run_program(program: Program | str, limits: Limits | None = None, *,
                isolation: str = "auto", python: str | None = None,
                site_packages: bool = False) -> ExecResult:
    """Run one program under ``limits``; never raises for anything the program does.

    ``python`` is the interpreter (default: this one). Without ``site_packages``
    it starts with ``-S``: the standard library only (all HumanEval and MBPP
    need), and a third less start-up time than processing a large venv.
    """
    if isinstance(program, str):
        program = Program(program)
    limits = limits or Limits()
    mode = resolve_isolation(isolation)
    uid = _UIDS.acquire() if mode == "namespaces" else None
    hostdir = None if mode == "namespaces" else tempfile.mkdtemp(prefix="sftmix-sandbox-")
    try:
        return _run(program, limits, mode, uid, hostdir, _argv(python, site_packages))
    finally:
        if uid is not None:
            _UIDS.release(uid)
        if hostdir is not None:
            shutil.rmtree(hostdir, ignore_errors=True)


def _payload(program: Program, limits: Limits, mode: str, uid: int | None, workdir: str,
             nonce: str, marker_fd: int) -> bytes:
    rlimits = limits.rlimits()
    headroom = rlimits.pop("RLIMIT_NPROC") if mode == "process" else None
    return marshal.dumps({
        "program": program.source, "check": program.check, "expose": list(program.expose),
        "nonce": nonce, "marker_fd": marker_fd, "uid": uid, "workdir": workdir,
        "namespaces": mode == "namespaces", "disk_bytes": limits.disk_bytes,
        "rlimits": rlimits, "block_sockets": mode == "process", "nproc_headroom": headroom,
    })


def _run(program: Program, limits: Limits, mode: str, uid: int | None, hostdir: str | None,
         argv: list[str]) -> ExecResult:
    run_id, nonce = secrets.token_hex(8), secrets.token_hex(16)
    workdir = _WORKDIR_IN_NAMESPACE if mode == "namespaces" else str(hostdir)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": workdir,
           "TMPDIR": workdir, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", _MARKER_ENV: run_id}
    if mode == "namespaces":
        argv = ["unshare", *_UNSHARE, "--", *argv]
    marker_r, marker_w = os.pipe()
    # The payload (with the nonce) goes through an unlinked file as stdin; the
    # driver swaps stdin for /dev/null before any untrusted code runs.
    with tempfile.TemporaryFile() as payload_file:
        try:
            if argv[-1] == _BOOTSTRAP:
                payload_file.write(_DRIVER_CODE)
            payload_file.write(_payload(program, limits, mode, uid, workdir, nonce, marker_w))
            payload_file.seek(0)
            started, ticks = time.monotonic(), boot_ticks() - 1
            try:
                proc = subprocess.Popen(argv, stdin=payload_file, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, env=env, cwd=hostdir or "/",
                                        pass_fds=(marker_w,), start_new_session=True)
            except OSError as exc:
                return ExecResult(Status.ERROR, f"could not start the sandbox: {exc}", None,
                                  None, "", "", 0.0, False, isolation=mode)
            finally:
                os.close(marker_w)
            killer = (_namespace_killer(proc) if mode == "namespaces"
                      else _process_killer(proc, run_id, ticks))
            out = capture_output(proc, limits.timeout_s, limits.output_bytes, killer)
            duration = time.monotonic() - started
            if mode == "process":
                killer()  # escaped descendants outlive the main process in this mode
            marker = _read_marker(marker_r) == nonce.encode()
        finally:
            os.close(marker_r)
    result = _classify(proc.returncode, out.timed_out, marker, out.stdout, out.stderr,
                       out.truncated, duration, mode, limits)
    result.run_id = run_id
    return result


def _read_marker(fd: int) -> bytes:
    os.set_blocking(fd, False)
    try:
        return os.read(fd, 256)
    except BlockingIOError:
        return b""


def _namespace_killer(proc: subprocess.Popen[bytes]) -> Callable[[], None]:
    """Kill the namespace's init (so the kernel kills the rest), then ``unshare`` itself.

    Killing ``unshare`` first would orphan the init to a PID 1 that may never
    reap it; killing the init lets ``unshare`` reap it. ``unshare`` is then
    killed too rather than awaited: on an init killed by SIGKILL some versions
    report an error on stderr, which blocks for good when the program has
    filled that pipe (nobody reads it while this waits).
    """

    def kill() -> None:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        try:
            pids = [int(p) for p in children.read_text().split()]
        except (OSError, ValueError):
            pids = []
        for pid in pids:
            _signal(pid, signal.SIGKILL)
        give_up = time.monotonic() + 2.0
        # Until unshare has reaped it, the init stays listed in /proc (as a zombie).
        while (any(os.path.exists(f"/proc/{pid}") for pid in pids) and proc.poll() is None
               and time.monotonic() < give_up):
            time.sleep(0.002)
        if proc.poll() is None:
            _signal(-proc.pid, signal.SIGKILL)

    return kill


def _process_killer(proc: subprocess.Popen[bytes], run_id: str,
                    started: int) -> Callable[[], None]:
    def kill() -> None:
        _signal(-proc.pid, signal.SIGKILL)
        hunt_marked_processes(_MARKER_ENV, run_id, session=proc.pid, started=started)

    return kill


def _signal(pid: int, sig: int) -> None:
    try:
        if pid < 0:
            os.killpg(-pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _classify(returncode: int | None, timed_out: bool, marker: bool, stdout: str, stderr: str,
              truncated: bool, duration: float, mode: str, limits: Limits) -> ExecResult:
    code = returncode if returncode is not None and returncode >= 0 else None
    sig = -returncode if returncode is not None and returncode < 0 else None
    status, reason = Status.FAILED, ""
    if timed_out:
        status, reason = Status.TIMEOUT, f"wall-time limit of {limits.timeout_s:g} s exceeded"
    elif sig == signal.SIGXCPU or (sig == signal.SIGKILL
                                   and duration >= limits.rlimits()["RLIMIT_CPU"]):
        status, reason = Status.TIMEOUT, "CPU-time limit exceeded"
    elif sig == signal.SIGXFSZ:
        reason = "file-size limit exceeded"
    elif sig is not None:
        try:
            reason = f"killed by {signal.Signals(sig).name}"
        except ValueError:
            reason = f"killed by signal {sig}"
    elif ((code == _SETUP_FAILED and "sftmix-sandbox-setup:" in stderr)
          or (code in (126, 127) and stderr.startswith("unshare:"))):
        status, reason = Status.ERROR, _last_line(stderr)
        log.error("sandbox setup failed: %s", reason)
    elif code == 0 and marker:
        status = Status.PASSED
    elif code == 0:
        reason = "exited with status 0 before its checks completed (no completion marker)"
    else:  # an uncaught exception exits with 1 and ends stderr with its one-line summary
        last = _last_line(stderr)
        reason = (last if code == 1 and last else
                  f"exited with status {code}: {last}" if last else f"exited with status {code}")
    return ExecResult(status, reason, code, sig, stdout, stderr, duration, marker, truncated, mode)


class SandboxPool:
    """Runs many programs concurrently with a bounded number of workers."""

    def __init__(self, workers: int | None = None, limits: Limits | None = None,
                 isolation: str = "auto", python: str | None = None,
                 site_packages: bool = False) -> None:
        self.workers = max(1, min(workers or (os.cpu_count() or 1) * 2, 64))
        self.limits = limits or Limits()
        self.isolation = resolve_isolation(isolation)
        self.python = python
        self.site_packages = site_packages

    def run(self, program: Program | str) -> ExecResult:
        return run_program(program, self.limits, isolation=self.isolation, python=self.python,
                           site_packages=self.site_packages)

    def map(self, programs: Sequence[Program | str],
            progress: Callable[[int], None] | None = None) -> list[ExecResult]:
        """Results in the order of ``programs``; ``progress(1)`` after each one finishes."""
        if not programs:
            return []
        with ThreadPoolExecutor(max_workers=min(self.workers, len(programs)),
                                thread_name_prefix="sandbox") as pool:
            futures = [pool.submit(self.run, p) for p in programs]
            results = []
            for future in futures:
                results.append(future.result())
                if progress is not None:
                    progress(1)
        return results
