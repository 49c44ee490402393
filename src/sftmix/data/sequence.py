"""A mixture's examples as index arrays over their pools, built into Examples only on access.

Sampling, concatenating and shuffling a mixture move integers, never records:
an :class:`ExampleSeq` is a list of *parts* (a source's pool -- a plain list
of Examples or a :class:`~sftmix.data.columnar.ColumnarPool` -- a sub-mixture,
a written mixture) and, per element, which part and which index in it. What
the manifest needs -- ids, sources, abilities -- is read per part at once; an
:class:`~sftmix.data.records.Example` is made when the element is read
(writing the mixture, counting tokens, training).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, overload

import numpy as np
import pyarrow as pa

from sftmix.data.columnar import ColumnarPool
from sftmix.data.records import Example


class ExampleSeq(Sequence[Example]):
    """An ordered selection of examples from several parts (see the module docstring)."""

    def __init__(self, parts: list[Sequence[Example]], part: np.ndarray, local: np.ndarray) -> None:
        self.parts = parts
        self.part = part
        self.local = local

    @classmethod
    def of(cls, examples: Sequence[Example]) -> ExampleSeq:
        if isinstance(examples, ExampleSeq):
            return examples
        n = len(examples)
        return cls([examples], np.zeros(n, dtype=np.int32), np.arange(n, dtype=np.int64))

    @classmethod
    def concat(cls, seqs: Sequence[ExampleSeq]) -> ExampleSeq:
        parts: list[Sequence[Example]] = []
        numbers: dict[int, int] = {}
        part_arrays, local_arrays = [], []
        for seq in seqs:
            remap = np.empty(len(seq.parts), dtype=np.int32)
            for i, p in enumerate(seq.parts):
                if id(p) not in numbers:
                    numbers[id(p)] = len(parts)
                    parts.append(p)
                remap[i] = numbers[id(p)]
            part_arrays.append(remap[seq.part] if len(seq.part) else seq.part)
            local_arrays.append(seq.local)
        if not seqs:
            return cls([], np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64))
        return cls(parts, np.concatenate(part_arrays), np.concatenate(local_arrays))

    def take(self, index: Sequence[int] | np.ndarray) -> ExampleSeq:
        idx = np.asarray(index, dtype=np.int64)
        return ExampleSeq(self.parts, self.part[idx], self.local[idx])

    def __len__(self) -> int:
        return len(self.local)

    @overload
    def __getitem__(self, i: int) -> Example: ...
    @overload
    def __getitem__(self, i: slice) -> list[Example]: ...
    def __getitem__(self, i: int | slice) -> Example | list[Example]:
        if isinstance(i, slice):
            return [self.parts[p][loc] for p, loc in zip(self.part[i].tolist(), self.local[i].tolist(),
                                                         strict=True)]
        return self.parts[int(self.part[i])][int(self.local[i])]

    def __iter__(self) -> Iterator[Example]:
        parts = self.parts
        for p, loc in zip(self.part.tolist(), self.local.tolist(), strict=True):
            yield parts[p][loc]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # mutable-looking sequence, like list

    def _per_part(self, fn: Any) -> list[Any]:
        """``fn(part, local_indices) -> list`` evaluated per part, reassembled in order."""
        if len(self.parts) == 1:
            return list(fn(self.parts[0], self.local))
        out = np.empty(len(self), dtype=object)
        for p, part in enumerate(self.parts):
            mask = self.part == p
            if mask.any():
                out[mask] = fn(part, self.local[mask])
        return out.tolist()

    def ids(self) -> list[str]:
        return self._per_part(_ids)

    def id_array(self) -> pa.Array:
        """The ids in order as an Arrow ``large_string`` array (columnar parts make no Python strings)."""
        if len(self.parts) == 1:
            return _id_array(self.parts[0], self.local)
        pieces, where = [], []
        for p, part in enumerate(self.parts):
            positions = np.flatnonzero(self.part == p)
            if len(positions):
                pieces.append(_id_array(part, self.local[positions]))
                where.append(positions)
        if not pieces:
            return pa.array([], pa.large_string())
        order = np.empty(len(self), dtype=np.int64)  # element i is piece row order[i]
        order[np.concatenate(where)] = np.arange(len(self), dtype=np.int64)
        return pa.concat_arrays(pieces).take(pa.array(order))

    def counts(self, attr: str) -> Counter[Any]:
        """How many elements have each value of ``source`` or ``ability``."""
        out: Counter[Any] = Counter()
        sizes = np.bincount(self.part, minlength=len(self.parts))
        for p, part in enumerate(self.parts):
            if not sizes[p]:
                continue
            if isinstance(part, ColumnarPool):
                out[getattr(part, attr)] += int(sizes[p])
            else:
                local = self.local if len(self.parts) == 1 else self.local[self.part == p]
                out.update(_column(part, local, attr))
        return out

    def json_lines(self) -> Iterator[str]:
        """Every element as ``Example.to_json()`` would write it, without building columnar ones."""
        for p, loc in zip(self.part.tolist(), self.local.tolist(), strict=True):
            part = self.parts[p]
            if isinstance(part, ColumnarPool):
                yield part.json_line(int(part.rows[loc]))
            else:
                yield part[loc].to_json()

    def column(self, attr: str) -> list[Any]:
        """``source`` or ``ability`` of every element."""
        return self._per_part(lambda part, local: _column(part, local, attr))


def _ids(part: Sequence[Example], local: np.ndarray) -> list[str]:
    if isinstance(part, ColumnarPool):
        return part.ids(local)
    if isinstance(part, ExampleSeq):
        return part.take(local).ids()
    return [part[i].id for i in local.tolist()]


def _id_array(part: Sequence[Example], local: np.ndarray) -> pa.Array:
    if isinstance(part, ColumnarPool):
        return part.id_array(local)
    if isinstance(part, ExampleSeq):
        return part.take(local).id_array()
    return pa.array([part[i].id for i in local.tolist()], pa.large_string())


def _column(part: Sequence[Example], local: np.ndarray, attr: str) -> list[Any]:
    if isinstance(part, ColumnarPool):
        return [getattr(part, attr)] * len(local)
    if isinstance(part, ExampleSeq):
        return part.take(local).column(attr)
    return [getattr(part[i], attr) for i in local.tolist()]


def ids_of(examples: Sequence[Example]) -> list[str]:
    """The ids in order, without building Examples where the sequence can avoid it."""
    if isinstance(examples, ExampleSeq):
        return examples.ids()
    if isinstance(examples, ColumnarPool):
        return examples.ids()
    return [ex.id for ex in examples]


def id_array_of(examples: Sequence[Example]) -> pa.Array:
    """:func:`ids_of` as an Arrow ``large_string`` array."""
    if isinstance(examples, ExampleSeq | ColumnarPool):
        return ExampleSeq.of(examples).id_array()
    return pa.array([ex.id for ex in examples], pa.large_string())


def json_lines(examples: Sequence[Example]) -> Iterator[str]:
    """``ex.to_json()`` of every example, in order (see :meth:`ExampleSeq.json_lines`)."""
    if isinstance(examples, ExampleSeq | ColumnarPool):
        return ExampleSeq.of(examples).json_lines()
    return (ex.to_json() for ex in examples)


def column_of(examples: Sequence[Example], attr: str) -> list[Any]:
    if isinstance(examples, ExampleSeq | ColumnarPool):
        return ExampleSeq.of(examples).column(attr)
    return [getattr(ex, attr) for ex in examples]


def counts_of(examples: Sequence[Example], attr: str) -> Counter[Any]:
    """``Counter(column_of(examples, attr))``, counted per part where the sequence allows."""
    if isinstance(examples, ExampleSeq | ColumnarPool):
        return ExampleSeq.of(examples).counts(attr)
    return Counter(getattr(ex, attr) for ex in examples)
