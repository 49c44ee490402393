"""The lab corpus on disk: each ability's train and test files in ordinary formats.

``write_lab_corpus`` writes, for each ability, a training file in an SFT source
format and a test file in its benchmark's format, so the study's readers,
mixers, trainer and evaluators use them like any other data:

==========  ==========================  ========================================
ability     train (format)              test (format)
==========  ==========================  ========================================
maths       ``maths_train.jsonl`` gsm8k   ``maths_test.jsonl`` gsm8k
code        ``code_train.json`` alpaca    ``code_test.jsonl`` humaneval
general     ``general_train.json``        ``general_test.jsonl`` ifeval
            sharegpt
==========  ==========================  ========================================

The directory is an artefact: built aside and published atomically with a
``COMPLETE.json`` that records the seed, sizes, difficulties and file hashes;
asking again for the same corpus reuses it. ``text_corpus`` yields the
training texts for the lab's BPE tokenizer (``tokenizers``'
``train_from_iterator`` takes it as is).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from sftmix import strict_json
from sftmix.artifacts import building, is_complete, read_marker
from sftmix.errors import ConfigError, SftmixError
from sftmix.hashing import config_hash, file_sha256
from sftmix.lab.generators import code, general, maths
from sftmix.lab.generators.heldout import parse_difficulty
from sftmix.registry import Registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabGenerator:
    """One ability's generator and the formats and file names of its two splits."""

    ability: str
    generate: Callable[..., Iterator[dict[str, Any]]]
    difficulty: type[BaseModel]
    train_format: str
    test_format: str
    train_file: str
    test_file: str


GENERATORS: Registry[LabGenerator] = Registry("lab generator")
for _g in (
    LabGenerator("maths", maths.generate, maths.MathsDifficulty, "gsm8k", "gsm8k",
                 "maths_train.jsonl", "maths_test.jsonl"),
    LabGenerator("code", code.generate, code.CodeDifficulty, "alpaca", "humaneval",
                 "code_train.json", "code_test.jsonl"),
    LabGenerator("general", general.generate, general.GeneralDifficulty, "sharegpt", "ifeval",
                 "general_train.json", "general_test.jsonl"),
):
    GENERATORS.add(_g.ability, _g)

DEFAULT_SIZES = {"maths_train": 4000, "maths_test": 200, "code_train": 4000, "code_test": 164,
                 "general_train": 4000, "general_test": 200}


def _resolve(sizes: Mapping[str, int], difficulty: Mapping[str, Any] | None
             ) -> tuple[dict[str, int], dict[str, dict[str, Any]]]:
    """Validate sizes and difficulties; returns them in plain, hashable form."""
    valid = {f"{a}_{s}" for a in GENERATORS for s in ("train", "test")}
    unknown = sorted(set(sizes) - valid)
    if unknown:
        raise ConfigError(f"lab corpus sizes: unknown entries {unknown}; expected keys among "
                          f"{sorted(valid)}")
    for name, n in sizes.items():
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ConfigError(f"lab corpus sizes, field '{name}': found {n!r}, expected an "
                              "integer >= 0")
    difficulty = dict(difficulty or {})
    unknown = sorted(set(difficulty) - set(GENERATORS))
    if unknown:
        raise ConfigError(f"lab corpus difficulty: unknown abilities {unknown}; expected "
                          f"{', '.join(GENERATORS)}")
    resolved = {}
    for ability in (a for a in GENERATORS if a != "general"):
        value = parse_difficulty(GENERATORS.get(ability).difficulty, difficulty.get(ability), ability)
        resolved[ability] = value.model_dump(mode="json")
    # Maths- and code-flavoured general conversations look like the corpus's own maths
    # and code data unless the general knobs say otherwise.
    general_knobs = dict(difficulty.get("general") or {})
    for other in ("maths", "code"):
        if difficulty.get(other) is not None:
            general_knobs.setdefault(f"specialist_{other}", resolved[other])
    value = parse_difficulty(general.GeneralDifficulty, general_knobs, "general")
    resolved["general"] = value.model_dump(mode="json")
    return {**{k: 0 for k in valid}, **dict(sizes)}, resolved


