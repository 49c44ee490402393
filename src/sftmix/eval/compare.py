"""Before and after: a model against the one it was trained from, item by item.

``sftmix eval MODEL --baseline`` evaluates the model a training stage started from
(its ``stage_config.json`` names it) on the same items as MODEL and reports, per
metric, both scores with their 95% intervals and the paired difference: the
bootstrap resamples items, so the difficulty the two share cancels, and binary
metrics get the exact sign test on the items only one model got right
(``sftmix.eval.stats.paired_comparison``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sftmix.errors import ConfigError
from sftmix.eval.stats import PairedComparison, paired_comparison


def parent_model(model_dir: Path) -> Path:
    """The model the training stage ``model_dir`` started from."""
    config = model_dir / "stage_config.json"
    if not config.is_file():
        raise ConfigError(f"--baseline: {model_dir} is not a training stage (no stage_config.json), "
                          "so the model it started from is unknown; name that model: "
                          "--baseline MODEL_DIR")
    parent = json.loads(config.read_text(encoding="utf-8")).get("parent")
    # A stage records its parent relative to its study directory (stages/s-<key> lies in it).
    path = Path(parent) if parent and Path(parent).is_absolute() else (
        model_dir.resolve().parent.parent / str(parent))
    if not parent or not (path / "config.json").is_file():
        raise ConfigError(f"--baseline: {config} names the parent model {parent!r}, which is not a "
                          f"saved model at {path}; name the model to compare with: --baseline MODEL_DIR")
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def item_values(out: Path, suite: str, metric: str) -> dict[str, float]:
    """Per-item values of ``metric`` in an evaluation folder's ``<suite>/items.jsonl``."""
    values = {}
    with open(out / suite / "items.jsonl", encoding="utf-8") as fh:
        for line in fh:
            item = json.loads(line)
            v = item["metrics"].get(metric)
            values[item["id"]] = math.nan if v is None else float(v)
    return values


def compare(before: tuple[Path, Mapping[str, Any]], after: tuple[Path, Mapping[str, Any]],
            ) -> dict[str, dict[str, PairedComparison]]:
    """Per suite evaluated in both folders, per metric: after minus before, paired over items."""
    (before_out, before_sum), (after_out, after_sum) = before, after
    out: dict[str, dict[str, PairedComparison]] = {}
    for suite in (s for s in after_sum if s in before_sum):
        out[suite] = {metric: paired_comparison(item_values(before_out, suite, metric),
                                                item_values(after_out, suite, metric))
                      for metric in after_sum[suite]["metrics"]}
    return out


def format_comparison(before: Mapping[str, Any], after: Mapping[str, Any],
                      diffs: Mapping[str, Mapping[str, PairedComparison]],
                      formatter: Callable[[Mapping[str, Any]], Callable[[float], str]]) -> str:
    """A table of both scores with their intervals and the paired change with its interval."""
    rows = [("suite", "metric", "before", "95% CI", "after", "95% CI", "change", "95% CI", "p", "n")]
    for suite, metrics in diffs.items():
        for name, d in metrics.items():
            b, a = before[suite]["metrics"][name], after[suite]["metrics"][name]
            if not d.n:
                continue
            fmt = formatter(a)
            star = "*" if name == after[suite].get("primary") else ""
            change = fmt(d.diff)
            rows.append((suite, name + star, fmt(b["mean"]), _ci(b, fmt), fmt(a["mean"]), _ci(a, fmt),
                         change if change.startswith("-") else "+" + change,
                         f"[{fmt(d.ci_low)}, {fmt(d.ci_high)}]", _p(d.p_value), str(d.n)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + ("\n(* primary metric; change: after minus before over the same items, "
                               "95% paired bootstrap interval; p: exact sign test on the items only "
                               "one of the two got right)")


def _ci(m: Mapping[str, Any], fmt: Callable[[float], str]) -> str:
    low = m.get("ci_low")
    return "-" if low is None or math.isnan(low) else f"[{fmt(low)}, {fmt(m['ci_high'])}]"


def _p(p: float | None) -> str:
    if p is None:
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"
