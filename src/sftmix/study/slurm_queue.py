"""What a study has in a SLURM queue: the job ids it submitted, their states, cancelling them.

Every submitted job is recorded in ``<study>/slurm/jobs/<key>.json`` (its SLURM
id, when, where its logs go, and the last state seen). States come from
``squeue`` while the controller remembers the job and from ``sacct`` after that
(where the cluster keeps accounting); a final state, once seen, is written to
the record, so ``sftmix status`` still shows why a job ended after the
controller has forgotten it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sftmix.artifacts import write_json_atomic
from sftmix.errors import SftmixError

log = logging.getLogger(__name__)

# States in which a job still holds or waits for resources: it must not be submitted again.
ACTIVE = frozenset({"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_FED",
                    "REQUEUE_HOLD", "RESIZING", "SUSPENDED", "STAGE_OUT", "SIGNALING", "STOPPED"})
# States that say why a job did not finish; shown with the job's log tail.
FAILED = frozenset({"FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "CANCELLED", "PREEMPTED",
                    "BOOT_FAIL", "DEADLINE"})
# States after which a job never runs again (PREEMPTED and NODE_FAIL jobs may be requeued).
FINAL = frozenset({"COMPLETED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY", "CANCELLED", "BOOT_FAIL", "DEADLINE"})
UNKNOWN = "UNKNOWN"


def slurm_dir(study_dir: Path) -> Path:
    return study_dir / "slurm"


def record_file(study_dir: Path, key: str) -> Path:
    return slurm_dir(study_dir) / "jobs" / f"{key}.json"


@contextlib.contextmanager
def study_lock(study_dir: Path, blocking: bool = True) -> Iterator[bool]:
    """Hold the study's submission lock (yields False when ``blocking`` is off and it is taken).

    Whoever holds it may submit jobs and rewrite records, so two ``sftmix run`` racing on
    one study submit nothing twice: the second waits, then finds the first one's jobs.
    """
    path = slurm_dir(study_dir) / "submit.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def read_records(study_dir: Path) -> dict[str, dict[str, Any]]:
    """Job key -> its record (SLURM id, submission time, log files, last state seen)."""
    folder = slurm_dir(study_dir) / "jobs"
    out = {}
    if folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            try:
                out[path.stem] = json.loads(path.read_text())
            except (json.JSONDecodeError, OSError):
                continue  # a record being replaced right now: read again on the next look
    return out


def write_record(study_dir: Path, key: str, record: dict[str, Any]) -> None:
    write_json_atomic(record_file(study_dir, key), record)


def _command(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise SftmixError(f"'{name}' not found on PATH: the SLURM executor runs where the SLURM "
                          "client commands (sbatch, squeue, scancel) are installed")
    return found


def query_states(job_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    """SLURM id -> (state, reason); ids neither command knows are left out."""
    ids = sorted(set(job_ids), key=lambda x: int(x) if x.isdigit() else 0)
    if not ids:
        return {}
    found: dict[str, tuple[str, str]] = {}
    # squeue knows current jobs and, for MinJobAge seconds, finished ones.
    proc = subprocess.run([_command("squeue"), "-h", "-t", "all", "-j", ",".join(ids), "-o", "%i|%T|%r"],
                          capture_output=True, text=True, timeout=60)
    for line in proc.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3 and parts[0] in ids:
            found[parts[0]] = (parts[1], parts[2])
    rest = [i for i in ids if i not in found]
    if rest and shutil.which("sacct"):
        proc = subprocess.run(["sacct", "-n", "-P", "-X", "-j", ",".join(rest), "-o", "JobID,State,Reason"],
                              capture_output=True, text=True, timeout=60)
        if proc.returncode == 0:  # clusters without accounting answer with an error
            for line in proc.stdout.splitlines():
                parts = line.strip().split("|")
                if len(parts) >= 2 and parts[0] in rest:
                    # "CANCELLED by 0" -> CANCELLED
                    found[parts[0]] = (parts[1].split()[0], parts[2] if len(parts) > 2 else "")
    return found


def refresh(study_dir: Path, persist: bool = True) -> dict[str, dict[str, Any]]:
    """The study's records with their current SLURM state.

    ``persist``: write the states seen into the records; only the holder of
    :func:`study_lock` may, since a record is also rewritten when its job is resubmitted.
    """
    records = read_records(study_dir)
    live = {r["job_id"] for r in records.values() if r.get("state") not in FINAL}
    states = query_states(live)
    for key, record in records.items():
        if record["job_id"] not in live:
            continue
        state, reason = states.get(record["job_id"], (UNKNOWN, ""))
        if state == UNKNOWN:
            # Forgotten by the controller and no accounting: the last state seen stands,
            # but it cannot be active any more.
            state = record.get("state") if record.get("state") not in ACTIVE else UNKNOWN
            state = state or UNKNOWN
        if (state, reason) != (record.get("state"), record.get("reason")):
            record.update(state=state, reason=reason)
            if persist:
                write_record(study_dir, key, record)
    return records


def is_active(record: dict[str, Any]) -> bool:
    return record.get("state") in ACTIVE


def cancel_study(study_dir: Path) -> list[tuple[str, str]]:
    """Cancel every queued or running job of the study; returns (key, SLURM id) of each."""
    with study_lock(study_dir) as locked:
        records = refresh(study_dir, persist=locked)
    targets = [(key, r["job_id"]) for key, r in records.items() if is_active(r)]
    if targets:
        proc = subprocess.run([_command("scancel"), *(job_id for _, job_id in targets)],
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise SftmixError(f"scancel failed: {proc.stderr.strip()}")
    return targets


def log_tail(path: Path, lines: int = 10) -> list[str]:
    """The last lines of a log file (nothing when it does not exist yet)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 16384))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return [line for line in text.replace("\r", "\n").splitlines() if line.strip()][-lines:]
