"""The ``sftmix`` command: one entry point, one subcommand group per concern.

Each concern lives in its own package and adds its subcommands through a
``register(subparsers)`` function in its ``cli`` module; imports are deferred
so that ``sftmix --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable

from sftmix import __version__
from sftmix.errors import SftmixError
from sftmix.logging_setup import configure

log = logging.getLogger(__name__)

# Modules whose register(subparsers) adds subcommands. A module that does not
# exist yet is skipped, so that the CLI grows with the package.
COMMAND_MODULES = (
    "sftmix.data.cli",
    "sftmix.train.cli",
    "sftmix.eval.cli",
    "sftmix.study.cli",
    "sftmix.report.cli",
    "sftmix.lab.cli",
    "sftmix.suggest.cli",
)


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``minimum``; anything else is a usage error (exit 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"found {text!r}, expected a whole number >= {minimum}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sftmix",
        description="Build SFT data mixtures, fine-tune, evaluate every ability, report the trade-off.",
    )
    parser.add_argument("--version", action="version", version=f"sftmix {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    configure(args.verbose)
    try:
        return int(args.func(args) or 0)
    except SftmixError as exc:
        print(f"sftmix: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("sftmix: interrupted; completed work is kept and a rerun resumes.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
