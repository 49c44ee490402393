"""``sftmix results``: print a study's results, export them as CSV or Parquet."""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

from sftmix.errors import SftmixError

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("results", help="print a study's results; export CSV or Parquet")
    p.add_argument("study_dir", type=Path)
    p.add_argument("--csv", type=Path, help="write every (run, metric) row to this CSV file")
    p.add_argument("--parquet", type=Path, help="write every (run, metric) row to this Parquet file")
    p.add_argument("--rebuild", action="store_true", help="rebuild the store from the artefact directories")
    p.set_defaults(func=_results)


def _results(args: argparse.Namespace) -> int:
    from sftmix.artifacts import check_output_file
    from sftmix.results.tables import results_table
    from sftmix.study.cost import plan_cost
    from sftmix.study.runner import load_plan
    from sftmix.study.store import STORE_NAME, ResultsStore

    for option, target in (("--csv", args.csv), ("--parquet", args.parquet)):
        if target is not None:
            check_output_file(target, option)
    if not (args.study_dir / "study.yaml").is_file():
        raise SftmixError(f"{args.study_dir}: not a study directory (expected the study.yaml that "
                          "'sftmix run' writes)")
    path = args.study_dir / STORE_NAME
    if args.rebuild or not path.exists():
        _, plan, jobs = load_plan(args.study_dir)
        try:  # what the plan costs and how large its sources are, as a run records them
            plan.cost = plan_cost(plan)
        except SftmixError as exc:
            log.warning("the store records no source sizes: the study's data could not be read (%s)", exc)
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
    # The files first: a reader that stops reading (| head) must not cost them.
    written = _export(rows, args.csv, args.parquet)
    print(results_table(rows))
    for path in written:
        print(f"wrote {path}")
    if not rows:
        print(json.dumps({"rows": 0}))
    return 0


def _export(rows: list[dict[str, Any]], csv: Path | None, parquet: Path | None) -> list[Path]:
    """Write the CSV and Parquet files asked for, each complete or not at all."""
    from sftmix.results.tables import export

    partial = {path: path.with_name(f".{path.name}.partial-{os.getpid()}") for path in (csv, parquet) if path}
    try:
        export(rows, csv=partial.get(csv) if csv else None, parquet=partial.get(parquet) if parquet else None)
        for final, tmp in partial.items():
            os.replace(tmp, final)
    finally:
        for tmp in partial.values():
            tmp.unlink(missing_ok=True)
    return list(partial)
