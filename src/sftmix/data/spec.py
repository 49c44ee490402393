"""The mixture file: sources, entries, seed -- typed and checked with file/line/field errors.

A mixture YAML (see docs/data.md for a full guide)::

    seed: 0
    shuffle: true
    sources:
      - {name: gsm8k, path: data/gsm8k/train.jsonl, format: gsm8k}          # ability: maths
      - {name: code, path: data/code_alpaca.json, format: alpaca, ability: code}
      - {name: sharegpt, path: data/sharegpt.json, format: sharegpt, filters: [no_code_math]}
      - name: chat                 # several files read as one source, in order
        format: alpaca             # each file's format unless the file names its own
        path: [data/alpaca.json, {path: data/chat.jsonl, format: messages}]
    mixtures:                      # named sub-mixtures, for replay
      specialist:
        entries: [{source: gsm8k}, {source: code}]
    entries:
      - {source: sharegpt}                       # fraction 1 by default
      - {mixture: specialist, fraction: 1/256}   # DMT replay: k of the specialist mixture

Amounts: ``fraction`` (a number or a quoted fraction such as ``"1/64"``; > 1
upsamples), ``count`` (an absolute number of records; more than the source has
upsamples) or ``proportion`` (a target share of the mixture's total: either
every entry of a list has one or none does; the shares are normalised, and the
total is ``total:`` or, if that is not given, the largest total for which no
source is upsampled). An entry without an amount takes fraction 1.

Relative ``path`` and ``mixture_dir`` values resolve against the YAML file's
folder; the manifest records them as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from sftmix.config import Amount, Problems, Source, StrictModel, read_yaml, validate

NAME = r"^[A-Za-z0-9_.-]+$"


def name_for_file(location: str) -> str:
    """A valid source name from a file's name (``data/gsm8k/train.jsonl`` -> ``train``).

    The name prefixes the ids of the source's examples and labels it in logs.
    """
    stem = Path(location.removeprefix("hub:")).name.split(".")[0]
    return re.sub(r"[^A-Za-z0-9_.-]", "_", stem) or "source"


class SourceFile(StrictModel):
    """One of the files of a source that reads several, with its own format if it differs."""

    path: str
    format: str | None = None


# Where a source's records live: a file or folder, or several files read in order as one
# source (an ability whose data is spread over files of different formats).
SourcePath = str | list[str | SourceFile]


def source_files(path: SourcePath | None, fmt: str) -> list[tuple[str, str]]:
    """(path, format) of each local file a source reads, in order; none for a hub dataset."""
    if path is None:
        return []
    if isinstance(path, str):
        return [(path, fmt)]
    return [(f, fmt) if isinstance(f, str) else (f.path, f.format or fmt) for f in path]


def declared_formats(path: SourcePath | None, fmt: str) -> list[tuple[tuple[Any, ...], str]]:
    """Each format a source names, with its field location under the source: its ``format``,
    then those its files name for themselves."""
    named: list[tuple[tuple[Any, ...], str]] = [(("format",), fmt)]
    if isinstance(path, list):
        named += [(("path", j, "format"), f.format) for j, f in enumerate(path)
                  if isinstance(f, SourceFile) and f.format is not None]
    return named


def map_source_paths(path: SourcePath, fn: Callable[[str], str]) -> SourcePath:
    """``path`` with the path of each of its files replaced by ``fn(path)``."""
    if isinstance(path, str):
        return fn(path)
    return [fn(f) if isinstance(f, str) else f.model_copy(update={"path": fn(f.path)}) for f in path]


class SourceSpec(StrictModel):
    """One dataset: where it lives, how to read it, what ability it trains."""

    name: str = Field(pattern=NAME)
    path: SourcePath | None = None
    hub: str | None = None
    subset: str | None = None
    split: str = "train"
    format: str
    ability: str | None = None
    on_error: Literal["raise", "skip"] = "raise"
    filters: list[str] = Field(default_factory=list)
    drop_duplicates: bool = False

    @model_validator(mode="after")
    def _one_location(self) -> SourceSpec:
        if (self.path is None) == (self.hub is None):
            raise ValueError("give exactly one of 'path' (a local file or folder) or 'hub' (a dataset name)")
        if self.path == []:
            raise ValueError("'path' is an empty list; give a file, or a list of one or more files")
        return self

    def files(self) -> list[tuple[str, str]]:
        """(path, format) of each local file the source reads, in order."""
        return source_files(self.path, self.format)


class EntrySpec(StrictModel):
    """One part of a mixture: a source, a named sub-mixture or a written mixture folder, at an amount."""

    source: str | None = None
    mixture: str | None = None
    mixture_dir: str | None = None
    fraction: Amount | None = None
    count: int | None = Field(default=None, ge=0)
    proportion: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_of_each(self) -> EntrySpec:
        if sum(x is not None for x in (self.source, self.mixture, self.mixture_dir)) != 1:
            raise ValueError("give exactly one of 'source', 'mixture' or 'mixture_dir'")
        if sum(x is not None for x in (self.fraction, self.count, self.proportion)) > 1:
            raise ValueError("give at most one of 'fraction', 'count' or 'proportion'")
        return self

    @property
    def target(self) -> str:
        if self.source is not None:
            return self.source
        return f"mixture:{self.mixture}" if self.mixture is not None else f"mixture_dir:{self.mixture_dir}"

    def amount(self) -> tuple[str, float]:
        """(kind, value) with kind in fraction / count / proportion; no amount means fraction 1."""
        if self.count is not None:
            return "count", self.count
        if self.proportion is not None:
            return "proportion", self.proportion
        return "fraction", 1.0 if self.fraction is None else self.fraction


class SubMixtureSpec(StrictModel):
    """A named mixture of the same sources (e.g. DMT's specialist data), usable as an entry."""

    entries: list[EntrySpec] = Field(min_length=1)
    shuffle: bool = True
    total: int | None = Field(default=None, gt=0)


class EvalSetSpec(StrictModel):
    path: str
    format: str


class DecontaminationSpec(StrictModel):
    """n-gram overlap of every source with evaluation sets; reported, and optionally dropped."""

    eval_sets: list[EvalSetSpec] = Field(min_length=1)
    n: int = Field(default=13, ge=1)
    drop: bool = False


class MixtureSpec(StrictModel):
    name: str | None = Field(default=None, pattern=NAME)
    seed: int = 0
    shuffle: bool = True
    total: int | None = Field(default=None, gt=0)
    sources: list[SourceSpec] = Field(default_factory=list)
    mixtures: dict[str, SubMixtureSpec] = Field(default_factory=dict)
    entries: list[EntrySpec] = Field(min_length=1)
    decontamination: DecontaminationSpec | None = None

    def source(self, name: str) -> SourceSpec:
        return next(s for s in self.sources if s.name == name)


def check_mixture(spec: MixtureSpec) -> list[tuple[tuple[Any, ...], str]]:
    """Cross-field problems as (field location, message): names, references, proportions, cycles."""
    from sftmix.data.filters import FILTERS
    from sftmix.data.formats import READERS

    problems: list[tuple[tuple[Any, ...], str]] = []
    names = [s.name for s in spec.sources]
    for i, s in enumerate(spec.sources):
        if names.count(s.name) > 1:
            problems.append((("sources", i, "name"), f"source name {s.name!r} is used twice"))
        for loc, fmt in declared_formats(s.path, s.format):
            if fmt not in READERS:
                problems.append((("sources", i, *loc),
                                 f"unknown data format {fmt!r}; available: {', '.join(READERS.names())}"))
        for j, f in enumerate(s.filters):
            if f not in FILTERS:
                problems.append((("sources", i, "filters", j),
                                 f"unknown filter {f!r}; available: {', '.join(FILTERS.names())}"))
    if spec.decontamination:
        for i, e in enumerate(spec.decontamination.eval_sets):
            if e.format not in READERS:
                problems.append((("decontamination", "eval_sets", i, "format"),
                                 f"unknown data format {e.format!r}; available: {', '.join(READERS.names())}"))
    lists: list[tuple[tuple[Any, ...], list[EntrySpec]]] = [(("entries",), spec.entries)]
    lists += [(("mixtures", n, "entries"), m.entries) for n, m in spec.mixtures.items()]
    for loc, entries in lists:
        with_prop = [e.proportion is not None for e in entries]
        if any(with_prop) and not all(with_prop):
            problems.append((loc, "either every entry of this list has a 'proportion' or none does"))
        for i, e in enumerate(entries):
            if e.source is not None and e.source not in names:
                problems.append(((*loc, i, "source"),
                                 f"unknown source {e.source!r}; defined: {', '.join(names) or 'none'}"))
            if e.mixture is not None and e.mixture not in spec.mixtures:
                problems.append(((*loc, i, "mixture"), f"unknown mixture {e.mixture!r}; defined under "
                                 f"'mixtures': {', '.join(spec.mixtures) or 'none'}"))
    for name in spec.mixtures:
        if _reaches(spec, name, name, set()):
            problems.append((("mixtures", name), f"mixture {name!r} includes itself"))
    return problems


def _reaches(spec: MixtureSpec, start: str, target: str, seen: set[str]) -> bool:
    for e in spec.mixtures[start].entries:
        if e.mixture == target:
            return True
        if e.mixture in spec.mixtures and e.mixture not in seen:
            seen.add(e.mixture)
            if _reaches(spec, e.mixture, target, seen):
                return True
    return False


def raise_problems(problems: list[tuple[tuple[Any, ...], str]], source: Source | str) -> None:
    found = Problems(source)
    for loc, msg in problems:
        found.add(loc, msg)
    found.raise_if_any()


def missing_files(spec: MixtureSpec, base_dir: Path) -> list[tuple[tuple[Any, ...], str]]:
    """Local paths the mixture reads that do not exist, as (field location, message)."""
    def absent(value: str) -> bool:
        return not (Path(value) if Path(value).is_absolute() else base_dir / value).exists()

    problems: list[tuple[tuple[Any, ...], str]] = []
    for i, s in enumerate(spec.sources):
        for j, (path, _) in enumerate(s.files()):
            if absent(path):
                loc = ("sources", i, "path") + ((j,) if isinstance(s.path, list) else ())
                problems.append((loc, f"data file not found: {path} "
                                 "(relative paths start at the mixture file's folder)"))
    if spec.decontamination:
        for i, e in enumerate(spec.decontamination.eval_sets):
            if absent(e.path):
                problems.append((("decontamination", "eval_sets", i, "path"),
                                 f"evaluation file not found: {e.path}"))
    lists: list[tuple[tuple[Any, ...], list[EntrySpec]]] = [(("entries",), spec.entries)]
    lists += [(("mixtures", n, "entries"), m.entries) for n, m in spec.mixtures.items()]
    for loc, entries in lists:
        for i, e in enumerate(entries):
            if e.mixture_dir is not None and absent(e.mixture_dir):
                problems.append(((*loc, i, "mixture_dir"), f"mixture folder not found: {e.mixture_dir}"))
    return problems


def load_mixture_spec(path: str | Path) -> MixtureSpec:
    """Read and check a mixture YAML; every problem names the file, the line and the field."""
    data, source = read_yaml(path)
    spec = validate(MixtureSpec, data, source)
    base_dir = Path(path).resolve().parent
    raise_problems(check_mixture(spec) + missing_files(spec, base_dir), source)
    return spec
