"""Every storage format gives the same records: JSONL, .gz, JSON, Parquet, a datasets folder; the hub fails clearly offline."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sftmix.data.loading import read_raw
from sftmix.data.sources import load_source
from sftmix.data.spec import SourceSpec
from sftmix.errors import DataError


@pytest.fixture(scope="module")
def rows(shared_data: Path) -> list[dict[str, str]]:
    lines = (shared_data / "gsm8k/test.jsonl").read_text().splitlines()[:50]
    return [json.loads(line) for line in lines]


def _ids_and_texts(path: Path) -> list[tuple[str, str]]:
    loaded = load_source(SourceSpec(name="g", path=str(path), format="gsm8k"))
    return [(ex.id, ex.messages[1].content) for ex in loaded.examples]


def test_all_storage_formats_agree(tmp_path: Path, rows: list[dict[str, str]]) -> None:
    import datasets

    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    gz = tmp_path / "a.jsonl.gz"
    gz.write_bytes(gzip.compress(jsonl.read_bytes()))
    as_list = tmp_path / "a.json"
    as_list.write_text(json.dumps(rows, indent=1))
    jsonl_named_json = tmp_path / "lines.json"
    jsonl_named_json.write_text(jsonl.read_text())
    parquet = tmp_path / "a.parquet"
    ds = datasets.Dataset.from_list(rows)
    ds.to_parquet(str(parquet))
    folder = tmp_path / "saved"
    datasets.DatasetDict({"train": ds}).save_to_disk(str(folder))

    expected = _ids_and_texts(jsonl)
    assert len(expected) == 50
    for path in (gz, as_list, jsonl_named_json, parquet, folder):
        assert _ids_and_texts(path) == expected, path


def test_locations_jsonl_lines_json_indexes(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n')
    assert [(r.line, r.index) for r in read_raw(path)] == [(1, None), (3, None)]
    path = tmp_path / "a.json"
    path.write_text('[{"a": 1}, {"a": 2}]')
    assert [(r.line, r.index) for r in read_raw(path)] == [(None, 0), (None, 1)]


def test_file_level_problems(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data file not found"):
        read_raw(tmp_path / "nope.jsonl")
    bad = tmp_path / "broken.json"
    bad.write_text('[{"a": 1},\n {"a": }]')
    with pytest.raises(DataError, match=r"broken.json, line 2, column \d+: not valid JSON"):
        read_raw(bad)
    odd = tmp_path / "data.csv"
    odd.write_text("a,b\n")
    with pytest.raises(DataError, match="unknown file type"):
        read_raw(odd)
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"a": "ok"}\n{"a": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"latin.jsonl, line 2: the file is not UTF-8"):
        read_raw(latin)


def test_missing_split_of_saved_dataset(tmp_path: Path, rows: list[dict[str, str]]) -> None:
    import datasets

    folder = tmp_path / "saved"
    datasets.DatasetDict({"test": datasets.Dataset.from_list(rows[:3])}).save_to_disk(str(folder))
    with pytest.raises(DataError, match="has no split 'train' \\(it has: test\\)"):
        read_raw(folder)
    assert len(read_raw(folder, split="test")) == 3


def test_hub_name_offline_says_how_to_use_a_local_file(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "sftmix", "data", "inspect", "hub:openai/gsm8k", "--format", "gsm8k"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "hub dataset 'openai/gsm8k'" in proc.stderr
    assert "give its location as 'path:'" in proc.stderr


def test_a_source_read_twice_is_reported_once(tmp_path: Path, rows: list[dict[str, str]],
                                               caplog: pytest.LogCaptureFixture) -> None:
    """A command reads a source for its size, a tokenizer and a mixture: one INFO line; a
    changed file is read (and reported) again."""
    import logging

    path = tmp_path / "once.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows[:20]))
    spec = SourceSpec(name="once", path=str(path), format="gsm8k")
    caplog.set_level(logging.INFO, logger="sftmix.data.sources")
    for _ in range(3):
        load_source(spec)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows[:30]))
    load_source(spec)
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO and "source once" in r.getMessage()]
    assert said == ["source once: 20 read, 0 skipped, 20 kept", "source once: 30 read, 0 skipped, 30 kept"]
