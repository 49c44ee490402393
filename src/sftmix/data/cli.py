"""``sftmix data inspect`` and ``sftmix data mix``.

* ``sftmix data inspect SOURCE [--format NAME] [--ability A] [--on-error skip] [--show N]``
  reads one file (or ``hub:NAME``) and prints counts, length statistics, a few
  records and the validation report. Without ``--format`` the format is
  guessed from the first record's fields. Any invalid record makes it exit 2
  after the report (``--report-only``: exit 0), so it can guard a pipeline.
* ``sftmix data mix CONFIG.yaml -o DIR`` builds the mixture a YAML file
  describes and writes ``DIR/data.jsonl`` and ``DIR/manifest.json``.
* ``sftmix data get [NAME...] [-o DIR] [--from PATH]`` brings the reference
  study's public datasets into ``data/paper`` (see ``sftmix.data.get``).

Malformed input ends with status 2 and a one-paragraph message (file, line,
field), never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import statistics
from pathlib import Path
from typing import Any

from sftmix import strict_json
from sftmix.cli import at_least
from sftmix.errors import DataError

log = logging.getLogger(__name__)

# First matching field set wins; the order puts specific shapes before generic ones.
_GUESSES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("humaneval", ("task_id", "prompt", "canonical_solution")),
    ("mbpp", ("task_id", "code")),
    ("ifeval", ("prompt", "instruction_id_list")),
    ("gsm8k", ("question", "answer")),
    ("math", ("problem", "solution")),
    ("sharegpt", ("conversations",)),
    ("messages", ("messages",)),
    ("alpaca", ("instruction",)),
)


def register(subparsers: Any) -> None:
    data = subparsers.add_parser("data", help="inspect data sources and build mixtures")
    sub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    inspect = sub.add_parser("inspect", help="counts, lengths, a few records and the validation report")
    inspect.add_argument("source", help="a JSON/JSONL(.gz)/Parquet file, a datasets folder, or hub:NAME")
    inspect.add_argument("--format", help="reader name (guessed from the fields if not given)")
    inspect.add_argument("--ability", help="ability the records train (default: the reader's)")
    inspect.add_argument("--split", default="train", help="split of a datasets folder or hub dataset")
    inspect.add_argument("--on-error", choices=("raise", "skip"), default="skip",
                         help="stop at the first malformed record, or count and skip (default)")
    inspect.add_argument("--show", type=at_least(0), default=2, help="records to print (default 2)")
    inspect.add_argument("--json", action="store_true", help="print the report as JSON only")
    inspect.add_argument("--report-only", action="store_true",
                         help="exit 0 even when records are invalid (default: exit 2, so that a "
                              "data pipeline stops on bad input)")
    inspect.set_defaults(func=run_inspect)

    mix = sub.add_parser("mix", help="build a mixture from a YAML file")
    mix.add_argument("config", type=Path, help="mixture YAML (see docs/data.md)")
    mix.add_argument("-o", "--output", type=Path, required=True, help="folder to write the mixture into")
    mix.set_defaults(func=run_mix)

    get = sub.add_parser(
        "get", help="bring the reference study's public datasets into data/paper, with a manifest",
        description="Load the reference study's public datasets with datasets.load_dataset (from "
                    "the Hugging Face hub, or with --from from a local copy), write them in the "
                    "formats sftmix reads, laid out like shared/data, with manifest.json (source, "
                    "revision, rows, sha256 of each file, date). The evaluation sets bundled with "
                    "sftmix are copied without network. --list shows the names.")
    get.add_argument("names", nargs="*", metavar="NAME",
                     help="datasets to get (default: all of the reference study's: "
                          "gsm8k code_alpaca sharegpt humaneval mtbench)")
    get.add_argument("-o", "--output", type=Path, default=Path("data/paper"),
                     help="folder to write into (default: data/paper)")
    get.add_argument("--from", dest="source", type=Path, metavar="PATH",
                     help="a local copy of one dataset: a folder or file datasets.load_dataset "
                          "reads (hub snapshot, JSON/JSONL/Parquet/CSV files, a save_to_disk folder)")
    get.add_argument("--revision", help="hub commit, branch or tag to read (default: the newest)")
    get.add_argument("--list", action="store_true", help="list the datasets and exit")
    get.set_defaults(func=run_get)


def guess_format(location: str, split: str) -> str:
    from sftmix.data.loading import read_hub, read_raw

    raws = read_hub(location[4:], split=split) if location.startswith("hub:") else read_raw(location, split=split)
    first = next((r.data for r in raws if isinstance(r.data, dict)), None)
    if first is not None:
        for name, fields in _GUESSES:
            if all(f in first for f in fields):
                return name
    found = ", ".join(sorted(first)) if first else "no readable record"
    raise DataError(f"{location}: cannot tell the format from the fields ({found}); give --format")


def run_inspect(args: argparse.Namespace) -> int:
    from sftmix.data.formats import READERS
    from sftmix.data.sources import BadRecordError, load_source
    from sftmix.data.spec import SourceSpec, name_for_file

    fmt = args.format or guess_format(args.source, args.split)
    READERS.get(fmt)
    where = {"hub": args.source[4:]} if args.source.startswith("hub:") else {"path": args.source}
    spec = SourceSpec(name=name_for_file(args.source),
                      format=fmt, ability=args.ability, on_error=args.on_error, split=args.split,
                      **where)
    try:
        loaded = load_source(spec)
    except BadRecordError as exc:
        raise BadRecordError(exc.problem, "give --on-error skip to count and skip such records") from None
    report = loaded.report()
    report["lengths"] = length_stats(loaded.examples)
    if args.json:
        print(strict_json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False))
    else:
        print_report(args, fmt, report, loaded.examples)
    invalid = report["skipped"]["count"]
    if invalid and not args.report_only:
        first = report["skipped"]["first_reasons"][0]
        raise DataError(f"{invalid} invalid record(s) in {args.source}; the first: {first} "
                        "(with --report-only: report them and exit 0)")
    return 0


def print_report(args: argparse.Namespace, fmt: str, report: dict[str, Any], examples: Any) -> None:
    default = "" if args.ability else f" (the {fmt} format's default; --ability NAME to set it)"
    print(f"{args.source}: format {fmt}, ability {report['ability']}{default}")
    print(f"  records read {report['records_read']}, valid {report['records_read'] - report['skipped']['count']}, "
          f"skipped {report['skipped']['count']}, exact duplicates {report['duplicates']['count']}")
    for reason in report["skipped"]["first_reasons"]:
        print(f"  skipped: {reason}")
    for key, stats in report["lengths"].items():
        print(f"  {key}: " + ", ".join(f"{k} {v}" for k, v in stats.items()))
    for ex in examples[: args.show]:
        print(f"--- {ex.id}")
        for m in ex.messages:
            text = m.content if len(m.content) <= 300 else m.content[:300] + " [...]"
            print(f"[{m.role}] {text}")


def length_stats(examples: list[Any]) -> dict[str, dict[str, float]]:
    """Turns per record and characters of prompts / responses: min, mean, median, max."""
    if not examples:
        return {}
    series = {
        "turns": [len(ex.messages) for ex in examples],
        "user_chars": [sum(len(m.content) for m in ex.messages if m.role == "user") for ex in examples],
        "assistant_chars": [sum(len(m.content) for m in ex.messages if m.role == "assistant")
                            for ex in examples],
    }
    return {k: {"min": min(v), "mean": round(statistics.fmean(v), 1), "median": statistics.median(v),
                "max": max(v)} for k, v in series.items()}


def run_mix(args: argparse.Namespace) -> int:
    from sftmix.artifacts import check_output_dir
    from sftmix.data.mixing import build_mixture, write_mixture
    from sftmix.data.spec import load_mixture_spec

    spec = load_mixture_spec(args.config)
    check_output_dir(args.output, "-o/--output")
    mixture = build_mixture(spec, base_dir=args.config.resolve().parent)
    out = write_mixture(mixture, args.output)
    total = mixture.manifest["total"]
    print(f"wrote {total['count']} examples to {out / 'data.jsonl'} (manifest: {out / 'manifest.json'})")
    for entry in mixture.manifest["entries"]:
        upsampled = f", upsampled x{entry['upsampling']}" if entry["upsampling"] > 1 else ""
        print(f"  {entry['target']}: {entry['obtained']} of {entry['available']} "
              f"({entry['kind']} {entry['requested']}{upsampled})")
    print("  by ability: " + ", ".join(f"{k} {v}" for k, v in total["by_ability"].items()))
    for line in source_lines(mixture.manifest.get("sources", {})):
        print(line)
    return 0


def source_lines(sources: dict[str, dict[str, Any]]) -> list[str]:
    """Per source, what reading, filtering, de-duplication and decontamination removed or found."""
    lines = []
    for name, s in sources.items():
        parts = [f"{s['records_read']} read"]
        if s["skipped"]["count"]:
            parts.append(f"{s['skipped']['count']} malformed skipped")
        for filt, info in (s.get("filters") or {}).items():
            parts.append(f"{info['dropped']} dropped by filter {filt}")
        dup = s.get("duplicates") or {}
        if dup.get("count"):
            parts.append(f"{dup['count']} exact duplicates "
                         + (f"({dup['dropped']} dropped)" if dup.get("dropped") else "(kept)"))
        contam = s.get("decontamination")
        if contam:
            kept = f"{contam['dropped']} dropped" if contam.get("dropped") else "kept"
            parts.append(f"{contam['contaminated']} overlapping an evaluation set "
                         f"({contam['n']}-grams, {kept})")
        parts.append(f"{s['available']} available")
        lines.append(f"  source {name}: " + ", ".join(parts))
    return lines



def run_get(args: argparse.Namespace) -> int:
    from sftmix.artifacts import check_output_dir
    from sftmix.data.get import DATASETS, MANIFEST, PAPER, get

    if args.list:
        for name in DATASETS.names():
            spec = DATASETS.get(name)
            where = f"hub {spec.hub}" if spec.hub else "bundled with sftmix"
            print(f"{name:12} {spec.what} ({where})")
        return 0
    names = list(dict.fromkeys(args.names)) or list(PAPER)
    for name in names:
        DATASETS.get(name)  # a wrong name fails before anything is fetched
    for flag, value in (("--from", args.source), ("--revision", args.revision)):
        if value is not None and len(names) != 1:
            raise DataError(f"{flag} {value}: names the copy of one dataset, but {len(names)} "
                            f"were asked for ({' '.join(names)}); give one NAME with {flag}")
    check_output_dir(args.output, "-o/--output")
    for name in names:
        get(name, args.output, source=args.source, revision=args.revision)
    print(f"manifest: {args.output / MANIFEST}")
    return 0
