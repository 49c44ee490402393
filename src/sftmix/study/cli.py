"""``sftmix plan | run | status | cancel | results``: a study from one file to a results store."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from sftmix.cli import at_least
from sftmix.errors import ConfigError, SftmixError

if TYPE_CHECKING:
    from sftmix.config import Override


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="show a study's runs, distinct stages and evaluations, and the savings")
    p.add_argument("study", type=Path, help="study YAML file")
    p.add_argument("--runs", action="store_true", help="list every run with its stages")
    p.add_argument("--tokenizer", help="measure training tokens with this tokenizer (a model folder); "
                   "default: estimate from characters")
    p.add_argument("--no-cost", action="store_true", help="skip reading the data for the token count")
    p.set_defaults(func=_plan)

    p = sub.add_parser("run", help="run (or resume) a study: mixtures, training stages, evaluations")
    p.add_argument("study", type=Path, help="study YAML file")
    p.add_argument("-o", "--out", type=Path, help="study directory (default: studies/<name>)")
    p.add_argument("--workers", type=at_least(1), help="jobs at a time (default: the study's 'workers')")
    p.add_argument("--executor", help="where jobs run: local or slurm (default: the study's "
                   "'executor: name', else local)")
    p.add_argument("--wait", action="store_true",
                   help="slurm: follow the queued jobs to the end (default: return once they are queued)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="set a field of the study file, spelled as in the YAML, e.g. "
                        "training.max_steps=2 or evaluation.gsm8k.limit=10; repeatable")
    p.add_argument("--limit", type=at_least(1), help="evaluate the first N items of every suite "
                   "(the study's evaluation.<suite>.limit)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a study directory that holds another study")
    p.set_defaults(func=_run)

    p = sub.add_parser("status", help="done / running / failed / pending work of a study directory")
    p.add_argument("study_dir", type=Path)
    p.set_defaults(func=_status)

    p = sub.add_parser("cancel", help="cancel a study's queued and running SLURM jobs")
    p.add_argument("study_dir", type=Path)
    p.set_defaults(func=_cancel)

    p = sub.add_parser("results", help="print a study's results; export CSV or Parquet")
    p.add_argument("study_dir", type=Path)
    p.add_argument("--csv", type=Path, help="write every (run, metric) row to this CSV file")
    p.add_argument("--parquet", type=Path, help="write every (run, metric) row to this Parquet file")
    p.add_argument("--rebuild", action="store_true", help="rebuild the store from the artefact directories")
    p.set_defaults(func=_results)


def _plan(args: argparse.Namespace) -> int:
    from sftmix.study.cost import plan_cost
    from sftmix.study.load import load_study
    from sftmix.study.plan import build_plan
    from sftmix.study.summary import plan_summary

    plan = build_plan(load_study(args.study))
    cost = None if args.no_cost else plan_cost(plan, args.tokenizer)
    print(plan_summary(plan, list_runs=args.runs, cost=cost))
    return 0


def _run(args: argparse.Namespace) -> int:
    from sftmix.artifacts import check_output_dir
    from sftmix.config import overriding
    from sftmix.study.executor import make_executor
    from sftmix.study.load import load_study
    from sftmix.study.runner import run_study

    with overriding(args.study, _overrides(args)):
        study = load_study(args.study)
    if args.workers:
        study.workers = args.workers
    out = args.out or Path("studies") / study.name
    check_output_dir(out, "-o/--out")
    _check_other_study(out, study.name, args.overwrite)
    executor = make_executor(args.executor or study.executor.name, study)
    if args.wait:
        if not hasattr(executor, "wait"):
            raise SftmixError("--wait applies to the slurm executor; the local executor always waits")
        executor.wait = True
    outcome = run_study(study, out, executor)
    print(f"study directory: {out}")
    if outcome.queued:
        print(f"jobs: {len(outcome.queued)} queued or running on SLURM, {len(outcome.done)} done now, "
              f"{len(outcome.skipped)} already complete, {len(outcome.failed)} failed, "
              f"{len(outcome.blocked)} cancelled by a failed dependency")
        print(f"watch: sftmix status {out}    cancel: sftmix cancel {out}")
        return 130 if outcome.interrupted else 0
    print(f"jobs: {len(outcome.done)} done now, {len(outcome.skipped)} already complete, "
          f"{len(outcome.failed)} failed, {len(outcome.blocked)} blocked by a failure")
    for key in outcome.failed:
        print(f"  failed: {key} (log: {out / 'logs' / (key + '.log')})")
    if outcome.interrupted:
        print("interrupted: completed work is kept; run the same command again to resume")
        return 130
    print(f"results: sftmix results {out}")
    return 0 if outcome.ok else 1


def _overrides(args: argparse.Namespace) -> list[Override]:
    """``--set`` as given, and ``--limit N`` as ``evaluation.<suite>.limit=N`` for every suite."""
    from sftmix.config import Override, parse_overrides, read_yaml

    overrides = parse_overrides(args.settings)
    if args.limit is None:
        return overrides
    data, _ = read_yaml(args.study, overrides)
    data = data if isinstance(data, dict) else {}
    suites = dict.fromkeys(data.get("evaluation") or {})
    for ability in (data.get("abilities") or {}).values():
        suites.update(dict.fromkeys(ability.get("evals") or [] if isinstance(ability, dict) else []))
    return overrides + [Override(("evaluation", str(s), "limit"), args.limit,
                                 f"{args.limit} (evaluation.{s}.limit)", "--limit") for s in suites]


def _check_other_study(out: Path, name: str, overwrite: bool) -> None:
    """A study directory holds one study; another one's is kept unless --overwrite."""
    from sftmix.config import read_yaml

    existing = out / "study.yaml"
    if not existing.is_file():
        return
    found = (read_yaml(existing)[0] or {}).get("name")
    if found == name:
        return
    if not overwrite:
        raise ConfigError(f"{out} holds the study {found!r}, not {name!r}; give another directory "
                          "with -o, or --overwrite to delete it and start afresh")
    print(f"removing {out}, which held the study {found!r}")
    shutil.rmtree(out)


