"""The ``sftmix`` command: one entry point, one subcommand group per concern.

Each concern lives in its own package and adds its subcommands through a
``register(subparsers)`` function in its ``cli`` module: every sub-package with
a ``cli`` module is found, none is listed here. Heavy imports are deferred to
the subcommands so that ``sftmix --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import pkgutil
import sys
from collections.abc import Callable

from sftmix import __version__, settings
from sftmix.errors import SftmixError
from sftmix.logging_setup import configure

log = logging.getLogger(__name__)

# The order of the subcommand groups in --help: the path of a study's data. A package
# with a cli module that is not named here comes after these.
ORDER = ("data", "eval", "study", "results", "report", "lab")


def command_modules() -> list[str]:
    """``sftmix.<package>.cli`` for every sub-package that has one."""
    import sftmix

    packages = [m.name for m in pkgutil.iter_modules(sftmix.__path__) if m.ispkg]
    found = [p for p in packages if importlib.util.find_spec(f"sftmix.{p}.cli") is not None]
    found.sort(key=lambda p: (ORDER.index(p) if p in ORDER else len(ORDER), p))
    return [f"sftmix.{p}.cli" for p in found]


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
    for name in command_modules():
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    settings.freeze()  # the environment, read once for this command
    configure(args.verbose)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # inside the try: a reader gone by now is a broken pipe too
        return code
    except BrokenPipeError:
        # The reader stopped (``sftmix status DIR | head``): end quietly, as the Python docs
        # advise, with stdout on devnull so that the flush at exit does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except SftmixError as exc:
        print(f"sftmix: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("sftmix: interrupted; completed work is kept and a rerun resumes.", file=sys.stderr)
        return 130
    finally:
        settings.thaw()


if __name__ == "__main__":
    sys.exit(main())
