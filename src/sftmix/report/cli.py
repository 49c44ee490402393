"""``sftmix report STUDY_DIR``: the figures, tables and trade-off of a study, as HTML and Markdown."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write a study's report (self-contained HTML + Markdown with PNGs)")
    p.add_argument("study_dir", type=Path, help="study directory written by 'sftmix run'")
    p.add_argument("-o", "--out", type=Path, help="output folder (default: STUDY_DIR/report)")
    p.add_argument("--weights", help="priority of the abilities for the recommendation, e.g. "
                   "maths=1,code=1,general=2 (abilities not named weigh 0; default: all equal)")
    p.add_argument("--no-paper", action="store_true", help="leave out the reference study's numbers")
    p.add_argument("--tsne-queries", type=int, default=100, metavar="N",
                   help="training queries per source for the t-SNE view (0: skip it; default 100)")
    p.add_argument("--tsne-run", help="run whose final stage the t-SNE view shows "
                   "(default: multi-task, else the largest mixture)")
    p.add_argument("--seed", type=int, default=0, help="seed of the query sample and t-SNE")
    p.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from sftmix.artifacts import check_output_dir
    from sftmix.errors import SftmixError
    from sftmix.report.build import build_report, write_report
    from sftmix.results.data import load_results
    from sftmix.results.weights import parse_weights

    if args.tsne_queries < 0:
        raise SftmixError(f"--tsne-queries must be >= 0, found {args.tsne_queries}")
    out = args.out if args.out is not None else args.study_dir / "report"
    check_output_dir(out, "-o/--out" if args.out is not None else "the report folder")
    res = load_results(args.study_dir)
    weights = parse_weights(args.weights, res.abilities)
    report = build_report(res, weights, paper=not args.no_paper, tsne_queries=args.tsne_queries,
                          tsne_run=args.tsne_run, seed=args.seed)
    html, md = write_report(report, out)
    print(html)
    print(md)
    return 0
