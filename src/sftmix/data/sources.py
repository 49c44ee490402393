"""Load one source: read, validate, filter, find duplicates -- and report each step.

Public API::

    load_source(spec: SourceSpec, *, base_dir: Path | None = None) -> LoadedSource

``LoadedSource.examples`` are the records that survived validation (with
``on_error: skip``), the source's filters and, if ``drop_duplicates``, the
removal of exact duplicates. ``LoadedSource.report()`` is the source's part of
a manifest: path as written, sha256 of the file, reader, counts at each step
and the first reasons of every skip and drop.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from sftmix.data.filters import apply_filters
from sftmix.data.formats import READERS
from sftmix.data.loading import RawRecord, gc_paused, read_hub, read_raw
from sftmix.data.records import Example
from sftmix.data.spec import SourceSpec
from sftmix.data.validate import RecordError
from sftmix.errors import DataError, where
from sftmix.hashing import file_sha256

log = logging.getLogger(__name__)

REASONS_KEPT = 5  # first reasons per kind of problem kept in the report


@dataclass
class LoadedSource:
    spec: SourceSpec
    examples: list[Example]
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
    hash_of: dict[str, str] = field(default_factory=dict)  # id -> content hash

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def ability(self) -> str:
        return self.examples[0].ability if self.examples else (self.spec.ability or
                                                               READERS.get(self.spec.format).default_ability)

    def report(self) -> dict[str, Any]:
        return {
            "path": self.spec.path,
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


def load_source(spec: SourceSpec, *, base_dir: Path | None = None) -> LoadedSource:
    """Read, validate, filter and de-duplicate one source (see the module docstring)."""
    with gc_paused():
        return _load(spec, base_dir)


def _load(spec: SourceSpec, base_dir: Path | None) -> LoadedSource:
    reader = READERS.get(spec.format)(spec.name, spec.ability)
    if spec.path is not None:
        location: Path | None = resolve(spec.path, base_dir)
        raws = read_raw(location, split=spec.split)
        sha = source_sha256(location)
        shown: str = spec.path
    else:
        assert spec.hub is not None
        raws = read_hub(spec.hub, split=spec.split, subset=spec.subset)
        sha, shown, location = None, f"hub:{spec.hub}", None
    examples, skipped, reasons = _read_all(raws, reader, shown, spec.on_error)
    loaded = LoadedSource(spec, examples, sha, len(raws), skipped, reasons,
                          folder=location is not None and location.is_dir())
    if spec.filters:
        loaded.examples, loaded.filtered = apply_filters(loaded.examples, spec.filters, limit=REASONS_KEPT)
    _mark_duplicates(loaded)
    log.info("source %s: %d read, %d skipped, %d kept", spec.name, len(raws), skipped, len(loaded.examples))
    return loaded


def _read_all(raws: list[RawRecord], reader: Any, shown: str, on_error: str
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
            examples.append(read(raw.data, position))
        except RecordError as exc:
            loc = where(shown, raw.line, raw.index)
            field = f", field '{exc.field}'" if exc.field != "(record)" else ""
            message = f"{loc}{field}: {exc.message}"
            if on_error == "raise":
                raise DataError(f"{message} (set 'on_error: skip' on the source to skip such records)") from None
            skipped += 1
            if len(reasons) < REASONS_KEPT:
                reasons.append(message)
    return examples, skipped, reasons


def content_hash(ex: Example) -> str:
    """``Example.content_hash()`` in one sha256 call: the same bytes, fed at once (the hot path)."""
    parts = []
    for m in ex.messages:
        parts += (m.role, "\x00", " ".join(m.content.split()), "\x01")
    return hashlib.sha256("".join(parts).encode()).hexdigest()


def _mark_duplicates(loaded: LoadedSource) -> None:
    seen: dict[str, str] = {}
    kept: list[Example] = []
    for ex in loaded.examples:
        h = loaded.hash_of[ex.id] = content_hash(ex)
        first = seen.get(h)
        if first is None:
            seen[h] = ex.id
            kept.append(ex)
            continue
        loaded.duplicates += 1
        if len(loaded.duplicate_examples) < REASONS_KEPT:
            loaded.duplicate_examples.append({"id": ex.id, "duplicate_of": first})
        if not loaded.spec.drop_duplicates:
            kept.append(ex)
    loaded.duplicates_dropped = len(loaded.examples) - len(kept)
    loaded.examples = kept
