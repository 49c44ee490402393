"""Raw records from wherever they live: JSON, JSONL (also ``.gz``), Parquet, a ``datasets`` folder, the hub.

:func:`read_raw` returns a list of :class:`RawRecord` — the parsed record and
where it came from (a 1-based ``line`` for JSONL, a 0-based ``index`` for a
JSON list, a Parquet file or a ``datasets`` folder). What a file holds is
decided by its name:

* ``*.jsonl``, ``*.jsonl.gz``, ``*.ndjson`` -- one JSON object a line (blank lines ignored);
* ``*.json``, ``*.json.gz`` -- a JSON list of objects (a JSONL file named ``.json``
  is recognised too, as ``datasets`` does);
* ``*.parquet`` -- read with pyarrow;
* a folder written by ``Dataset.save_to_disk`` (or a ``DatasetDict``: its ``split``).

A hub name goes through ``datasets.load_dataset``. Without network that fails;
the error says how to point at a local copy instead.

A line that is not valid JSON in a JSONL file is a per-record problem (it can be
skipped with ``on_error: skip``); a JSON file that does not parse is not.
"""

from __future__ import annotations

import contextlib
import gc
import gzip
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from sftmix.errors import DataError, json_problem

log = logging.getLogger(__name__)

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")
JSON_SUFFIXES = (".json", ".json.gz")
PARQUET_SUFFIXES = (".parquet",)


class RawRecord(NamedTuple):
    """A parsed record, or the JSON error of its line (``error`` set, ``data`` None).

    A NamedTuple, not a dataclass: hundreds of thousands are made per load.
    """

    data: Any
    line: int | None = None
    index: int | None = None
    error: str | None = None


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while hundreds of thousands of records are built.

    Every new dict, list and record object counts towards a collection; building a
    large dataset would trigger many full passes over everything built so far
    (about a third of the load time), while the records hold no reference cycles.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_raw(path: str | Path, *, split: str = "train") -> list[RawRecord]:
    """Every record of a local file or ``datasets`` folder, with its location."""
    path = Path(path)
    if path.is_dir():
        return _read_saved_dataset(path, split)
    if not path.is_file():
        raise DataError(f"{path}: data file not found (expected a JSON, JSONL, Parquet file or a "
                        "folder written by datasets' save_to_disk)")
    name = path.name.lower()
    if name.endswith(JSONL_SUFFIXES):
        return _read_jsonl(path, _read_text(path))
    if name.endswith(JSON_SUFFIXES):
        return _read_json(path, _read_text(path))
    if name.endswith(PARQUET_SUFFIXES):
        return _read_parquet(path)
    raise DataError(f"{path}: unknown file type (expected a name ending in "
                    f"{', '.join(JSONL_SUFFIXES + JSON_SUFFIXES + PARQUET_SUFFIXES)}, or a datasets folder)")


def _read_text(path: Path) -> str:
    try:
        if path.name.lower().endswith(".gz"):
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
        return raw.decode("utf-8")
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read the file ({exc})") from None
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}, line {line}: the file is not UTF-8 text ({exc.reason})") from None


def _read_jsonl(path: Path, text: str) -> list[RawRecord]:
    body = text.rstrip()
    if body and "\n\n" not in body and "\r" not in body:
        # Fast path: one C-level parse of the whole file as a list. A raw newline cannot occur
        # inside a JSON string, so every newline separates two records.
        try:
            parsed = json.loads("[" + body.replace("\n", ",") + "]")
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, list) and len(parsed) == body.count("\n") + 1:
            return [RawRecord(data, number) for number, data in enumerate(parsed, start=1)]
    lines = text.splitlines()
    numbers = [i for i, line in enumerate(lines, start=1) if line.strip()]
    # Slow path: a bad line (or a line holding two values) -- find out which, line by line.
    out = []
    loads = json.loads
    for number in numbers:
        try:
            out.append(RawRecord(loads(lines[number - 1]), number))
        except json.JSONDecodeError as exc:
            out.append(RawRecord(None, number, error=f"not valid JSON ({json_problem(exc)})"))
    return out


def _read_json(path: Path, text: str) -> list[RawRecord]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data" and text.lstrip().startswith("{"):
            # JSON Lines under a .json name, as datasets accepts too.
            return _read_jsonl(path, text)
        raise DataError(f"{path}, line {exc.lineno}, column {exc.colno}: not valid JSON "
                        f"({exc.msg.removesuffix(' at')})") from None
    if isinstance(data, dict):
        # {"data": [...]} / {"train": [...]}: a single list-valued key is the records.
        lists = [k for k, v in data.items() if isinstance(v, list)]
        if len(lists) == 1:
            data = data[lists[0]]
        else:
            return [RawRecord(data, index=0)]
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of records, found a {type(data).__name__}")
    return [RawRecord(item, None, i) for i, item in enumerate(data)]


def _read_parquet(path: Path) -> list[RawRecord]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
    return [RawRecord(row, None, i) for i, row in enumerate(table.to_pylist())]


def _read_saved_dataset(path: Path, split: str) -> list[RawRecord]:
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as exc:
        raise DataError(f"{path}: a folder, but not one written by datasets' save_to_disk ({exc})") from None
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise DataError(f"{path}: the saved DatasetDict has no split '{split}' (it has: {', '.join(ds)})")
        ds = ds[split]
    return [RawRecord(row, None, i) for i, row in enumerate(ds.to_list())]


def read_hub(name: str, *, split: str = "train", subset: str | None = None) -> list[RawRecord]:
    """Records of a hub dataset through ``datasets.load_dataset`` (needs network or a warm cache)."""
    import datasets

    try:
        ds = datasets.load_dataset(name, subset, split=split)
    except Exception as exc:  # offline, unknown name, auth: all end the same way for the user
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(
            f"hub dataset '{name}' (split '{split}'): could not be loaded ({type(exc).__name__}: {reason}). "
            "Without network access, download it elsewhere (e.g. datasets.load_dataset(...)"
            ".to_json('train.jsonl') or .save_to_disk('folder')), copy it here and give its location "
            "as 'path:' instead of 'hub:' (on the command line: the file itself)."
        ) from None
    return [RawRecord(row, None, i) for i, row in enumerate(ds.to_list())]
