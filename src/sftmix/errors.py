"""User-facing errors.

Anything a user can cause (a bad file, a wrong field, a missing path) is raised
as :class:`SftmixError` with a one-paragraph message that names where the
problem is, what was found and what was expected. The CLI prints the message
and exits with status 2, without a traceback.
"""

from __future__ import annotations

import json


class SftmixError(Exception):
    """An error the user can fix; its message is shown as is."""

    exit_code = 2


class ConfigError(SftmixError):
    """A configuration file or value is invalid."""


class DataError(SftmixError):
    """A data file or record is invalid."""


class IncompleteError(SftmixError):
    """Work ran but its result could not be computed (e.g. a judge that never answered).

    Nothing is marked complete; what was obtained is kept so that a rerun only
    redoes what is missing. Exit status 1: the input was fine, the run was not.
    """

    exit_code = 1


def where(path: object, line: int | None = None, index: int | None = None,
          field: str | None = None) -> str:
    """Render a location such as ``data.jsonl, line 3, field 'answer'``."""
    parts = [str(path)]
    if line is not None:
        parts.append(f"line {line}")
    if index is not None:
        parts.append(f"record {index}")
    if field:
        parts.append(f"field '{field}'")
    return ", ".join(parts)


def json_problem(exc: json.JSONDecodeError) -> str:
    """A JSON parse error in words, e.g. ``Unterminated string starting at column 30``.

    Some of the parser's messages end in "at" (it appends ": line L column C" to them),
    so the column is added here once; callers name the file and line.
    """
    return f"{exc.msg.removesuffix(' at')} at column {exc.colno}"


def decode_line(raw: bytes, path: object, lineno: int, what: str) -> str:
    """One line of a data file as text; bytes that are not UTF-8 are a DataError saying where."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{where(path, lineno)}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at "
                        f"column {exc.start + 1}); save the {what} file as UTF-8") from None
