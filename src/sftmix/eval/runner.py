"""Evaluate one model on a list of suites, writing per-item results and summaries.

Layout of an evaluation directory::

    OUT/summary.json            the summary of every suite evaluated into OUT, by suite name
    OUT/<suite>/items.jsonl     one ItemResult per line (prompt, completions,
                                extracted answers, verdicts, per-item metrics, reason)
    OUT/<suite>/summary.json    each metric's mean with a bootstrap 95% interval
    OUT/<suite>/COMPLETE.json   written last; the suite directory appears atomically

A suite directory is keyed by what produced it (model, suite, options, limit).
When it is complete with the same key it is reused, so an interrupted run
resumes where it stopped; with another key for the same model it is replaced,
and one holding another model's evaluation is replaced only when asked to
(``overwrite``). The model is loaded and its generate function built once, and
only if some suite needs it.

A suite whose metric could not be computed (a judge that did not answer, no
item with a value) is not published: the other suites are, and
:class:`~sftmix.errors.IncompleteError` says what is missing and what to set.
What was obtained (the judge's answers, in its cache) is kept, so a rerun only
asks for what is missing.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sftmix import strict_json
from sftmix.artifacts import building, is_complete, read_marker, write_json_atomic
from sftmix.errors import ConfigError, IncompleteError, SftmixError
from sftmix.eval.base import TASKS, GenerateFn, ItemResult, Task
from sftmix.eval.stats import summarise
from sftmix.eval.task_options import DEFAULT_PATHS
from sftmix.hashing import canonical_json, config_hash
from sftmix.keys import artefact_key
from sftmix.secrets import public

log = logging.getLogger(__name__)

def import_suites() -> None:
    """Import every benchmark module (the registry finds them under ``sftmix.eval.tasks``)."""
    TASKS.names()


def suite_names() -> list[str]:
    return TASKS.names()


def public_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Options as plain JSON with secrets removed (``sftmix.secrets``): what is hashed and written."""
    return public(json.loads(canonical_json(dict(options))))


def build_suite(suite: str, options: Mapping[str, Any] | None = None) -> Task:
    return TASKS.get(suite)(**dict(options or {}))


def primary_metric(task: Task) -> str:
    return getattr(task, "primary_metric", None) or task.metrics[0].name


