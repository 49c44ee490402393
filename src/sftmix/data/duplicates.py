"""Exact duplicates: within a source (reported, optionally dropped) and across a mixture's sources.

Two examples are exact duplicates when their roles and whitespace-collapsed
texts are equal (:func:`content_hash`, the same as ``Example.content_hash()``).
Collapsing the whitespace of every turn of every record is the costly part of
loading, so the comparison runs in two steps:

1. a *fingerprint* per record -- per turn, the role and the last
   :data:`~sftmix.data.columnar.EDGE` bytes of its text without whitespace (computed in
   Arrow for a columnar source, by :func:`fingerprint_of` otherwise). Equal
   normalised text implies an equal fingerprint;
2. only records whose fingerprint is shared are hashed exactly, in order.

The result is the one a full pass of exact hashes gives: same counts, same
first pairs, same records dropped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from sftmix.data.columnar import ColumnarPool, tail_bytes
from sftmix.data.records import Example

if TYPE_CHECKING:
    from sftmix.data.sequence import ExampleSeq
    from sftmix.data.sources import LoadedSource

_ROLE_CHAR = {"user": b"u", "assistant": b"a", "system": b"s"}


def content_hash(ex: Example) -> str:
    """``Example.content_hash()`` in one sha256 call: the same bytes, fed at once."""
    parts = []
    for m in ex.messages:
        parts += (m.role, "\x00", " ".join(m.content.split()), "\x01")
    return hashlib.sha256("".join(parts).encode()).hexdigest()


def fingerprint_of(ex: Example) -> bytes:
    """The fingerprint :meth:`Conversations.fingerprint_array` holds, for one Example."""
    return b"".join(b"%s\x02%s\x02\x01" % (_ROLE_CHAR.get(m.role, b"?"), tail_bytes(m.content))
                    for m in ex.messages)


def fingerprints(examples: Sequence[Example], local: np.ndarray | None = None) -> pa.Array:
    """Fingerprints of ``examples`` (at ``local`` if given) as an Arrow string array."""
    if isinstance(examples, ColumnarPool):
        rows = examples.rows if local is None else examples.rows[local]
        return examples.turns.fingerprint_array().take(pa.array(rows))
    chosen = examples if local is None else [examples[i] for i in local.tolist()]
    return pa.array([fingerprint_of(ex) for ex in chosen], pa.binary())


def shared(keys: pa.Array) -> np.ndarray:
    """Positions whose key occurs more than once, in order."""
    codes = keys.dictionary_encode().indices.to_numpy(zero_copy_only=False)
    counts = np.bincount(codes) if len(codes) else np.zeros(0, dtype=np.int64)
    return np.flatnonzero(counts[codes] > 1)


def mark_duplicates(loaded: LoadedSource, limit: int) -> None:
    """Count (and with ``drop_duplicates`` remove) exact duplicates of earlier records of a source."""
    examples = loaded.examples
    seen: dict[str, int] = {}  # content -> position of its first record (ids may repeat too)
    dropped: list[int] = []
    for i in shared(fingerprints(examples)).tolist():
        ex = examples[i]
        first = seen.setdefault(content_hash(ex), i)
        if first == i:
            continue
        loaded.duplicates += 1
        if len(loaded.duplicate_examples) < limit:
            loaded.duplicate_examples.append({"id": ex.id, "duplicate_of": examples[first].id})
        dropped.append(i)
    if not loaded.spec.drop_duplicates or not dropped:
        return
    keep = np.ones(len(examples), dtype=bool)
    keep[dropped] = False
    loaded.duplicates_dropped = len(dropped)
    if isinstance(examples, ColumnarPool):
        loaded.examples = examples.subset(np.flatnonzero(keep))
    else:
        loaded.examples = [ex for ex, k in zip(examples, keep.tolist(), strict=True) if k]


def cross_source_duplicates(examples: ExampleSeq, source_parts: set[int]) -> int:
    """Contents chosen from two or more different sources (only examples taken from loaded sources)."""
    keys, sources, where = [], [], []
    code: dict[str, int] = {}
    for p, part in enumerate(examples.parts):
        if id(part) not in source_parts:
            continue
        positions = np.flatnonzero(examples.part == p)
        if len(positions) == 0:
            continue
        local = examples.local[positions]
        keys.append(fingerprints(part, local))
        if isinstance(part, ColumnarPool):
            sources.append(np.full(len(local), code.setdefault(part.source, len(code)), dtype=np.int64))
        else:
            sources.append(np.array([code.setdefault(part[i].source, len(code)) for i in local.tolist()],
                                    dtype=np.int64))
        where.append(positions)
    if len(code) < 2:
        return 0
    # Fingerprints held by more than one source: among the repeated ones (few), count the
    # distinct (fingerprint, source) pairs.
    encoded = pa.chunked_array(keys, pa.binary()).combine_chunks().dictionary_encode()
    fp = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    repeated = np.flatnonzero(np.bincount(fp, minlength=len(encoded.dictionary))[fp] > 1)
    pairs = np.unique(fp[repeated] * len(code) + np.concatenate(sources)[repeated])
    spread = np.bincount(pairs // len(code), minlength=len(encoded.dictionary))
    candidates = np.concatenate(where)[repeated[spread[fp[repeated]] > 1]]
    if len(candidates) == 0:
        return 0
    first_source: dict[str, str] = {}
    cross: set[str] = set()
    for pos in np.sort(candidates).tolist():
        ex = examples[pos]
        h = content_hash(ex)
        if first_source.setdefault(h, ex.source) != ex.source:
            cross.add(h)
    return len(cross)