def _check_study_dir(path: Path) -> None:
    if not (path / "study.yaml").is_file():
        raise SftmixError(f"{path}: not a study directory (expected the study.yaml that 'sftmix run' writes)")


def _status(args: argparse.Namespace) -> int:
    from sftmix.study.status import job_states, status_table

    _check_study_dir(args.study_dir)
    print(status_table(job_states(args.study_dir)))
    return 0


def _cancel(args: argparse.Namespace) -> int:
    from sftmix.study.slurm_queue import cancel_study

    _check_study_dir(args.study_dir)
    cancelled = cancel_study(args.study_dir)
    for key, job_id in cancelled:
        print(f"cancelled SLURM job {job_id} ({key})")
    print(f"{len(cancelled)} jobs cancelled; completed work is kept, 'sftmix run' resubmits the rest")
    return 0


def _results(args: argparse.Namespace) -> int:
    from sftmix.study.results import export, results_table
    from sftmix.study.runner import load_plan
    from sftmix.study.store import STORE_NAME, ResultsStore

    _check_study_dir(args.study_dir)
    path = args.study_dir / STORE_NAME
    if args.rebuild or not path.exists():
        _, plan, jobs = load_plan(args.study_dir)
        tmp = path.with_name(path.name + f".partial-{os.getpid()}")
        store = ResultsStore(tmp)
        store.record_plan(plan)
        store.sync(jobs)
        store.close()
        for suffix in ("-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        os.replace(tmp, path)
    store = ResultsStore(path)
    if (args.study_dir / "slurm").is_dir():  # cluster jobs finish without a process that records them
        store.sync(load_plan(args.study_dir)[2])
    rows = store.results()
    store.close()
    print(results_table(rows))
    if args.csv or args.parquet:
        for written in export(rows, csv=args.csv, parquet=args.parquet):
            print(f"wrote {written}")
    if not rows:
        print(json.dumps({"rows": 0}))
    return 0
