"""The columnar path for conversation files: parse, validate and fingerprint in Arrow.

A JSONL file of conversations (``sharegpt``, ``messages``) is parsed by
pyarrow's multi-threaded JSON reader and checked column-wise: every record has
a non-empty list of turn objects, every role is known, every content holds a
non-whitespace character, and the roles follow the one allowed pattern --
an optional leading system turn, then user, assistant, user, ... ending with
the assistant. That pattern is exactly what :func:`~sftmix.data.validate.check_turns`
accepts, so a record that passes here would pass the per-record reader too.
Records that fail any check are handed back by position; the caller runs the
per-record reader on them for its precise file/line/field message, so the
errors are the ones the per-record path gives.

:func:`~sftmix.data.arrow_jsonl.read_table` answers None whenever the file is not the plain case --
not JSONL, blank lines, CR line ends, a line that does not open an object, a
line pyarrow cannot parse -- and :func:`turn_column` when the schema is not
the expected one (a number where a string should be, a mixed id type); the
caller then reads the file the per-record way. Reading the file
is :mod:`sftmix.data.arrow_jsonl`'s part.

Records become :class:`~sftmix.data.records.Example` objects only when asked
for (:class:`ColumnarPool`): a mixture that takes every record still never
builds them until they are written.

Exact duplicates need the whitespace-collapsed text of every turn, the costly
part per record. Instead a *fingerprint* is computed in Arrow: per turn the
role and the last :data:`EDGE` bytes of the text with all whitespace removed.
Records with equal normalised text have equal fingerprints, so only records
that share a fingerprint with another are compared exactly
(:mod:`sftmix.data.duplicates`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sftmix.data.records import Example, Message

log = logging.getLogger(__name__)

# The string encoder json.dumps(..., ensure_ascii=False) uses: the same bytes as Example.to_json.
_encode_string = json.encoder.encode_basestring  # type: ignore[attr-defined]


ROLE_NAMES = ("user", "assistant", "system")  # role codes 0, 1, 2
USER, ASSISTANT, SYSTEM = 0, 1, 2
EDGE = 16  # bytes of non-whitespace text kept from the end of each turn in its fingerprint
_WINDOW = 2 * EDGE  # bytes at the end of a turn looked at to find them
_COMMON_SPACE = (" ", "\n")
# Python's str.split()/strip() whitespace (str.isspace over all code points) beyond those two, as
# UTF-8 byte sequences: pyarrow matches a pattern on binary data byte by byte (Latin-1).
_OTHER_SPACE_BYTES = "|".join([  # regex escapes, which RE2 reads as bytes on binary data
    r"[\t\r\x0b\x0c\x1c-\x1f]", r"\xc2[\x85\xa0]", r"\xe1\x9a\x80", r"\xe2\x80[\x80-\x8a\xa8\xa9\xaf]",
    r"\xe2\x81\x9f", r"\xe3\x80\x80",
])
_ROLE_CHARS = pa.array([b"u", b"a", b"s", b"?"], pa.binary())  # role codes in fingerprints; "?" unknown
_ID_TYPES = (pa.string(), pa.large_string(), pa.int64(), pa.bool_(), pa.null())


def _is_text(t: pa.DataType) -> bool:
    return t == pa.string()  # what pyarrow's JSON reader infers for text


def turn_column(table: pa.Table, field: str, role_key: str, content_key: str) -> pa.ChunkedArray | None:
    """The conversation column if it has the expected shape (a list of turn objects with text fields).

    It stays in the parser's chunks: joining them would copy every text once more.
    """
    if field not in table.column_names:
        return None
    column = table.column(field)
    t = column.type
    if not pa.types.is_list(t) or not pa.types.is_struct(t.value_type):
        return None
    item = t.value_type
    names = [item.field(i).name for i in range(item.num_fields)]
    if role_key not in names or content_key not in names:
        return None
    if not _is_text(item.field(role_key).type) or not _is_text(item.field(content_key).type):
        return None
    if "id" in table.column_names and table.schema.field("id").type not in _ID_TYPES:
        return None
    return column


@dataclass
class _Chunk:
    """What one parser chunk contributes: per record and per turn arrays."""

    lengths: np.ndarray  # turns per record
    list_valid: np.ndarray
    roles: np.ndarray  # role code per turn, -1 unknown
    turn_ok: np.ndarray  # a turn object with a known role and some non-whitespace text
    content: pa.Array
    fingerprints: pa.Array  # per record


def _scan(chunk: pa.ListArray, role_key: str, content_key: str, names: list[str],
          code_of: np.ndarray) -> _Chunk:
    lengths = np.diff(chunk.offsets.to_numpy()).astype(np.int64)
    turns = chunk.flatten()
    content = turns.field(content_key)
    index = pc.index_in(turns.field(role_key), value_set=pa.array(names)).fill_null(len(names))
    roles = code_of[index.to_numpy(zero_copy_only=False)]
    tail, has_text = _tail(content)
    turn_ok = (roles >= 0) & ~turns.is_null().to_numpy(zero_copy_only=False) & has_text
    role = _ROLE_CHARS.take(pa.array(np.where(roles < 0, 3, roles)))
    turn = pc.binary_join_element_wise(role, tail, pa.scalar(b"\x01"), pa.scalar(b"\x02"))
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    fingerprints = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), turn), pa.scalar(b""))
    return _Chunk(lengths, ~chunk.is_null().to_numpy(zero_copy_only=False), roles, turn_ok, content,
                  fingerprints)


class Conversations:
    """The turns of every record, column-wise: role codes, contents, list offsets, fingerprints."""

    def __init__(self, column: pa.ChunkedArray, role_key: str, content_key: str,
                 roles: Mapping[str, str]) -> None:
        self.n = len(column)
        names = list(roles)
        code_of = np.array([ROLE_NAMES.index(roles[k]) for k in names] + [-1], dtype=np.int8)
        # Chunk by chunk, as the parser made them: joining them first would copy every text.
        scans = [_scan(c, role_key, content_key, names, code_of) for c in column.chunks]
        if not scans:
            scans = [_scan(pa.array([], column.type), role_key, content_key, names, code_of)]
        self.lengths = np.concatenate([c.lengths for c in scans])
        self.offsets = np.zeros(self.n + 1, dtype=np.int64)
        np.cumsum(self.lengths, out=self.offsets[1:])
        self.list_valid = np.concatenate([c.list_valid for c in scans])
        self.roles = np.concatenate([c.roles for c in scans])
        self.turn_ok = np.concatenate([c.turn_ok for c in scans])
        self.content = pa.chunked_array([c.content for c in scans], pa.string())
        self._fingerprints = pa.chunked_array([c.fingerprints for c in scans], pa.binary()).combine_chunks()
        self.parent = np.repeat(np.arange(self.n), self.lengths)
        self._texts: list[str] | None = None
        self._role_names: list[str] | None = None
        self._ids: tuple[str, np.ndarray] | None = None

    def valid(self, *, assistant_last: bool = True) -> np.ndarray:
        """Per record: passes every check of the per-record reader (see the module docstring)."""
        starts = self.offsets[:-1]
        nonempty = self.lengths > 0
        first = np.where(nonempty, self.roles[np.minimum(starts, max(len(self.roles) - 1, 0))]
                         if len(self.roles) else -1, -1)
        skip = (first == SYSTEM).astype(np.int64)  # a leading system turn
        pos = np.arange(len(self.roles)) - starts[self.parent]
        s = skip[self.parent]
        expected = np.where(pos < s, SYSTEM, (pos - s) % 2)
        bad_turn = ~self.turn_ok | (self.roles != expected)
        bad = np.bincount(self.parent[bad_turn], minlength=self.n) > 0
        rest = self.lengths - skip  # turns after the system turn
        ends_ok = (rest >= 2) & (rest % 2 == 0) if assistant_last else rest >= 1
        return self.list_valid & nonempty & ~bad & ends_ok

    def ids(self, source: str) -> np.ndarray:
        """``<source>:<position>`` of every record (an object array, made once)."""
        if self._ids is None or self._ids[0] != source:
            prefix = f"{source}:"
            self._ids = (source, np.array([prefix + str(p) for p in range(self.n)], dtype=object))
        return self._ids[1]

    def texts(self) -> list[str]:
        """Every content as a Python string, converted once for all records."""
        if self._texts is None:
            self._texts = self.content.to_pylist()
        return self._texts

    def role_names(self) -> list[str]:
        """Every turn's role name, converted once for all records."""
        if self._role_names is None:
            self._role_names = [ROLE_NAMES[r] for r in self.roles.tolist()]
        return self._role_names

    def turn_range(self, record: int) -> tuple[int, int]:
        return int(self.offsets[record]), int(self.offsets[record + 1])

    def messages(self, record: int) -> tuple[Message, ...]:
        start, end = self.turn_range(record)
        return tuple(map(Message, self.role_names()[start:end], self.texts()[start:end]))

    def fingerprint_array(self) -> pa.Array:
        """Per record, the role and the last EDGE bytes of text without whitespace of each turn."""
        return self._fingerprints


