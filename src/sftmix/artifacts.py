"""Artefact directories: built under a temporary name, published atomically.

Every artefact a study produces (a mixture, a stage checkpoint, an evaluation)
lives in a directory named by the hash of what produced it. It is built in a
sibling temporary directory and renamed into place only once everything inside
is written and flushed, with a ``COMPLETE.json`` marker written last inside the
temporary directory. Hence:

* a directory at its final name with ``COMPLETE.json`` is complete and is never
  recomputed;
* anything else (``*.partial-*`` siblings, a final directory without the marker
  from a foreign tool) is incomplete and safe to delete.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sftmix import strict_json
from sftmix.errors import ConfigError
from sftmix.faults import PUBLISH_POINTS, crashpoint

MARKER = "COMPLETE.json"
PARTIAL = ".partial-"


def check_output_dir(path: Path, option: str) -> None:
    """A command's output folder can be made at ``path``: checked before any work starts.

    ``path`` and every ancestor that exists must be a folder, and the nearest one that
    exists writable, so that a run cannot do all its work and only then fail to write it.
    """
    for existing in (path, *path.parents):
        if existing.exists():
            if not existing.is_dir():
                ancestor = "" if existing == path else f" ({existing} is a file)"
                raise ConfigError(f"{option} {path}: not a folder{ancestor}; expected a folder to "
                                  "write into, or a path that does not exist yet")
            _check_writable(existing, path, option)
            return


def check_output_file(path: Path, option: str) -> None:
    """A command's output file can be written at ``path``: checked before any work starts."""
    if path.is_dir():
        raise ConfigError(f"{option} {path}: a folder; expected the name of a file to write")
    for existing in path.parents:
        if existing.exists():
            if not existing.is_dir():
                raise ConfigError(f"{option} {path}: cannot be written ({existing} is a file, not a "
                                  "folder); expected a file name in a folder")
            _check_writable(existing, path, option)
            return


def _check_writable(folder: Path, path: Path, option: str) -> None:
    """Create and remove a file in ``folder``: permissions, a read-only mount or a
    pseudo-filesystem (/proc, /sys, where even root creates nothing) all answer the same way."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".sftmix-write-test-")
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot write in {folder} ({exc.strerror}); expected a "
                          "path in a folder this user can write to") from None
    os.close(fd)
    os.unlink(probe)


def is_complete(path: str | Path) -> bool:
    return (Path(path) / MARKER).is_file()


def read_marker(path: str | Path) -> dict[str, Any]:
    return json.loads((Path(path) / MARKER).read_text())


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write a file so that readers see either the old or the new content, never a half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}{PARTIAL}{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_json_atomic(path: str | Path, obj: Any) -> None:
    write_text_atomic(path, strict_json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def clean_partials(parent: str | Path) -> list[Path]:
    """Delete leftovers of interrupted builds under ``parent``; returns what was removed."""
    removed = []
    parent = Path(parent)
    if parent.is_dir():
        for child in parent.iterdir():
            if PARTIAL in child.name:
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
                removed.append(child)
    return removed


@contextlib.contextmanager
def building(final: str | Path, marker: dict[str, Any] | None = None) -> Iterator[Path]:
    """Yield a temporary directory to fill; on success publish it at ``final``.

    On an exception the temporary directory is removed and ``final`` is untouched.
    If ``final`` exists but is incomplete it is replaced.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{final.name}{PARTIAL}{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
        for root, _dirs, files in os.walk(tmp):
            for name in files:
                with contextlib.suppress(OSError):
                    fd = os.open(os.path.join(root, name), os.O_RDONLY)
                    os.fsync(fd)
                    os.close(fd)
        info = {"completed_at": time.time(), **(marker or {})}
        point = PUBLISH_POINTS.get(str(info.get("kind")))
        if point is not None:
            crashpoint(point)
        write_json_atomic(tmp / MARKER, info)
        if final.exists():
            if is_complete(final):
                # Someone else finished the same artefact first; theirs is as good as ours.
                shutil.rmtree(tmp)
                return
            shutil.rmtree(final)
        os.replace(tmp, final)
        fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
