"""What a study directory holds: done, running, failed or pending, per job."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from sftmix.artifacts import is_complete
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
    """key -> {kind, label, state} from the job files and artefacts alone (no plan needed)."""
    out: dict[str, dict[str, str]] = {}
    for path in sorted((study_dir / "jobs").glob("*.json")):
        if path.name.endswith(".failed.json"):
            continue
        job = json.loads(path.read_text())
        running = running_file(path)
        outputs = job.get("outputs") or [job["out"]]
        if all(is_complete(o) for o in outputs):
            state = "done"
        elif running.exists() and running.read_text().strip().isdigit() and _alive(int(running.read_text())):
            state = "running"
        elif failed_file(path).exists():
            state = "failed"
        else:
            state = "pending"
        out[job["key"]] = {"kind": job["kind"], "label": job["label"], "state": state}
    return out


def status_table(states: dict[str, dict[str, str]]) -> str:
    lines = [f"{'':10}" + "".join(f"{s:>9}" for s in STATES)]
    for kind in ("model", "mixture", "stage", "eval"):
        c = Counter(v["state"] for v in states.values() if v["kind"] == kind)
        lines.append(f"{kind:10}" + "".join(f"{c.get(s, 0):>9}" for s in STATES))
    for key, v in states.items():
        if v["state"] in ("running", "failed"):
            lines.append(f"  {v['state']}: {v['kind']} {v['label']} [{key}]")
    return "\n".join(lines)
