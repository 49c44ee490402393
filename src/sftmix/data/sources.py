"""Load one source: read, validate, filter, find duplicates -- and report each step.

Public API::

    load_source(spec: SourceSpec, *, base_dir: Path | None = None) -> LoadedSource

``LoadedSource.examples`` are the records that survived validation (with
``on_error: skip``), the source's filters and, if ``drop_duplicates``, the
removal of exact duplicates -- a list, or for a conversation JSONL file read
column-wise (:mod:`sftmix.data.columnar`) a sequence that builds each Example
when it is read. ``LoadedSource.report()`` is the source's part of
a manifest: path as written, sha256 of the file, reader, counts at each step
and the first reasons of every skip and drop.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from sftmix.data.arrow_jsonl import JsonlTable, read_table
from sftmix.data.columnar import ColumnarPool, Conversations, turn_column
from sftmix.data.duplicates import content_hash, mark_duplicates
from sftmix.data.filters import apply_filters
from sftmix.data.formats import READERS, Reader
from sftmix.data.loading import RawRecord, gc_paused, read_hub, read_raw
from sftmix.data.records import Example
from sftmix.data.spec import SourceSpec
from sftmix.data.validate import RecordError
from sftmix.errors import DataError, where
from sftmix.hashing import file_sha256

log = logging.getLogger(__name__)
_REPORTED: set[tuple[object, ...]] = set()  # sources whose "read" line this process logged

REASONS_KEPT = 5  # first reasons per kind of problem kept in the report


@dataclass
class LoadedSource:
    spec: SourceSpec
    examples: Sequence[Example]
    sha256: str | None
    records_read: int
    skipped: int = 0
    skip_reasons: list[str] = field(default_factory=list)
    filtered: dict[str, dict[str, Any]] = field(default_factory=dict)
    duplicates: int = 0
    duplicate_examples: list[dict[str, str]] = field(default_factory=list)
    duplicates_dropped: int = 0
    folder: bool = False  # a datasets folder: its split matters
    decontamination: dict[str, Any] | None = None  # set by a mixture with eval sets

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def ability(self) -> str:
        if isinstance(self.examples, ColumnarPool):
            return self.examples.ability
        return self.examples[0].ability if self.examples else (self.spec.ability or
                                                               READERS.get(self.spec.format).default_ability)

    def report(self) -> dict[str, Any]:
        return {
            "path": self.spec.model_dump(mode="json")["path"],
            "hub": self.spec.hub,
            "split": self.spec.split if self.spec.hub or self.folder else None,
            "sha256": self.sha256,
            "format": self.spec.format,
            "ability": self.ability,
            "on_error": self.spec.on_error,
            "records_read": self.records_read,
            "skipped": {"count": self.skipped, "first_reasons": self.skip_reasons},
            "filters": self.filtered,
            "duplicates": {"count": self.duplicates, "dropped": self.duplicates_dropped,
                           "examples": self.duplicate_examples},
            "decontamination": self.decontamination,
            "available": len(self.examples),
        }


def resolve(path: str, base_dir: Path | None) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() or base_dir is None else base_dir / p


def source_sha256(path: Path) -> str:
    """sha256 of a file; for a folder, of the sorted (relative name, sha256) of its files."""
    if path.is_file():
        return file_sha256(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f"{f.relative_to(path).as_posix()}\0{file_sha256(f)}\n".encode())
    return h.hexdigest()


class BadRecordError(DataError):
    """A malformed record under ``on_error: raise``; ``problem`` says where and what.

    The message gives the YAML spelling of the way out; a command-line caller
    re-raises with its flag's spelling (``sftmix data inspect --on-error skip``).
    """

    def __init__(self, problem: str, hint: str = "set 'on_error: skip' on the source to skip "
                                                 "such records") -> None:
        super().__init__(f"{problem} ({hint})")
        self.problem = problem


def load_source(spec: SourceSpec, *, base_dir: Path | None = None) -> LoadedSource:
    """Read, validate, filter and de-duplicate one source (see the module docstring)."""
    with gc_paused():
        return _load(spec, base_dir)


def _load(spec: SourceSpec, base_dir: Path | None) -> LoadedSource:
    if isinstance(spec.path, list):
        return _finish(_load_files(spec, base_dir))
    reader = READERS.get(spec.format)(spec.name, spec.ability)
    if spec.path is not None:
        location: Path | None = resolve(spec.path, base_dir)
        assert location is not None
        sha: str | None = None
        if reader.columnar is not None and location.is_file():
            read = read_table(location)
            if read is not None:
                columnar = _load_columnar(spec, reader, read)
                if columnar is not None:
                    return _finish(columnar)
                sha = read.sha256()  # the file is read the per-record way; its hash is known
        raws = read_raw(location, split=spec.split)
        sha = sha or source_sha256(location)
        shown: str = spec.path
    else:
        assert spec.hub is not None
        raws = read_hub(spec.hub, split=spec.split, subset=spec.subset)
        sha, shown, location = None, f"hub:{spec.hub}", None
    examples, skipped, reasons = _read_all(raws, reader, shown, spec.on_error)
    loaded = LoadedSource(spec, examples, sha, len(raws), skipped, reasons,
                          folder=location is not None and location.is_dir())
    return _finish(loaded)


def _load_files(spec: SourceSpec, base_dir: Path | None) -> LoadedSource:
    """A source of several files: each read with its own format, the records numbered on from
    one file to the next (so that example ids stay unique); its sha256 is that of the files'
    formats and hashes, in order."""
    examples: list[Example] = []
    reasons: list[str] = []
    read = skipped = 0
    digest = hashlib.sha256()
    for path, fmt in spec.files():
        location = resolve(path, base_dir)
        raws = read_raw(location, split=spec.split)
        reader = READERS.get(fmt)(spec.name, spec.ability)
        more, skips, why = _read_all(raws, reader, path, spec.on_error, start=read)
        examples += more
        skipped += skips
        reasons += why[:REASONS_KEPT - len(reasons)]
        read += len(raws)
        digest.update(f"{fmt}\0{source_sha256(location)}\n".encode())
    return LoadedSource(spec, examples, digest.hexdigest(), read, skipped, reasons)


def _finish(loaded: LoadedSource) -> LoadedSource:
    """Filters and duplicates, the steps after reading either way."""
    spec = loaded.spec
    if spec.filters:
        loaded.examples, loaded.filtered = apply_filters(loaded.examples, spec.filters, limit=REASONS_KEPT)
    mark_duplicates(loaded, REASONS_KEPT)
    counts = (loaded.records_read, loaded.skipped, len(loaded.examples))
    # A command reads a source several times (its size for the plan, a tokenizer's texts, a
    # mixture): the same file giving the same counts is said once per process.
    seen = (spec.name, repr(spec.path or spec.hub), loaded.sha256, counts)  # a path may be a list
    log.log(logging.DEBUG if seen in _REPORTED else logging.INFO,
            "source %s: %d read, %d skipped, %d kept", spec.name, *counts)
    _REPORTED.add(seen)
    return loaded


def _load_columnar(spec: SourceSpec, reader: Reader, read: JsonlTable) -> LoadedSource | None:
    """A conversation JSONL file read and checked column-wise, or None to read it record by record.

    Records the columnar checks reject go through the reader one by one, for the
    message the per-record path gives; should the reader accept one of them, the
    whole file is read the per-record way instead (the two paths never disagree).
    """
    layout = reader.columnar
    assert layout is not None and spec.path is not None
    table, body, end = read.table, read.data, read.end
    column = turn_column(table, layout.field, layout.role_key, layout.content_key)
    if column is None:
        return None
    turns = Conversations(column, layout.role_key, layout.content_key, layout.roles)
    ok = turns.valid(assistant_last=reader.training)
    skipped, reasons = 0, []
    bad = np.flatnonzero(~ok).tolist()
    if bad:
        lines = body[:end].split(b"\n")
        for position in bad:
            try:
                reader.read(json.loads(lines[position]), position)
            except RecordError as exc:
                message = _problem(spec.path, RawRecord(None, position + 1), exc)
                if spec.on_error == "raise":
                    raise BadRecordError(message) from None
                skipped += 1
                if len(reasons) < REASONS_KEPT:
                    reasons.append(message)
                continue
            except ValueError:  # json.loads disagrees with pyarrow's parser
                return None
            return None
    orig_ids = table.column("id") if layout.keeps_id and "id" in table.column_names else None
    pool = ColumnarPool(turns, np.flatnonzero(ok), spec.name, reader.ability, orig_ids)
    return LoadedSource(spec, pool, read.sha256(), table.num_rows, skipped, reasons)


def _read_all(raws: list[RawRecord], reader: Any, shown: str, on_error: str, start: int = 0
              ) -> tuple[list[Example], int, list[str]]:
    examples: list[Example] = []
    reasons: list[str] = []
    skipped = 0
    read = reader.read
    for position, raw in enumerate(tqdm(raws, desc=f"reading {shown}", unit="rec", disable=None,
                                        mininterval=1.0, leave=False)):
        try:
            if raw.error is not None:
                raise RecordError("(record)", raw.error)
            examples.append(read(raw.data, start + position))
        except RecordError as exc:
            message = _problem(shown, raw, exc)
            if on_error == "raise":
                raise BadRecordError(message) from None
            skipped += 1
            if len(reasons) < REASONS_KEPT:
                reasons.append(message)
    return examples, skipped, reasons


def _problem(shown: str, raw: RawRecord, exc: RecordError) -> str:
    """'file, line N, field F: what is wrong' for one bad record."""
    loc = where(shown, raw.line, raw.index)
    field = f", field '{exc.field}'" if exc.field != "(record)" else ""
    return f"{loc}{field}: {exc.message}"


__all__ = ["LoadedSource", "content_hash", "load_source", "resolve", "source_sha256"]