def _tail(content: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Per string: the last EDGE bytes of its UTF-8 with all whitespace removed (a binary
    array), and whether it holds any non-whitespace character (False for a null).

    Works on the last _WINDOW bytes only (slicing bytes is free, slicing characters
    is not): spaces and newlines are removed from that window; where any other
    whitespace (tabs, no-break spaces, ...) is in it, or it holds too few other
    bytes -- fewer than EDGE, plus 3 for a character the window may have cut at its
    start -- the string is done in Python. So the result equals
    ``"".join(text.split()).encode()[-EDGE:]`` for every string. Any other string
    keeps a non-whitespace byte in its window, or is all spaces and newlines (then
    the window is the whole string and nothing is left of it): the window also
    answers whether the string has text, without a pass over the whole string.
    """
    raw = content.view(pa.binary())
    window = pc.binary_slice(raw, -_WINDOW)
    squeezed = window
    for ch in _COMMON_SPACE:
        squeezed = pc.replace_substring(squeezed, ch, "")
    edge = pc.binary_slice(squeezed, -EDGE)
    kept = pc.binary_length(squeezed)
    short = pc.and_(pc.less(kept, EDGE + 3), pc.greater(pc.binary_length(raw), _WINDOW))
    redo = pc.or_(short, pc.match_substring_regex(window, _OTHER_SPACE_BYTES)).fill_null(False)
    has_text = pc.greater(kept, 0).fill_null(False).to_numpy(zero_copy_only=False)
    where = np.flatnonzero(redo.to_numpy(zero_copy_only=False))
    if len(where) == 0:
        return edge, has_text
    squeezed_texts = ["".join((text or "").split()) for text in content.take(pa.array(where)).to_pylist()]
    has_text[where] = [bool(text) for text in squeezed_texts]
    exact = pa.array([text.encode()[-EDGE:] for text in squeezed_texts], pa.binary())
    return pc.replace_with_mask(edge, redo, exact), has_text


def tail_bytes(text: str) -> bytes:
    """What :func:`_tail` computes, for one string."""
    return "".join(text.split()).encode()[-EDGE:]


class ColumnarPool(Sequence[Example]):
    """The valid records of a columnar source, as a sequence of Examples built on access.

    ``rows`` are positions in the file (0-based over every record, as in the ids).
    ``orig_ids``, the file's own ids, may be an Arrow column: it becomes a list
    when a record is first built or written, not at load time.
    """

    def __init__(self, turns: Conversations, rows: np.ndarray, source: str, ability: str,
                 orig_ids: list[Any] | pa.ChunkedArray | pa.Array | None) -> None:
        self.turns = turns
        self.rows = rows
        self.source = source
        self.ability = ability
        self._orig_ids = orig_ids

    @property
    def orig_ids(self) -> list[Any] | None:
        if self._orig_ids is not None and not isinstance(self._orig_ids, list):
            self._orig_ids = self._orig_ids.to_pylist()
        return self._orig_ids

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, i: int) -> Example: ...
    @overload
    def __getitem__(self, i: slice) -> list[Example]: ...
    def __getitem__(self, i: int | slice) -> Example | list[Example]:
        if isinstance(i, slice):
            return [self.example(int(p)) for p in self.rows[i]]
        return self.example(int(self.rows[i]))

    def __iter__(self) -> Iterator[Example]:
        for p in self.rows.tolist():
            yield self.example(p)

    def example(self, position: int) -> Example:
        meta: dict[str, Any] = {}
        if self.orig_ids is not None:
            orig = self.orig_ids[position]
            if isinstance(orig, str | int):
                meta["orig_id"] = orig
        meta["index"] = position
        return Example(f"{self.source}:{position}", self.ability, self.source,
                       self.turns.messages(position), meta)

    def json_line(self, position: int) -> str:
        """``self.example(position).to_json()``, written without building the Example."""
        enc = _encode_string
        start, end = self.turns.turn_range(position)
        roles, texts = self.turns.role_names(), self.turns.texts()
        messages = ", ".join(f'{{"content": {enc(texts[j])}, "role": "{roles[j]}"}}' for j in range(start, end))
        orig = self.orig_ids[position] if self.orig_ids is not None else None
        if type(orig) is str:
            meta = f'{{"index": {position}, "orig_id": {enc(orig)}}}'
        elif isinstance(orig, int):
            meta = json.dumps({"index": position, "orig_id": orig}, sort_keys=True, ensure_ascii=False)
        else:
            meta = f'{{"index": {position}}}'
        return (f'{{"ability": {enc(self.ability)}, "id": {enc(f"{self.source}:{position}")}, '
                f'"messages": [{messages}], "metadata": {meta}, "source": {enc(self.source)}}}')

    def subset(self, keep: np.ndarray) -> ColumnarPool:
        """The pool restricted to the records at ``keep`` (indices into this pool)."""
        return ColumnarPool(self.turns, self.rows[keep], self.source, self.ability, self._orig_ids)

    def ids(self, index: np.ndarray | None = None) -> list[str]:
        rows = self.rows if index is None else self.rows[index]
        return self.turns.ids(self.source)[rows].tolist()

    def id_array(self, index: np.ndarray | None = None) -> pa.Array:
        """:meth:`ids` as an Arrow ``large_string`` array, made without Python strings."""
        rows = self.rows if index is None else self.rows[index]
        positions = pc.cast(pa.array(rows, pa.int64()), pa.large_string())
        prefix = pa.scalar(f"{self.source}:", pa.large_string())
        return pc.binary_join_element_wise(prefix, positions, pa.scalar("", pa.large_string()))
