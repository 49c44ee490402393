"""What a study directory holds: done, running, failed or pending, per job.

Jobs submitted to SLURM also show their SLURM id and state; a failed job shows
why (FAILED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, CANCELLED) and the end of its log.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from sftmix.artifacts import is_complete
from sftmix.study.jobs import check_layout
from sftmix.study.kinds import KINDS
from sftmix.study.worker import failed_file, running_file

STATES = ("done", "running", "failed", "pending")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def job_states(study_dir: Path) -> dict[str, dict[str, str]]:
    """key -> {kind, label, state} from the job files and artefacts alone (no plan needed).

    Paths in job files are relative to the study directory, so this works from anywhere.
    """
    check_layout(study_dir)
    out: dict[str, dict[str, str]] = {}
    for path in sorted((study_dir / "jobs").glob("*.json")):
        if path.name.endswith(".failed.json"):
            continue
        job = json.loads(path.read_text())
        running = running_file(path)
        outputs = list(job.get("outputs", {}).values()) or [job["out"]]
        if all(is_complete(study_dir / o) for o in outputs):
            state = "done"
        elif running.exists() and running.read_text().strip().isdigit() and _alive(int(running.read_text())):
            state = "running"
        elif failed_file(path).exists():
            state = "failed"
        else:
            state = "pending"
        out[job["key"]] = {"kind": job["kind"], "label": job["label"], "state": state,
                           "log": str(study_dir / "logs" / f"{job['key']}.log")}
    _add_slurm_states(study_dir, out)
    return out


def _add_slurm_states(study_dir: Path, states: dict[str, dict[str, str]]) -> None:
    """The SLURM state of each submitted job decides between pending, running and failed
    (the pid in a ``.running`` file belongs to another machine)."""
    from sftmix.study.slurm_queue import ACTIVE, read_records, refresh, study_lock

    if not read_records(study_dir):
        return
    with study_lock(study_dir, blocking=False) as locked:
        records = refresh(study_dir, persist=locked)
    for key, record in records.items():
        entry = states.get(key)
        if entry is None:
            continue
        slurm_state = record.get("state", "")
        entry["slurm"] = f"SLURM {record['job_id']} {slurm_state}"
        reason = record.get("reason", "")
        if reason and reason != "None":
            entry["slurm"] += f" ({reason})"
        entry["slurm_log"] = record.get("slurm_log", "")
        if entry["state"] == "done":
            continue
        if slurm_state in ("RUNNING", "COMPLETING", "CONFIGURING", "SIGNALING", "STAGE_OUT"):
            entry["state"] = "running"
        elif slurm_state in ACTIVE:
            entry["state"] = "pending"
        else:
            entry["state"] = "failed"


def status_table(states: dict[str, dict[str, str]]) -> str:
    lines = [f"{'':10}" + "".join(f"{s:>9}" for s in STATES)]
    for kind in KINDS:
        c = Counter(v["state"] for v in states.values() if v["kind"] == kind)
        lines.append(f"{kind:10}" + "".join(f"{c.get(s, 0):>9}" for s in STATES))
    for key, v in states.items():
        if v["state"] in ("running", "failed") or (v["state"] == "pending" and "slurm" in v):
            where = f" {v['slurm']}" if "slurm" in v else ""
            lines.append(f"  {v['state']}: {v['kind']} {v['label']} [{key}]{where}")
        if v["state"] == "failed":
            from sftmix.study.slurm_queue import log_tail

            if Path(v["log"]).is_file():
                lines.append(f"    log: {v['log']}")
                lines.extend(f"    | {line}" for line in log_tail(Path(v["log"]), 8))
            slurm_log = Path(v.get("slurm_log", "")) if v.get("slurm_log") else None
            if slurm_log is not None:
                # The scheduler's own words (time limit, memory, node failure) are here.
                for err in sorted(slurm_log.glob("*.err")):
                    lines.append(f"    slurm log: {err}")
                    lines.extend(f"    | {line}" for line in log_tail(err, 4))
    return "\n".join(lines)
