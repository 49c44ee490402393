"""Reading benchmark files: JSONL (optionally gzipped), one record a line, checked as read.

Every benchmark reader goes through :func:`iter_jsonl`, so a missing file, a
line that is not JSON, or a record without a required field is reported the
same way everywhere: the file, the line and the field, and what was expected.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sftmix.errors import DataError, decode_line, json_problem, where


def iter_jsonl(path: str | Path, what: str, *, required: Sequence[str] = (),
               strings: Sequence[str] = ()) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, record)`` for each non-blank line of ``path``.

    ``required`` keys must be present; ``strings`` keys must be present and hold a string.
    """
    p = Path(path)
    fields = ", ".join(dict.fromkeys([*strings, *required]))
    if not p.is_file():
        raise DataError(f"{what} file {p} does not exist; expected a JSONL file of records "
                        f"with fields {fields}")
    opener = gzip.open if p.suffix == ".gz" else open
    with opener(p, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = decode_line(raw, p, lineno, what)
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{where(p, lineno)}: not valid JSON ({json_problem(e)}); expected one "
                                f"{what} record per line") from None
            if not isinstance(rec, dict):
                raise DataError(f"{where(p, lineno)}: found a {type(rec).__name__}, expected a "
                                f"{what} record (a JSON object with fields {fields})")
            for key in required:
                if key not in rec:
                    raise DataError(f"{where(p, lineno, field=key)}: missing; expected a {what} "
                                    f"record with fields {fields}")
            for key in strings:
                if not isinstance(rec.get(key), str):
                    raise DataError(f"{where(p, lineno, field=key)}: missing or not a string; "
                                    f"expected a {what} record with fields {fields}")
            yield lineno, rec
