"""Watching a sandboxed run from the outside: capped output capture, the wall-time
deadline, and hunting down descendants that escaped the process group.

Used by :mod:`sftmix.eval.sandbox`; kept apart because it is all about the
parent's side of the pipes and ``/proc``, not about what the child may do.
"""

from __future__ import annotations

import logging
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_CHUNK = 1 << 16
_EXIT_GRACE_S = 0.1  # after the main process exits, how long stragglers may keep the pipes open


class _CappedBuffer:
    """Keeps the first and last ``cap // 2`` bytes of a stream and counts the rest."""

    def __init__(self, cap: int) -> None:
        self.half = max(cap // 2, 1)
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > self.half:
                del self.tail[: len(self.tail) - self.half]

    @property
    def truncated(self) -> bool:
        return self.total > len(self.head) + len(self.tail)

    def text(self) -> str:
        head = self.head.decode("utf-8", errors="replace")
        tail = self.tail.decode("utf-8", errors="replace")
        if self.truncated:
            omitted = self.total - len(self.head) - len(self.tail)
            return f"{head}\n[... {omitted} bytes omitted ...]\n{tail}"
        return head + tail


@dataclass
class CapturedOutput:
    stdout: str
    stderr: str
    truncated: bool
    timed_out: bool


def capture_output(proc: subprocess.Popen[bytes], timeout_s: float, cap: int,
                   kill: Callable[[], None]) -> CapturedOutput:
    """Read stdout/stderr until the run ends or the deadline passes (then ``kill()``).

    Reading goes on past the cap (only head and tail are kept) so that a
    chatty program is bounded by its time limit rather than blocked on a full
    pipe. Returns once the process has been reaped.
    """
    assert proc.stdout is not None and proc.stderr is not None
    deadline = time.monotonic() + timeout_s
    buffers = {proc.stdout.fileno(): _CappedBuffer(cap), proc.stderr.fileno(): _CappedBuffer(cap)}
    timed_out = False
    exited_at: float | None = None
    with selectors.DefaultSelector() as selector:
        for fd in buffers:
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            now = time.monotonic()
            if now >= deadline:
                timed_out = exited_at is None
                kill()
                break
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > _EXIT_GRACE_S:
                kill()  # descendants holding the pipes open after the main process exited
                break
            for key, _ in selector.select(min(deadline - now, 0.05)):
                _read_into(selector, key.fd, buffers[key.fd])
        remaining = deadline - time.monotonic()
        if not timed_out:
            try:
                proc.wait(timeout=max(remaining, 0.0))
            except subprocess.TimeoutExpired:
                timed_out = True
                kill()
        proc.wait()
        for fd, buffer in buffers.items():  # whatever was written before the end
            while fd in selector.get_map() and _read_into(selector, fd, buffer):
                pass
    proc.stdout.close()
    proc.stderr.close()
    out, err = list(buffers.values())
    return CapturedOutput(out.text(), err.text(), out.truncated or err.truncated, timed_out)


def _read_into(selector: selectors.BaseSelector, fd: int, buffer: _CappedBuffer) -> bool:
    try:
        chunk = os.read(fd, _CHUNK)
    except BlockingIOError:
        return False
    except OSError:
        chunk = b""
    if not chunk:
        selector.unregister(fd)
        return False
    buffer.add(chunk)
    return True


def boot_ticks() -> int:
    """Now, in the clock ticks since boot that ``/proc/PID/stat`` uses for start times."""
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * os.sysconf("SC_CLK_TCK"))


def _stat_fields(pid: str) -> tuple[int, int, int] | None:
    """(process group, session, start time) of a live process; None for zombies."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    if fields[0] in ("Z", "X"):
        return None  # already dead; only its parent can reap it
    return int(fields[2]), int(fields[3]), int(fields[19])


def _environ_has(pid: str, marker: bytes) -> bool:
    try:
        return marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def hunt_marked_processes(env_name: str, run_id: str, session: int, started: int,
                          rounds: int = 20) -> int:
    """SIGKILL every process of the run: same session/group, or the run's marker in its env.

    Only processes started at or after ``started`` (see :func:`boot_ticks`)
    can belong to the run, so only their environments are read. Repeats until
    a scan finds nothing (a fork bomb can fork between scans). Returns how many
    processes were signalled.
    """
    marker = f"{env_name}={run_id}".encode()
    me = os.getpid()
    killed = 0
    for _ in range(rounds):
        found = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit() or int(entry.name) == me:
                continue
            ids = _stat_fields(entry.name)
            if ids is None or ids[2] < started:
                continue
            if session in ids[:2] or _environ_has(entry.name, marker):
                found.append(int(entry.name))
        if not found:
            break
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
    if killed:
        log.debug("killed %d leftover sandbox processes of run %s", killed, run_id)
    return killed
