"""A plain JSONL file read into Arrow once: memory map, line check, parse and sha256.

Public API::

    read_table(path: Path) -> JsonlTable | None

The file is memory-mapped; pyarrow's multi-threaded JSON reader parses it from
those pages, :func:`_count_lines` checks its line structure beside the parse,
and its sha256 (for the manifest) is computed beside the caller's scan of the
table -- each on a thread of its own: numpy, pyarrow and hashlib release the
GIL, so on two cores neither waits for the other, and the file is read from
memory, not from disk twice.

:func:`read_table` answers None whenever the file is not the plain case --
not JSONL, blank lines, CR line ends, a line that does not open an object, a
line pyarrow cannot parse, two records on one line -- so that every row is the
record of its line number; the caller then reads the file record by record.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import mmap
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.json as pj

log = logging.getLogger(__name__)

Buffer: TypeAlias = bytes | mmap.mmap
T = TypeVar("T")

# The parsed table -- about the file's size, in large buffers that live as long as the
# mixture -- comes from the C allocator, which maps large buffers directly. pyarrow's
# default (mimalloc) backs them with transparent huge pages, whose first touch is slow on
# virtual machines: 0.8-1.5 s of system time for a first 300 MB build on the 2-core VM
# of docs/benchmarks/data.md, against 0.25-0.5 s this way.
TABLE_MEMORY = pa.system_memory_pool()


@dataclass
class JsonlTable:
    """A parsed JSONL file: the table, the file's bytes (memory-mapped, or decompressed), where its
    records end, and the sha256 of the file as stored -- computed on a background thread while the
    table is scanned (hashlib and pyarrow both release the GIL), read by :meth:`sha256`.
    """

    table: pa.Table
    data: Buffer
    end: int
    digest: Future[str]

    def sha256(self) -> str:
        return self.digest.result()


def read_table(path: Path) -> JsonlTable | None:
    """A plain JSONL file as an Arrow table, or None (see the module docstring).

    The file is read once: memory-mapped, parsed and hashed from the same pages.
    """
    name = path.name.lower()
    if not name.endswith((".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")):
        return None
    try:
        with open(path, "rb") as f:
            stored: Buffer = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if path.stat().st_size else b""
    except (OSError, ValueError):
        return None
    parsed = _parse(path, stored, name.endswith(".gz"))
    if parsed is None:
        return None
    table, data, end = parsed
    # Hashed while the caller scans the table on one thread: the parse had both cores.
    return JsonlTable(table, data, end, _in_background(_sha256, stored))


def _in_background(fn: Callable[..., T], *args: Any) -> Future[T]:
    """``fn(*args)`` on a thread of its own, for work that releases the GIL (hashing, Arrow kernels)."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sftmix-data")
    try:
        return pool.submit(fn, *args)
    finally:
        pool.shutdown(wait=False)  # the thread ends with its one task


def _sha256(data: Buffer) -> str:
    return hashlib.sha256(data).hexdigest()


def _parse(path: Path, stored: Buffer, gz: bool) -> tuple[pa.Table, Buffer, int] | None:
    try:
        data = gzip.decompress(stored) if gz else stored
    except (OSError, EOFError, ValueError, gzip.BadGzipFile):
        return None
    end = len(data)
    while end and data[end - 1] in b" \t\r\n":
        end -= 1
    if not end or data[0] != ord("{"):
        return None
    # The line check runs beside the parse (numpy releases the GIL too); a file it
    # rejects -- rare -- costs one parse for nothing.
    lines = _in_background(_count_lines, data, end)
    try:
        table = pj.read_json(pa.BufferReader(pa.py_buffer(data).slice(0, end)),
                             read_options=pj.ReadOptions(block_size=1 << 24), memory_pool=TABLE_MEMORY)
    except (pa.ArrowException, ValueError) as exc:
        log.debug("%s: the columnar reader declined (%s); reading record by record", path, exc)
        return None
    finally:
        count = lines.result()
    if count is None or table.num_rows != count:
        return None
    return table, data, end


def _count_lines(data: Buffer, end: int) -> int | None:
    """Lines in ``data[:end]`` if every one starts with ``{`` and none holds a CR, else None.

    pyarrow skips blank lines and would accept two objects on one line; either would
    move records off their line numbers. With every line opening an object, the row
    count equal to the line count rules both out; other files take the per-record path.
    """
    if not end or data[0] != ord("{") or data.find(b"\r", 0, end) >= 0:
        return None
    array = np.frombuffer(data, dtype=np.uint8, count=end)
    lines = 1
    step = 1 << 24  # in slices, so the temporaries stay small
    for start in range(0, end, step):
        part = array[start : start + step + 1]  # one byte more: what follows a final newline
        newlines = np.flatnonzero(part[:step] == 10) if start + step < end else np.flatnonzero(part == 10)
        if len(newlines) and (part[newlines + 1] != ord("{")).any():
            return None
        lines += len(newlines)
    return lines
