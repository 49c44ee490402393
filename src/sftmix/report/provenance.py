"""What a reader needs to trust a report: the data mixtures, the software, the hardware, the time.

Mixture manifests and stage markers are read as they are written by the data
and training steps; the summary shows their scalar fields (counts, sizes,
seconds, tokens) without assuming a fixed layout, so a richer manifest shows
more, never breaks the report.
"""

from __future__ import annotations

import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from sftmix.artifacts import MARKER
from sftmix.report.tables import Table
from sftmix.results.data import StudyResults

PACKAGES = ("sftmix", "torch", "transformers", "trl", "datasets", "accelerate", "peft",
            "numpy", "pandas", "matplotlib", "scikit-learn")
# Field names under which training and evaluation steps record their cost.
SECONDS_KEYS = ("train_seconds", "elapsed_s", "seconds", "wall_seconds", "elapsed_seconds", "train_runtime", "runtime")
TOKEN_KEYS = ("train_tokens", "tokens", "num_tokens", "trained_tokens")
DEVICE_KEYS = ("device", "devices", "hardware", "gpu", "accelerator")
# Manifest fields left out of the summary (identity proofs and settings echoed elsewhere).
_HIDDEN = ("spec", "format", "eval_sets", "mixtures")
_HIDDEN_FIELDS = ("sha256", "path", "hash", ".ability", ".on_error", ".format", ".kind", ".seed")
_PRIORITY = {"total": 0, "entries": 1, "seed": 2}


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _scalars(obj: Any, prefix: str = "", depth: int = 0) -> dict[str, Any]:
    """Flatten numbers and short strings, two levels deep (``sources.maths.count``)."""
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            name = f"{prefix}{k}"
            if isinstance(v, bool | int | float) or (isinstance(v, str) and len(v) <= 60):
                out[name] = v
            elif depth < 2 and isinstance(v, dict):
                out.update(_scalars(v, name + ".", depth + 1))
            elif depth < 2 and isinstance(v, list) and all(isinstance(x, dict) for x in v) and len(v) <= 12:
                for i, x in enumerate(v):
                    by = next((k for k in ("target", "ability", "source", "name") if isinstance(x.get(k), str)), None)
                    rest = {k: w for k, w in x.items() if k != by}
                    out.update(_scalars(rest, f"{name}.{x[by] if by else i}.", depth + 1))
    return out


def _first(info: dict[str, Any], keys: tuple[str, ...]) -> Any:
    flat = _scalars(info)
    for k in keys:
        for name, v in flat.items():
            if name.rsplit(".", 1)[-1] == k and v is not None and not isinstance(v, bool):
                return v
    return None


def manifests_table(res: StudyResults, max_fields: int = 14) -> Table | None:
    root = res.study_dir / "mixtures"
    dirs = sorted(p for p in root.glob("*") if (p / "manifest.json").is_file()) if root.is_dir() else []
    if not dirs:
        return None
    table = Table("manifests", "Data mixtures", ["mixture", "recipe", "summary"],
                  caption="From each mixture's manifest.json (scalar fields).")
    for d in dirs:
        job = _read(res.study_dir / "jobs" / f"{d.name}.json")
        fields = {k: v for k, v in _scalars(_read(d / "manifest.json")).items()
                  if not k.startswith(_HIDDEN) and not k.endswith(_HIDDEN_FIELDS)}
        # The totals first, then what each entry obtained: the counts a reader looks for.
        fields = dict(sorted(fields.items(), key=lambda kv: _PRIORITY.get(kv[0].split(".")[0], 9)))
        shown = "; ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in list(fields.items())[:max_fields])
        table.rows.append([d.name, job.get("label", ""), shown])
    return table


def environment_table() -> Table:
    table = Table("environment", "Software and hardware (where this report was made)", ["item", "value"])
    for name in PACKAGES:
        try:
            table.rows.append([name, metadata.version(name)])
        except metadata.PackageNotFoundError:
            continue
    table.rows.append(["python", platform.python_version()])
    table.rows.append(["platform", platform.platform()])
    table.rows.append(["cpu cores", os.cpu_count() or 0])
    try:
        import torch

        gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # no usable torch or driver: the report still states the CPU side
        gpus = []
    table.rows.append(["gpus", ", ".join(gpus) or "none"])
    return table


def cost_table(res: StudyResults) -> Table:
    """Training stages and evaluations done, their recorded time and tokens, and the wall-clock span."""
    table = Table("cost", "Time spent", ["work", "done", "recorded seconds", "recorded tokens"],
                  caption="Seconds and tokens as recorded by each step's completion marker; "
                  "'–' where a step did not record them.")
    stamps: list[float] = []
    devices: set[str] = set()
    done = res.stages[res.stages["status"] == "done"] if not res.stages.empty else res.stages
    infos = [{**_train_log_tail(res.study_dir / "stages" / key), **info}
             for key, info in zip(done.get("key", []), done.get("info", []), strict=True)]
    secs, toks = _sum_fields(infos, stamps, devices)
    table.rows.append(["training stages", len(done), secs, toks])
    evals = [_read(p / MARKER) | _read(p / "summary.json")
             for p in sorted((res.study_dir / "evals").glob("*")) if (p / MARKER).is_file()]
    esecs, _ = _sum_fields(evals, stamps, devices)
    table.rows.append(["evaluations", len(evals), esecs, None])
    if stamps:
        span = max(stamps) - min(stamps)
        table.rows.append(["wall clock, first to last completed step", len(stamps), span, None])
        table.rows.append(["last step completed at", "", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(max(stamps))), None])
    if devices:
        table.rows.append(["recorded hardware", "", ", ".join(sorted(devices)), None])
    return table


def _train_log_tail(stage_dir: Path) -> dict[str, Any]:
    """The last record of a stage's ``train_log.jsonl`` (its cumulative ``tokens``)."""
    path = stage_dir / "train_log.jsonl"
    try:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        last = json.loads(lines[-1]) if lines else {}
    except (OSError, ValueError):
        return {}
    return last if isinstance(last, dict) else {}


def _sum_fields(infos: list[dict[str, Any]], stamps: list[float], devices: set[str]) -> tuple[float | None, int | None]:
    secs: float | None = None
    toks: int | None = None
    for info in infos:
        s, t = _first(info, SECONDS_KEYS), _first(info, TOKEN_KEYS)
        if isinstance(s, int | float):
            secs = (secs or 0.0) + float(s)
        if isinstance(t, int | float):
            toks = (toks or 0) + int(t)
        if isinstance(info.get("completed_at"), int | float):
            stamps.append(float(info["completed_at"]))
        dev = _first(info, DEVICE_KEYS)
        if isinstance(dev, str) and dev:
            devices.add(dev)
    return secs, toks


def study_yaml(res: StudyResults) -> str:
    return (res.study_dir / "study.yaml").read_text(encoding="utf-8")