def _write_records(path: Path, records: Iterator[dict[str, Any]], json_list: bool) -> int:
    count = 0
    with open(path, "w", encoding="utf-8") as f:
        if json_list:
            # A JSON list, one record a line: the usual Alpaca/ShareGPT file, still diffable.
            f.write("[")
            for record in records:
                f.write(("\n" if count == 0 else ",\n") + strict_json.dumps(record, ensure_ascii=False))
                count += 1
            f.write("\n]\n")
        else:
            for record in records:
                f.write(strict_json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
    return count


def write_lab_corpus(out_dir: str | Path, sizes: Mapping[str, int] | None = None, seed: int = 0,
                     difficulty: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """Write the lab corpus into ``out_dir``; returns ``{"maths_train": path, ...}``.

    ``sizes`` maps ``<ability>_<split>`` to a number of records (missing: 0; None: the
    defaults); ``difficulty`` maps an ability to its difficulty knobs. A complete
    ``out_dir`` written with the same settings is reused; one written with other
    settings is an error rather than silently replaced.
    """
    out = Path(out_dir)
    sizes, knobs = _resolve(DEFAULT_SIZES if sizes is None else sizes, difficulty)
    settings = {"seed": seed, "sizes": sizes, "difficulty": knobs}
    key = config_hash(settings)
    paths = {f"{a}_{s}": out / getattr(GENERATORS.get(a), f"{s}_file")
             for a in GENERATORS for s in ("train", "test")}
    if is_complete(out):
        if read_marker(out).get("config_hash") != key:
            raise SftmixError(f"{out}: already holds a lab corpus written with other settings "
                              f"(seed, sizes or difficulty); expected one with {settings}. "
                              "Choose another directory or remove this one.")
        log.info("lab corpus at %s is complete; reusing it", out)
        return paths
    with building(out, marker={"config_hash": key, **settings}) as tmp:
        for ability in GENERATORS:
            g = GENERATORS.get(ability)
            for split in ("train", "test"):
                name = f"{ability}_{split}"
                target = tmp / paths[name].name
                records = g.generate(sizes[name], seed, split, knobs[ability])
                count = _write_records(target, records, json_list=target.suffix == ".json")
                log.info("lab corpus: %d %s records -> %s", count, name, paths[name].name)
        files = {paths[n].name: file_sha256(tmp / paths[n].name) for n in paths}
        (tmp / "manifest.json").write_text(strict_json.dumps(
            {"config_hash": key, **settings, "files": files,
             "formats": {f"{a}_{s}": getattr(GENERATORS.get(a), f"{s}_format")
                         for a in GENERATORS for s in ("train", "test")}},
            indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return paths


def _texts(ability: str, record: dict[str, Any]) -> list[str]:
    if ability == "maths":
        return [record["question"], record["answer"]]
    if ability == "code":
        return [record["instruction"], record["output"]]
    return [turn["value"] for turn in record["conversations"]]


def text_corpus(n_per_ability: int = 2000, seed: int = 0,
                difficulty: Mapping[str, Any] | None = None) -> Iterator[str]:
    """Training texts of every ability, interleaved, for training the lab's BPE tokenizer.

    Only training splits are used: the tokenizer must not be fitted on test items.
    Byte-level BPE still encodes the held-out words of the test split.
    """
    _, knobs = _resolve({}, difficulty)
    def stream(ability: str) -> Iterator[list[str]]:
        for record in GENERATORS.get(ability).generate(n_per_ability, seed, "train", knobs[ability]):
            yield _texts(ability, record)

    for group in zip_longest(*(stream(a) for a in GENERATORS)):
        for texts in group:
            if texts is not None:
                yield from texts
