"""``sftmix eval MODEL_DIR --suite gsm8k,humaneval,ifeval,mtbench``: evaluate and print a table."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from sftmix.cli import at_least
from sftmix.errors import ConfigError
from sftmix.settings import current

DATA_DIR_ENV = "SFTMIX_DATA_DIR"
DEFAULT_SUITES = "gsm8k,humaneval,ifeval,mtbench"
PARENT = "the training stage's parent"  # --baseline without a value


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval", help="evaluate a model on benchmark suites; per-item results, summaries with 95%% CIs",
        description="Evaluate a saved model on benchmark suites. Each suite's per-item results and "
                    "summary (each metric with a bootstrap 95% interval) are written under OUT; a "
                    "complete suite is reused on a rerun. Benchmark files: the copies bundled "
                    "with sftmix (GSM8K, MATH, HumanEval, MBPP, IFEval, MT-Bench), unless "
                    "--data-dir names a folder laid out like shared/data (gsm8k/test.jsonl, "
                    "eval/humaneval/HumanEval.jsonl, eval/ifeval/input_data.jsonl, eval/mt_bench/, "
                    "...) or --set SUITE.path=FILE names one file. The MT-Bench judge is "
                    "any OpenAI-compatible endpoint: SFTMIX_JUDGE_BASE_URL, SFTMIX_JUDGE_MODEL, "
                    "SFTMIX_JUDGE_API_KEY (or OPENAI_API_KEY), or --set mtbench.judge.model=...")
    p.add_argument("model_dir", type=Path, metavar="MODEL_DIR", help="a saved model folder")
    p.add_argument("--suite", default=None,
                   help=f"comma-separated suites (default {DEFAULT_SUITES}; mtbench left out, "
                        "with a line that says so, when no judge is configured)")
    p.add_argument("--limit", type=int, default=None, help="evaluate the first N items of each suite")
    p.add_argument("--baseline", nargs="?", const=PARENT, default=None, metavar="MODEL_DIR",
                   help="also evaluate the model MODEL_DIR started from (a training stage's parent, "
                        "or the model given) on the same items, and print both scores and the "
                        "change with its 95%% interval")
    p.add_argument("--data-dir", type=Path, default=None,
                   help=f"folder holding the benchmark files (default: ${DATA_DIR_ENV}, else the "
                        "files bundled with sftmix)")
    p.add_argument("-o", "--out", type=Path, default=None,
                   help="output folder (default: evals/<model folder name>-<hash of its path>)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace evaluations of another model found in the output folder")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="SUITE.KEY=VALUE",
                   help="a suite option, e.g. gsm8k.mode=fewshot or mtbench.judge.model=gpt-4o "
                        "(values are read as YAML); repeatable")
    p.add_argument("--max-new-tokens", type=at_least(1), default=None,
                   help="cap on generated tokens for every suite (default: each suite's own)")
    p.add_argument("--template", default=None,
                   help="chat template override (default: the one the model was trained with)")
    p.add_argument("--batch-size", type=at_least(1), default=32, help="sequences decoded together")
    p.add_argument("--backend", choices=("auto", "hf", "vllm"), default="auto",
                   help="generation backend (auto: vLLM when installed with a GPU)")
    p.set_defaults(func=run)


def parse_settings(settings: list[str], suites: list[str]) -> dict[str, dict[str, Any]]:
    """``SUITE.KEY[.SUB]=VALUE`` strings into options per suite."""
    options: dict[str, dict[str, Any]] = {s: {} for s in suites}
    for text in settings:
        path, sep, raw = text.partition("=")
        parts = path.strip().split(".")
        if not sep or len(parts) < 2 or not all(parts):
            raise ConfigError(f"--set {text!r}: expected SUITE.KEY=VALUE, e.g. gsm8k.mode=fewshot")
        if parts[0] not in options:
            raise ConfigError(f"--set {text!r}: suite {parts[0]!r} is not among the suites being "
                              f"evaluated ({', '.join(suites)})")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {text!r}: the value is not valid YAML ({exc})") from None
        node = options[parts[0]]
        for key in parts[1:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {text!r}: {key!r} was already set to a plain value")
        node[parts[-1]] = value
    return options


def value_format(m: Mapping[str, Any]) -> Callable[[float], str]:
    """Percent for a metric bounded by 0 and 1, two decimals otherwise (MT-Bench's 1-10)."""
    if m.get("high", 1.0) == 1.0 and m.get("low", 0.0) == 0.0:
        return lambda v: f"{100 * v:.1f}%"
    return lambda v: f"{v:.2f}"


def format_table(summaries: dict[str, dict[str, Any]]) -> str:
    rows = [("suite", "metric", "value", "95% CI", "n")]
    for suite, summary in summaries.items():
        for name, m in summary["metrics"].items():
            if not m.get("n") or m.get("mean") is None:
                continue
            fmt = value_format(m)
            # A missing interval is NaN in memory and null once read back from summary.json.
            ci = (f"[{fmt(m['ci_low'])}, {fmt(m['ci_high'])}]"
                  if m.get("ci_low") is not None and not math.isnan(m["ci_low"]) else "-")
            star = "*" if name == summary.get("primary") else ""
            rows.append((suite, name + star, fmt(m["mean"]), ci, str(m["n"])))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n(* primary metric)"


def unjudged(suites: list[str], options: Mapping[str, dict[str, Any]]) -> str | None:
    """Why MT-Bench cannot run here (no judge configured), or None when it can or is not asked."""
    from sftmix.eval.tasks.judge import (
        ENV_API_KEYS,
        ENV_BASE_URL,
        judge_config,
        missing_key_problem,
    )

    if "mtbench" not in suites:
        return None
    judge = (options.get("mtbench") or {}).get("judge")
    if missing_key_problem(judge_config(judge if isinstance(judge, dict) else None)) is None:
        return None
    return (f"mtbench: not run: it needs an LLM judge; set {ENV_BASE_URL} (any OpenAI-compatible "
            f"server) and {ENV_API_KEYS[0]} (or {ENV_API_KEYS[1]} for OpenAI's), or give --suite "
            "without mtbench")


def select_suites(args: argparse.Namespace) -> tuple[list[str], dict[str, dict[str, Any]], str | None]:
    """The suites to run, their options, and the line saying MT-Bench was left out (if it was).

    Only the default list leaves MT-Bench out without a judge: a --suite that names it
    asks for it, and the judge's own check then stops the command.
    """
    from sftmix.eval.runner import suite_names

    text = DEFAULT_SUITES if args.suite is None else args.suite
    suites = [s.strip() for s in text.split(",") if s.strip()]
    available = suite_names()
    unknown = [s for s in suites if s not in available]
    if not suites or unknown:
        raise ConfigError(f"--suite {text!r}: unknown suite(s) {', '.join(unknown) or '(none)'}; "
                          f"available: {', '.join(available)}")
    options = parse_settings(args.settings, suites)
    skipped = unjudged(suites, options) if args.suite is None else None
    if skipped:
        suites.remove("mtbench")
        del options["mtbench"]
    return suites, options, skipped


def run(args: argparse.Namespace) -> int:
    from sftmix.artifacts import check_output_dir
    from sftmix.eval.runner import default_out_dir, suite_options

    suites, options, skipped = select_suites(args)
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit {args.limit}: expected a positive number of items")
    data_dir = args.data_dir or current().data_dir
    if data_dir is not None and not data_dir.is_dir():
        raise ConfigError(f"--data-dir {data_dir}: no such folder; expected the folder holding the "
                          "benchmark files (laid out like shared/data)")
    for suite in suites:
        if args.max_new_tokens is not None:
            options[suite].setdefault("max_new_tokens", args.max_new_tokens)
        options[suite] = suite_options(suite, options[suite], data_dir)
    out = args.out or default_out_dir(args.model_dir)
    check_output_dir(out, "-o/--out")
    baseline = None
    if args.baseline is not None:
        from sftmix.eval.compare import parent_model

        model = parent_model(args.model_dir) if args.baseline == PARENT else Path(args.baseline)
        baseline = (model, out.with_name(out.name + "-baseline") if args.out else default_out_dir(model))
        check_output_dir(baseline[1], "--baseline's output folder")
    if skipped:
        print(skipped)
    if baseline is None:
        summaries = _evaluate(args, args.model_dir, options, out)
        print(format_table(summaries))
    else:
        from sftmix.eval.compare import compare, format_comparison

        print(f"before: {baseline[0]}")
        before = _evaluate(args, baseline[0], options, baseline[1])
        print(f"after: {args.model_dir}")
        summaries = _evaluate(args, args.model_dir, options, out)
        diffs = compare((baseline[1], before), (out, summaries))
        print(format_comparison(before, summaries, diffs, value_format))
        print(f"results of the model it started from in {baseline[1]}")
    print(f"results in {out}")
    if skipped:
        print(skipped.split(":")[0] + ": not run (no judge configured)")
    return 0


def _evaluate(args: argparse.Namespace, model_dir: Path, options: dict[str, dict[str, Any]],
              out: Path) -> dict[str, dict[str, Any]]:
    from sftmix.eval.runner import SuitesIncomplete, evaluate_model

    try:
        return evaluate_model(
            model_dir, options, out, limit=args.limit, overwrite=args.overwrite, say=print,
            generator_options={"template": args.template, "batch_size": args.batch_size,
                               "backend": args.backend})
    except SuitesIncomplete as exc:
        # What did complete is shown and kept; the error says what is missing.
        if exc.summaries:
            print(format_table(exc.summaries))
            print(f"results in {out}")
        raise
