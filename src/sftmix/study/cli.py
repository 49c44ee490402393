"""``sftmix plan | run | status | results``: a study from one file to a results store."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="show a study's runs, distinct stages and evaluations, and the savings")
    p.add_argument("study", type=Path, help="study YAML file")
    p.add_argument("--runs", action="store_true", help="list every run with its stages")
    p.set_defaults(func=_plan)


def _plan(args: argparse.Namespace) -> int:
    from sftmix.study.load import load_study
    from sftmix.study.plan import build_plan
    from sftmix.study.summary import plan_summary

    study = load_study(args.study)
    plan = build_plan(study)
    print(plan_summary(plan, list_runs=args.runs))
    return 0
