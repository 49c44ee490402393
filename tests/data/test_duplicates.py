"""Exact duplicates across sources: the fingerprint pre-filter finds what comparing every hash finds."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from sftmix.data.duplicates import content_hash
from sftmix.data.mixing import build_mixture
from sftmix.data.spec import MixtureSpec


def _respaced(chat: dict[str, Any]) -> dict[str, Any]:
    """The same content with other whitespace: still an exact duplicate after normalisation."""
    turns = [{**t, "value": "  " + t["value"].replace(" ", " \n\t ", 2) + "\u3000"} for t in chat["conversations"]]
    return {**chat, "conversations": turns}


def test_cross_source_duplicates_equal_brute_force(shared_data: Path, tmp_path: Path) -> None:
    chats = json.loads((shared_data / "general/sharegpt_dpo_chosen.json").read_text(encoding="utf-8"))[:90]
    a = tmp_path / "a.jsonl"  # columnar
    a.write_text("".join(json.dumps(c) + "\n" for c in chats[:50]), encoding="utf-8")
    b = tmp_path / "b.json"  # read record by record
    b.write_text(json.dumps(chats[40:70] + [_respaced(c) for c in chats[:4]]), encoding="utf-8")
    c = tmp_path / "c.jsonl"
    c.write_text("".join(json.dumps(x) + "\n" for x in chats[65:90] + chats[2:6] + chats[2:3]), encoding="utf-8")
    spec = MixtureSpec.model_validate({
        "seed": 5,
        "sources": [{"name": n, "path": str(p), "format": "sharegpt"} for n, p in (("a", a), ("b", b), ("c", c))],
        "entries": [{"source": "a", "fraction": 1.5}, {"source": "b", "fraction": 0.8}, {"source": "c"}],
    })
    mixture = build_mixture(spec)
    holders: dict[str, set[str]] = defaultdict(set)
    for ex in mixture.examples:
        holders[content_hash(ex)].add(ex.source)
    expected = sum(len(s) > 1 for s in holders.values())
    assert expected >= 5
    assert mixture.manifest["total"]["cross_source_duplicates"] == expected
    assert mixture.manifest["sources"]["c"]["duplicates"]["count"] == 1


def _three_copies(path: Path, record: dict[str, Any]) -> Path:
    path.write_text((json.dumps(record) + "\n") * 3, encoding="utf-8")
    return path


def test_identical_records_count_alike_whatever_their_ids(shared_data: Path, tmp_path: Path) -> None:
    """Three copies of one record are two duplicates, whether the format repeats the id
    (HumanEval's task_id) or derives one per line (GSM8K)."""
    from sftmix.data.sources import load_source
    from sftmix.data.spec import SourceSpec

    humaneval = json.loads((shared_data / "eval/humaneval/HumanEval.jsonl").read_text().splitlines()[0])
    gsm8k = json.loads((shared_data / "gsm8k/train.jsonl").read_text().splitlines()[0])
    counts = {}
    for fmt, record in (("humaneval", humaneval), ("gsm8k", gsm8k)):
        path = _three_copies(tmp_path / f"{fmt}.jsonl", record)
        loaded = load_source(SourceSpec(name=fmt, path=str(path), format=fmt, drop_duplicates=True))
        counts[fmt] = (loaded.duplicates, loaded.duplicates_dropped, len(loaded.examples))
        first = loaded.duplicate_examples[0]
        assert first["duplicate_of"] == loaded.examples[0].id
    assert counts == {"humaneval": (2, 2, 1), "gsm8k": (2, 2, 1)}
