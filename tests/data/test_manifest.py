"""Manifest figures read column-wise equal their definitions over the built Examples."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sftmix.data.manifest import ids_sha256
from sftmix.data.sampling import shuffled
from sftmix.data.sequence import ExampleSeq, counts_of
from sftmix.data.sources import load_source
from sftmix.data.spec import SourceSpec


def _by_definition(ids: list[str]) -> str:
    return hashlib.sha256(("\n".join(ids) + "\n" if ids else "").encode()).hexdigest()


@pytest.fixture(scope="module")
def mixed(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> ExampleSeq:
    """A shuffled selection over a columnar pool, a list pool and a nested selection, with repeats."""
    chats = json.loads((shared_data / "general/sharegpt_dpo_chosen.json").read_text(encoding="utf-8"))[:60]
    path = tmp_path_factory.mktemp("chat") / "chat.jsonl"
    path.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in chats), encoding="utf-8")
    columnar = load_source(SourceSpec(name="chat", path=str(path), format="sharegpt")).examples
    listed = load_source(SourceSpec(name="gsm8k", path=str(shared_data / "gsm8k/train.jsonl"),
                                    format="gsm8k")).examples[:40]
    assert not isinstance(listed, ExampleSeq) and type(columnar).__name__ == "ColumnarPool"
    inner = ExampleSeq.concat([ExampleSeq.of(listed).take([3, 1, 3]), ExampleSeq.of(columnar).take([0, 7])])
    parts = [ExampleSeq.of(columnar).take(np.arange(len(columnar))[::2]), ExampleSeq.of(listed),
             inner, ExampleSeq.of(columnar).take([5, 5, 5])]
    seq = ExampleSeq.concat(parts)
    return seq.take(shuffled(len(seq), 11))


def test_ids_sha256_is_the_hash_of_the_id_lines(mixed: ExampleSeq) -> None:
    ids = [ex.id for ex in mixed]
    assert len(set(ids)) < len(ids)  # repeats, from three kinds of part
    assert ids_sha256(mixed) == _by_definition(ids)
    assert ids_sha256(list(mixed)) == _by_definition(ids)
    head = mixed.take(np.arange(7))
    assert ids_sha256(head) == _by_definition(ids[:7])


def test_ids_sha256_of_nothing() -> None:
    empty = ExampleSeq.concat([])
    assert ids_sha256(empty) == ids_sha256([]) == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize("attr", ["source", "ability"])
def test_counts_per_part_equal_counting_examples(mixed: ExampleSeq, attr: str) -> None:
    expected: Counter[Any] = Counter(getattr(ex, attr) for ex in mixed)
    assert len(expected) >= 2 or attr == "ability"
    assert counts_of(mixed, attr) == expected
    assert counts_of(list(mixed), attr) == expected
