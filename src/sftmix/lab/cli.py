"""``sftmix lab corpus`` and ``sftmix demo``: the CPU lab, end to end.

The demo writes the lab corpus (seeded synthetic maths, code and general data,
train and held-out test files in ordinary formats), runs the lab study -- the
reference study's four designs at lab scale with a small Llama built from
scratch -- and writes its report. Everything is an artefact: a second run
reuses what is complete and resumes what is not.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from sftmix.artifacts import check_output_dir
from sftmix.cli import at_least
from sftmix.config import StrictModel, load_config
from sftmix.errors import SftmixError

log = logging.getLogger(__name__)

LAB_ENV = "SFTMIX_LAB_DIR"


class CorpusConfig(StrictModel):
    """How much lab data to generate, and how hard it is."""

    seed: int = 0
    sizes: dict[str, int] | None = None
    difficulty: dict[str, dict[str, Any]] | None = None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the built-in CPU lab study and write its report")
    p.add_argument("-o", "--out", type=Path, default=Path("studies/lab"), help="study directory")
    p.add_argument("--config", type=Path, help="lab study file (default: configs/lab/demo.yaml)")
    p.add_argument("--workers", type=at_least(1), help="jobs at a time (default: the study's 'workers')")
    p.set_defaults(func=_demo)

    p = sub.add_parser("lab", help="the CPU lab's synthetic data")
    lab = p.add_subparsers(dest="lab_command", metavar="COMMAND", required=True)
    c = lab.add_parser("corpus", help="write the lab corpus (train and held-out test files)")
    c.add_argument("out", type=Path)
    c.add_argument("--config", type=Path, help="corpus settings (default: configs/lab/corpus.yaml)")
    c.set_defaults(func=_corpus)


def configs_dir() -> Path:
    """``configs/lab`` of the working directory, else of the source checkout."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
        path = base / "configs" / "lab"
        if path.is_dir():
            return path
    raise SftmixError("configs/lab not found: run from the sftmix checkout, or pass --config")


def write_corpus(out: Path, config: Path | None = None) -> Path:
    from sftmix.lab.generators import write_lab_corpus

    cfg = load_config(config or configs_dir() / "corpus.yaml", CorpusConfig)
    write_lab_corpus(out, cfg.sizes, seed=cfg.seed, difficulty=cfg.difficulty)
    return out


def _corpus(args: argparse.Namespace) -> int:
    check_output_dir(args.out, "lab corpus OUT")
    out = write_corpus(args.out, args.config)
    print(f"lab corpus: {out}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from sftmix.study.executor import make_executor
    from sftmix.study.load import load_study
    from sftmix.study.runner import run_study

    started = time.monotonic()
    check_output_dir(args.out, "-o/--out")
    config = args.config or configs_dir() / "demo.yaml"
    corpus = write_corpus(args.out / "corpus", config.parent / "corpus.yaml")
    study = load_study(config, variables={LAB_ENV: str(corpus.resolve())})
    if args.workers:
        study.workers = args.workers
    print(f"lab corpus: {corpus}")
    outcome = run_study(study, args.out, make_executor("local", study))
    print(f"study: {len(outcome.done)} jobs done, {len(outcome.skipped)} already complete, "
          f"{len(outcome.failed)} failed, {len(outcome.blocked)} blocked")
    if not outcome.ok:
        print(f"see 'sftmix status {args.out}' and the logs in {args.out / 'logs'}")
        return 130 if outcome.interrupted else 1
    from sftmix.report.build import build_report, write_report
    from sftmix.results.data import load_results

    res = load_results(args.out)
    html, md = write_report(build_report(res), args.out / "report")
    print(f"demo finished in {time.monotonic() - started:.0f} s")
    print(f"report (HTML): {html}")
    print(f"report (Markdown): {md}")
    return 0
