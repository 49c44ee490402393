"""Tables and exports of a study's results."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any


def _coords(c: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in c.items())


def results_table(rows: Iterable[dict[str, Any]]) -> str:
    rows = list(rows)
    if not rows:
        return "no results yet (run the study, or check 'sftmix status')"
    lines = []
    design = None
    for r in rows:
        if r["design"] != design:
            design = r["design"]
            lines.append(f"\n== {design} ==")
            lines.append(f"{'run':44} {'suite':10} {'metric':22} {'value':>8}  95% CI")
        ci = "" if r["ci_low"] is None else f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
        value = "-" if r["value"] is None else f"{r['value']:.3f}"
        lines.append(f"{r['run'][:44]:44} {r['suite'][:10]:10} {r['metric'][:22]:22} {value:>8}  {ci}")
    return "\n".join(lines).lstrip("\n")


def export(rows: list[dict[str, Any]], csv: Path | None = None, parquet: Path | None = None) -> list[Path]:
    import pandas as pd

    frame = pd.DataFrame(rows)
    if not frame.empty:
        coords = pd.json_normalize(frame.pop("coords").tolist()).add_prefix("coord_")
        frame = pd.concat([frame, coords], axis=1)
    written = []
    if csv:
        frame.to_csv(csv, index=False)
        written.append(csv)
    if parquet:
        frame.to_parquet(parquet, index=False)
        written.append(parquet)
    return written
