"""The one way an artefact is named: a salted hash of everything that determines it.

Every artefact key -- a study's base models, mixtures, stages and evaluations, a
stage trained on its own, a standalone ``sftmix eval`` suite -- is
:func:`artefact_key` of a plain payload that holds what produces the artefact,
resolved (defaults written out). :data:`SALT` is part of every key: it changes
when the meaning of a payload changes (a new default that alters results, a new
field order in a spec), so artefacts built under the old meaning are never
mistaken for new ones.

Input files enter payloads through :func:`path_fingerprint`: a file's sha256,
cached by its path, size and modification time, so that a long-lived process
(``sftmix optimise``'s loop) sees a file that changed without hashing it again
when it did not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sftmix.hashing import config_hash, file_sha256

# Bump when the payload of any artefact changes meaning; every key changes with it.
SALT = "sftmix-artefact-3"

_FILE_HASHES: dict[tuple[str, int, int], str] = {}


def artefact_key(payload: Any) -> str:
    """The key of the artefact that ``payload`` (plain data or pydantic models) determines."""
    return config_hash({"salt": SALT, "of": payload})


def cached_sha256(path: str | Path) -> str:
    """A file's sha256, recomputed only when its size or modification time changed."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    ident = (str(resolved), stat.st_size, stat.st_mtime_ns)
    found = _FILE_HASHES.get(ident)
    if found is None:
        found = _FILE_HASHES[ident] = file_sha256(resolved)
    return found


def source_fingerprint(path: Any) -> str:
    """A source's files: one path's :func:`path_fingerprint`, or for a list of files (each
    with its own format) the hash of each one's, in order."""
    from sftmix.data.spec import source_files

    if isinstance(path, str | Path):
        return path_fingerprint(path)
    return config_hash([path_fingerprint(p) for p, _ in source_files(path, "")])


def path_fingerprint(path: str | Path) -> str:
    """A file's sha256, or for a folder (a Hugging Face dataset folder) the hash of the
    names and sizes of the files under it."""
    p = Path(path)
    if p.is_file():
        return cached_sha256(p)
    listing = sorted((str(x.relative_to(p)), x.stat().st_size if x.is_file() else -1)
                     for x in p.rglob("*"))
    return "dir:" + config_hash(listing)
