"""The manifest written next to every mixture: what went in, how much of it, and proof of identity.

Top-level fields of ``manifest.json`` (keys sorted, no timestamps, paths as
written in the mixture file, so the same inputs and seed give the same bytes):

``format``            manifest format version (1)
``name``              the mixture's name, if given
``seed``, ``shuffle`` as in the mixture file
``spec``, ``spec_hash`` the resolved mixture spec and its hash
``sources``           per source: path/hub, sha256 of the file (of a folder: of its
                      files), format, ability, records read, skipped records (count
                      and first reasons), each filter's drops, exact duplicates
                      (count, dropped, first pairs), decontamination (when
                      configured), records available for sampling
``eval_sets``         per decontamination set: path, format, sha256, records
``entries``           per entry of the mixture, in order: target, amount kind and
                      requested value, available and obtained counts, upsampling
                      factor (obtained / available), seed, sha256 of the ordered
                      ids, tokens and trainable tokens when counted
``mixtures``          the same for every named sub-mixture (replay)
``total``             count, count per ability and per source, tokens and trainable
                      tokens when counted, cross-source exact duplicates, and
                      ``ids_sha256`` -- sha256 of the final ordered ids, one a line
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sftmix.data.records import Example
from sftmix.data.sequence import counts_of, id_array_of

MANIFEST_FORMAT = 1

TokenCounter = Callable[[Example], tuple[int, int]]


def ids_sha256(examples: Sequence[Example]) -> str:
    """sha256 of the ids, each followed by a newline (read without building Examples where possible).

    The lines are made and hashed in Arrow: ``id + "\\n"`` per element, whose UTF-8
    bytes lie end to end in the array's data buffer.
    """
    ids = id_array_of(examples)
    if not len(ids):
        return hashlib.sha256(b"").hexdigest()
    newline, empty = pa.scalar("\n", pa.large_string()), pa.scalar("", pa.large_string())
    lines = pc.binary_join_element_wise(ids, empty, newline)
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)
    start, stop = int(offsets[lines.offset]), int(offsets[lines.offset + len(lines)])
    return hashlib.sha256(memoryview(lines.buffers()[2])[start:stop]).hexdigest()


class TokenTally:
    """Token counts per example id, computed once however often an example is used."""

    def __init__(self, count_tokens: TokenCounter | None) -> None:
        self.count_tokens = count_tokens
        self._cache: dict[str, tuple[int, int]] = {}

    def totals(self, examples: Iterable[Example]) -> dict[str, int]:
        if self.count_tokens is None:
            return {}
        tokens = trainable = 0
        for ex in examples:
            pair = self._cache.get(ex.id)
            if pair is None:
                pair = self._cache[ex.id] = self.count_tokens(ex)
            tokens += pair[0]
            trainable += pair[1]
        return {"tokens": tokens, "trainable_tokens": trainable}


def entry_report(target: str, kind: str, requested: float, available: int, chosen: Sequence[Example],
                 seed: int, tally: TokenTally) -> dict[str, Any]:
    return {
        "target": target,
        "kind": kind,
        "requested": requested,
        "available": available,
        "obtained": len(chosen),
        "upsampling": round(len(chosen) / available, 6) if available else 0.0,
        "seed": seed,
        "ids_sha256": ids_sha256(chosen),
        **tally.totals(chosen),
    }


def total_report(examples: Sequence[Example], tally: TokenTally, cross_source_duplicates: int
                 ) -> dict[str, Any]:
    return {
        "count": len(examples),
        "by_ability": dict(sorted(counts_of(examples, "ability").items())),
        "by_source": dict(sorted(counts_of(examples, "source").items())),
        "cross_source_duplicates": cross_source_duplicates,
        "ids_sha256": ids_sha256(examples),
        **tally.totals(examples),
    }