def summarise_suite(task: Task, results: list[ItemResult], *, suite: str,
                    resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    metrics = summarise(results, task.metrics, resamples=resamples, seed=seed)
    for metric in task.metrics:
        metrics[metric.name].update(low=metric.low, high=metric.high)
    return {"suite": suite, "task": task.name, "ability": task.ability,
            "primary": primary_metric(task), "n_items": len(results), "metrics": metrics}


def run_suite(task: Task, generate: GenerateFn, out_dir: str | Path, *, suite: str | None = None,
              limit: int | None = None, info: Mapping[str, Any] | None = None,
              resamples: int = 2000) -> dict[str, Any]:
    """Evaluate ``task`` and publish ``out_dir`` (items.jsonl, summary.json) atomically."""
    suite = suite or task.name
    started = time.monotonic()
    results = task.evaluate(generate, limit)
    warn_repeats(suite, results)
    summary = summarise_suite(task, results, suite=suite, resamples=resamples)
    reason = task.incomplete(results)
    primary = summary["metrics"][summary["primary"]]
    if reason is None and results and not primary["n"]:
        reason = f"no item has a value for its metric {summary['primary']!r}"
    if reason is not None:
        raise IncompleteError(f"{suite}: not marked complete: {reason}")
    summary.update(info or {})
    summary["limit"] = limit
    summary["elapsed_s"] = round(time.monotonic() - started, 3)
    with building(out_dir, {"kind": "eval", "key": summary.get("key"), "suite": suite}) as tmp:
        with open(tmp / "items.jsonl", "w", encoding="utf-8") as fh:
            for r in results:
                fh.write(strict_json.dumps(r.to_dict(), ensure_ascii=False, default=str) + "\n")
        write_json_atomic(tmp / "summary.json", summary)
    return summary


def warn_repeats(suite: str, results: Sequence[ItemResult]) -> int:
    """Warn when the benchmark held an item twice (same id or same prompt); returns the repeats.

    Each copy is scored and counted in the mean, which then weighs that item more than
    the others: almost always a benchmark file assembled by mistake.
    """
    seen_ids: set[str] = set()
    seen_prompts: set[str] = set()
    repeats: list[str] = []
    for r in results:
        if r.id in seen_ids or r.prompt in seen_prompts:
            repeats.append(r.id)
        seen_ids.add(r.id)
        seen_prompts.add(r.prompt)
    if repeats:
        log.warning("%s: %d item(s) repeat an earlier item (same id or same prompt), e.g. %r; "
                    "each copy is scored and counted in the mean", suite, len(repeats), repeats[0])
    return len(repeats)


def suite_options(suite: str, options: Mapping[str, Any] | None,
                  data_dir: Path | None) -> dict[str, Any]:
    """The suite's options, with its benchmark path taken from ``data_dir`` when unset."""
    resolved = dict(options or {})
    if data_dir is not None and "path" not in resolved and suite in DEFAULT_PATHS:
        resolved["path"] = data_dir / DEFAULT_PATHS[suite]
    return resolved


def default_out_dir(model_dir: str | Path, root: str | Path = "evals") -> Path:
    """``evals/<folder name>-<hash of the full path>``: two models never share a folder."""
    resolved = Path(model_dir).resolve()
    return Path(root) / f"{resolved.name}-{config_hash(str(resolved), 8)}"


def evaluate_model(model_dir: str | Path, suites: Mapping[str, Mapping[str, Any]],
                   out_dir: str | Path, *, limit: int | None = None,
                   generate: GenerateFn | None = None,
                   generator_options: Mapping[str, Any] | None = None,
                   resamples: int = 2000, overwrite: bool = False,
                   say: Callable[[str], None] = log.info) -> dict[str, dict[str, Any]]:
    """Evaluate ``model_dir`` on each suite (name -> options); returns the summaries by suite.

    ``generate`` replaces the model's own generate function (tests, remote backends).
    ``say`` receives one plain line per suite that is reused or replaced.
    Raises :class:`IncompleteError` after the other suites are published when a
    suite's metric could not be computed; its ``summaries`` are the published ones.
    """
    from sftmix.eval.engine.generation import load_generator

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if not suites:
        raise ConfigError("no evaluation suite was given; available: " + ", ".join(suite_names()))
    # Build every task first: a wrong option fails before the model is loaded.
    tasks = {suite: build_suite(suite, options) for suite, options in suites.items()}
    for task in tasks.values():
        task.preflight()
    if generate is None and not (model_dir / "config.json").is_file():
        raise SftmixError(f"{model_dir}: not a saved model directory (no config.json); expected "
                          "a training stage's output or a folder written by save_pretrained")
    model = str(model_dir.resolve())
    plans = {suite: (public_options(suites[suite]), out_dir / suite) for suite in tasks}
    for suite, (_, target) in plans.items():
        held = _held_model(target)
        if held is not None and held != model and not overwrite:
            raise ConfigError(f"{target} holds the {suite} evaluation of another model ({held}); "
                              "give another output folder with -o, or --overwrite to replace it")
    summaries: dict[str, dict[str, Any]] = {}
    failures: list[str] = []
    for suite, task in tasks.items():
        options, target = plans[suite]
        key = artefact_key({"model": model, "suite": suite, "options": options, "limit": limit})
        if is_complete(target) and read_marker(target).get("key") == key:
            say(f"{suite}: reused the complete evaluation in {target} (same model, options and limit)")
            summaries[suite] = json.loads((target / "summary.json").read_text())
            continue
        if is_complete(target):
            say(f"{suite}: replacing the evaluation in {target} (its model, options or limit differ)")
            shutil.rmtree(target)
        if generate is None:
            generate = load_generator(model_dir, **dict(generator_options or {}))
        log.info("evaluating %s on %s%s", model_dir, suite, f" (first {limit})" if limit else "")
        try:
            summaries[suite] = run_suite(task, generate, target, suite=suite, limit=limit,
                                         resamples=resamples,
                                         info={"key": key, "model": str(model_dir),
                                               "options": options})
        except IncompleteError as exc:
            failures.append(str(exc))
    # The folder's summary covers every suite evaluated into it, this call's and earlier ones.
    index = out_dir / "summary.json"
    merged = json.loads(index.read_text()) if index.is_file() else {}
    merged.update(summaries)
    if merged:
        write_json_atomic(index, merged)
    if failures:
        raise SuitesIncomplete("; ".join(failures), summaries)
    return summaries


class SuitesIncomplete(IncompleteError):
    """Some suites could not be completed; ``summaries`` holds the ones that were."""

    def __init__(self, message: str, summaries: dict[str, dict[str, Any]]) -> None:
        super().__init__(message)
        self.summaries = summaries


def _held_model(target: Path) -> str | None:
    """The resolved path of the model whose complete evaluation ``target`` holds, if any."""
    if not is_complete(target):
        return None
    summary = target / "summary.json"
    model = json.loads(summary.read_text()).get("model") if summary.is_file() else None
    return str(Path(model).resolve()) if model else None
