"""Build, write and read mixtures.

Public API::

    build_mixture(spec: MixtureSpec, *, base_dir: Path | None = None,
                  count_tokens: Callable[[Example], tuple[int, int]] | None = None) -> Mixture
    write_mixture(mixture: Mixture, out_dir: Path) -> Path
    read_mixture(directory: Path) -> list[Example]

How a mixture is built:

1. every source an entry uses is loaded once (:func:`~sftmix.data.sources.load_source`:
   read, validate, filter, duplicates), then checked against the decontamination
   eval sets if the mixture has any;
2. each entry takes :func:`~sftmix.data.sampling.nested_indices` of its source
   with a seed derived from the mixture seed and the *source name* only -- so
   the same source at different amounts, in any mixture with that seed, is
   nested (RQ1's 1/256 lies inside RQ2's 1/64);
3. a ``mixture:`` entry (DMT replay) builds the named sub-mixture exactly as a
   standalone mixture with the same entries and seed would be built (stage 1's
   data), then takes a nested fraction k of it, seeded by the sub-mixture's name;
4. the parts are concatenated in entry order and, if ``shuffle``, permuted with
   a seed derived from the mixture seed.

``count_tokens(example) -> (tokens, trainable_tokens)`` comes from the training
side (it knows the tokenizer and chat template); when given, the manifest
records the totals per entry and overall.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from sftmix import strict_json
from sftmix.artifacts import building, is_complete
from sftmix.data.decontam import NgramIndex, decontaminate
from sftmix.data.duplicates import cross_source_duplicates
from sftmix.data.loading import gc_paused
from sftmix.data.manifest import MANIFEST_FORMAT, TokenTally, entry_report, ids_sha256, total_report
from sftmix.data.records import Example
from sftmix.data.sampling import derive_seed, nested_indices, proportional_counts, shuffled
from sftmix.data.sequence import ExampleSeq, json_lines
from sftmix.data.sources import LoadedSource, load_source, resolve, source_sha256
from sftmix.data.spec import EntrySpec, MixtureSpec, SourceSpec, check_mixture, raise_problems
from sftmix.errors import DataError, SftmixError, json_problem
from sftmix.hashing import config_hash

log = logging.getLogger(__name__)

DATA_FILE = "data.jsonl"
MANIFEST_FILE = "manifest.json"


@dataclass
class Mixture:
    """The examples in order (built into Examples as they are read) and the manifest."""

    examples: Sequence[Example]
    manifest: dict[str, Any]


class _Builder:
    def __init__(self, spec: MixtureSpec, base_dir: Path | None,
                 count_tokens: Callable[[Example], tuple[int, int]] | None) -> None:
        self.spec = spec
        self.base_dir = base_dir
        self.tally = TokenTally(count_tokens)
        self.loaded: dict[str, LoadedSource] = {}
        self.sub: dict[str, tuple[ExampleSeq, dict[str, Any]]] = {}
        self.eval_sets: list[dict[str, Any]] = []
        self.index: NgramIndex | None = None
        self.dirs: dict[str, dict[str, Any]] = {}

    def pool(self, name: str) -> Sequence[Example]:
        if name not in self.loaded:
            loaded = load_source(self.spec.source(name), base_dir=self.base_dir)
            if self.index is not None:
                assert self.spec.decontamination is not None
                loaded.examples, report = decontaminate(loaded.examples, self.index,
                                                        drop=self.spec.decontamination.drop)
                loaded.decontamination = report
            self.loaded[name] = loaded
        return self.loaded[name].examples

    def load_eval_sets(self) -> None:
        deco = self.spec.decontamination
        if deco is None:
            return
        examples: list[Example] = []
        for es in deco.eval_sets:
            # Named by format, so that a report reads "gsm8k:632" or "humaneval:HumanEval/96".
            loaded = load_source(SourceSpec(name=es.format, path=es.path, format=es.format),
                                 base_dir=self.base_dir)
            examples += loaded.examples
            self.eval_sets.append({"path": es.path, "format": es.format, "sha256": loaded.sha256,
                                   "records": len(loaded.examples)})
        self.index = NgramIndex.from_examples(examples, deco.n)

    def entries(self, entries: list[EntrySpec], shuffle: bool, total: int | None
                ) -> tuple[ExampleSeq, list[dict[str, Any]]]:
        pools = [self.entry_pool(e) for e in entries]
        amounts = [e.amount() for e in entries]
        if amounts and amounts[0][0] == "proportion":
            counts = proportional_counts([len(p) for p in pools], [a[1] for a in amounts], total)
            amounts = [("count", c) for c in counts]
        parts: list[ExampleSeq] = []
        reports = []
        for entry, pool, (kind, value) in zip(entries, pools, amounts, strict=True):
            seed = derive_seed(self.spec.seed, *self.seed_parts(entry))
            idx = nested_indices(len(pool), value, seed, kind="count" if kind == "count" else "fraction")
            chosen = ExampleSeq.of(pool).take(idx)
            requested_kind, requested = entry.amount()
            reports.append(entry_report(entry.target, requested_kind, requested, len(pool), chosen,
                                        seed, self.tally))
            parts.append(chosen)
        out = ExampleSeq.concat(parts)
        if shuffle:
            out = out.take(shuffled(len(out), derive_seed(self.spec.seed, "shuffle")))
        return out, reports

    def seed_parts(self, entry: EntrySpec) -> tuple[str, ...]:
        if entry.source is not None:
            return ("source", entry.source)
        if entry.mixture is not None:
            return ("mixture", entry.mixture)
        # A written mixture is seeded by its content, not by where it lies: the same
        # replay from the same data must sample alike in any study directory.
        folder = resolve(str(entry.mixture_dir), self.base_dir)
        return ("mixture_dir", source_sha256(folder / DATA_FILE))

    def entry_pool(self, entry: EntrySpec) -> Sequence[Example]:
        if entry.source is not None:
            return self.pool(entry.source)
        if entry.mixture is not None:
            return self.submixture(entry.mixture)
        assert entry.mixture_dir is not None
        folder = resolve(entry.mixture_dir, self.base_dir)
        examples = read_mixture(folder)
        self.dirs[entry.mixture_dir] = {"sha256": source_sha256(folder / DATA_FILE),
                                        "count": len(examples)}
        return examples

    def submixture(self, name: str) -> ExampleSeq:
        if name not in self.sub:
            sub = self.spec.mixtures[name]
            examples, reports = self.entries(sub.entries, sub.shuffle, sub.total)
            self.sub[name] = (examples, {"entries": reports, "count": len(examples),
                                         "ids_sha256": ids_sha256(examples)})
        return self.sub[name][0]


def build_mixture(spec: MixtureSpec, *, base_dir: Path | None = None,
                  count_tokens: Callable[[Example], tuple[int, int]] | None = None) -> Mixture:
    """Build the mixture a spec describes (see the module docstring); nothing is written."""
    raise_problems(check_mixture(spec), "mixture spec")
    b = _Builder(spec, base_dir, count_tokens)
    with gc_paused():
        b.load_eval_sets()
        examples, reports = b.entries(spec.entries, spec.shuffle, spec.total)

    cross = cross_source_duplicates(examples, {id(loaded.examples) for loaded in b.loaded.values()})
    manifest = {
        "format": MANIFEST_FORMAT,
        "name": spec.name,
        "seed": spec.seed,
        "shuffle": spec.shuffle,
        "spec": spec.model_dump(mode="json"),
        "spec_hash": config_hash(spec),
        "sources": {name: b.loaded[name].report() for name in sorted(b.loaded)},
        "eval_sets": b.eval_sets,
        "mixtures": {name: b.sub[name][1] for name in sorted(b.sub)},
        "mixture_dirs": dict(sorted(b.dirs.items())),
        "entries": reports,
        "total": total_report(examples, b.tally, cross),
    }
    log.info("mixture: %d examples from %d sources", len(examples), len(b.loaded))
    return Mixture(examples, manifest)


def write_mixture(mixture: Mixture, out_dir: Path) -> Path:
    """Write ``data.jsonl`` and ``manifest.json`` into ``out_dir`` atomically; returns ``out_dir``.

    A folder that already holds the same complete mixture is left as it is; one
    holding anything else is an error (nothing is overwritten).
    """
    out_dir = Path(out_dir)
    manifest_text = strict_json.dumps(mixture.manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if out_dir.exists():
        if is_complete(out_dir) and (out_dir / MANIFEST_FILE).is_file():
            if (out_dir / MANIFEST_FILE).read_text(encoding="utf-8") == manifest_text:
                log.info("%s already holds this mixture", out_dir)
                return out_dir
            raise SftmixError(f"{out_dir}: holds a different mixture; choose another output folder "
                              "or delete this one")
        if not out_dir.is_dir() or any(out_dir.iterdir()):
            raise SftmixError(f"{out_dir}: exists and is not a mixture folder; choose another output "
                              "folder (nothing was written)")
    with building(out_dir, {"kind": "mixture", "count": len(mixture.examples)}) as tmp:
        with open(tmp / DATA_FILE, "w", encoding="utf-8") as f:
            for line in tqdm(json_lines(mixture.examples), desc="writing", unit="ex", disable=None,
                             total=len(mixture.examples), mininterval=1.0, leave=False):
                f.write(line)
                f.write("\n")
        (tmp / MANIFEST_FILE).write_text(manifest_text, encoding="utf-8")
    return out_dir


def read_mixture(directory: str | Path) -> list[Example]:
    """The examples of a written mixture, in order."""
    directory = Path(directory)
    data = directory / DATA_FILE
    if not is_complete(directory) or not data.is_file():
        raise DataError(f"{directory}: not a complete mixture folder (expected {DATA_FILE} and a "
                        "completion marker, as written by 'sftmix data mix')")
    out = []
    with gc_paused(), open(data, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            try:
                out.append(Example.from_dict(json.loads(line)))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                problem = json_problem(exc) if isinstance(exc, json.JSONDecodeError) else repr(exc)
                raise DataError(f"{data}, line {number}: not a mixture record ({problem})") from None
    return out
