"""``sftmix data get``, offline: local copies built here from real rows of ../shared/data.

Nothing is fetched from a hub: every test runs with the hub switched off
(``HF_HUB_OFFLINE``, ``HF_DATASETS_OFFLINE``) and a ``datasets`` cache of its own.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
from pathlib import Path

import pytest

from sftmix.bundled import bundled_dir
from sftmix.cli import main
from sftmix.data.get import MANIFEST
from sftmix.data.sources import load_source
from sftmix.data.spec import SourceSpec
from sftmix.hashing import file_sha256
from sftmix.study.load import load_study

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf" / "datasets"))


def _rows(path: Path, n: int) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(next(fh)) for _ in range(n)]


def hub_like_gsm8k(shared: Path, folder: Path) -> tuple[list[dict], list[dict]]:
    """GSM8K rows laid out as the hub repository is: Parquet files per config and split,
    declared in the README's metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    train, test = _rows(shared / "gsm8k" / "train.jsonl", 40), _rows(shared / "gsm8k" / "test.jsonl", 12)
    (folder / "main").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(train), folder / "main" / "train-00000-of-00001.parquet")
    pq.write_table(pa.Table.from_pylist(test), folder / "main" / "test-00000-of-00001.parquet")
    (folder / "README.md").write_text(
        "---\nconfigs:\n- config_name: main\n  data_files:\n  - split: train\n    path: main/train-*\n"
        "  - split: test\n    path: main/test-*\n---\n", encoding="utf-8")
    return train, test


def manifest(out: Path) -> dict:
    return json.loads((out / MANIFEST).read_text(encoding="utf-8"))


def test_get_from_a_hub_like_folder_reads_back_and_matches_its_manifest(
        tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train, test = hub_like_gsm8k(shared_data, tmp_path / "gsm8k-copy")
    out = tmp_path / "paper"
    assert main(["data", "get", "gsm8k", "--from", str(tmp_path / "gsm8k-copy"), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"gsm8k: train: 40 rows -> {out / 'gsm8k' / 'train.jsonl'}" in printed
    for split, rows in (("train", train), ("test", test)):
        path = out / "gsm8k" / f"{split}.jsonl"
        loaded = load_source(SourceSpec(name="g", path=str(path), format="gsm8k"))
        assert [(e.messages[0].content, e.messages[1].content) for e in loaded.examples] == \
               [(r["question"], r["answer"]) for r in rows]
    entry = manifest(out)["datasets"]["gsm8k"]
    assert entry["source"]["local"] == str((tmp_path / "gsm8k-copy").resolve())
    assert entry["date"] == datetime.datetime.now(datetime.UTC).date().isoformat()
    assert set(entry["files"]) == {"gsm8k/train.jsonl", "gsm8k/test.jsonl"}
    for rel, info in entry["files"].items():
        assert info["sha256"] == file_sha256(out / rel)
        assert info["bytes"] == (out / rel).stat().st_size
        assert info["invalid"] == {"count": 0, "first_reasons": []}
    assert entry["files"]["gsm8k/test.jsonl"]["rows"] == 12
    assert not [p for p in out.rglob("*") if ".partial-" in p.name]
    # Complete and from the same source: kept. A file changed since: fetched again.
    assert main(["data", "get", "gsm8k", "--from", str(tmp_path / "gsm8k-copy"), "-o", str(out)]) == 0
    assert "gsm8k: complete in" in capsys.readouterr().out
    (out / "gsm8k" / "test.jsonl").write_text("{}\n", encoding="utf-8")
    assert main(["data", "get", "gsm8k", "--from", str(tmp_path / "gsm8k-copy"), "-o", str(out)]) == 0
    assert "gsm8k: test: 12 rows" in capsys.readouterr().out
    assert file_sha256(out / "gsm8k" / "test.jsonl") == entry["files"]["gsm8k/test.jsonl"]["sha256"]


def test_get_from_a_file_and_a_saved_dataset_counts_what_the_reader_rejects(
        tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import datasets

    out = tmp_path / "paper"
    # Code Alpaca as one JSON file: two of its records have an empty output.
    code = shared_data / "code" / "code_alpaca_2k.json"
    assert main(["data", "get", "code_alpaca", "--from", str(code), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "code_alpaca: train: 2,017 rows" in printed
    assert "2 record(s) the alpaca reader rejects, kept as published" in printed
    written = out / "code" / "code_alpaca.jsonl"
    assert f"{written}, line 238, field 'output'" in printed  # the final name, not a temporary one
    info = manifest(out)["datasets"]["code_alpaca"]["files"]["code/code_alpaca.jsonl"]
    assert info["invalid"]["count"] == 2 and info["rows"] == 2017
    kept = load_source(SourceSpec(name="c", path=str(written), format="alpaca", on_error="skip"))
    assert len(kept.examples) == 2015
    # ShareGPT conversations saved with save_to_disk: only speaker and text are kept per turn.
    chats = json.loads((shared_data / "general" / "sharegpt_dpo_chosen.json").read_text())[:25]
    datasets.Dataset.from_list(chats).save_to_disk(str(tmp_path / "chats"))
    assert main(["data", "get", "sharegpt", "--from", str(tmp_path / "chats"), "-o", str(out)]) == 0
    general = out / "general" / "sharegpt.jsonl"
    back = [json.loads(line) for line in general.read_text(encoding="utf-8").splitlines()]
    assert back == [{"id": c["id"], "conversations": [{"from": t["from"], "value": t["value"]}
                                                      for t in c["conversations"]]} for c in chats]
    assert len(load_source(SourceSpec(name="s", path=str(general), format="sharegpt")).examples) == 25
    assert set(manifest(out)["datasets"]) == {"code_alpaca", "sharegpt"}


def test_bundled_evaluation_sets_are_copied_byte_for_byte(tmp_path: Path) -> None:
    out = tmp_path / "paper"
    assert main(["data", "get", "humaneval", "mtbench", "-o", str(out)]) == 0
    entries = manifest(out)["datasets"]
    for name, rel in (("humaneval", "eval/humaneval/HumanEval.jsonl"),
                      ("mtbench", "eval/mt_bench/question.jsonl")):
        assert (out / rel).read_bytes() == (bundled_dir() / rel).read_bytes()
        assert entries[name]["files"][rel]["sha256"] == file_sha256(bundled_dir() / rel)
    assert entries["humaneval"]["source"]["origin"] == ["openai/human-eval"]
    assert entries["mtbench"]["files"]["eval/mt_bench/question.jsonl"]["rows"] == 80


def test_a_complete_hub_dataset_is_kept_without_asking_the_hub(
        tmp_path: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sftmix.artifacts import write_json_atomic

    hub_like_gsm8k(shared_data, tmp_path / "copy")
    out = tmp_path / "paper"
    assert main(["data", "get", "gsm8k", "--from", str(tmp_path / "copy"), "-o", str(out)]) == 0
    # As a get from the hub at commit abc would have recorded it.
    recorded = manifest(out)
    recorded["datasets"]["gsm8k"]["source"] = {"hub": "openai/gsm8k", "config": "main",
                                               "data_files": None, "revision": "abc"}
    write_json_atomic(out / MANIFEST, recorded)
    capsys.readouterr()
    assert main(["data", "get", "gsm8k", "-o", str(out)]) == 0  # offline, and nothing to fetch
    assert main(["data", "get", "gsm8k", "--revision", "abc", "-o", str(out)]) == 0
    assert capsys.readouterr().out.count("gsm8k: complete in") == 2
    assert main(["data", "get", "gsm8k", "--revision", "def", "-o", str(out)]) == 2
    assert "could not reach openai/gsm8k" in capsys.readouterr().err
    assert manifest(out) == recorded


def test_offline_hub_says_what_to_do_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "paper"
    assert main(["data", "get", "gsm8k", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "gsm8k: could not reach openai/gsm8k on the Hugging Face hub" in err
    assert "--from" in err and "hf download openai/gsm8k --repo-type dataset" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (out / MANIFEST).exists() and not (out / "gsm8k").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["nope"], "unknown dataset 'nope'; available: code_alpaca, gsm8k, humaneval, mtbench, sharegpt"),
    (["gsm8k", "sharegpt", "--from", "x"], "--from x: names the copy of one dataset, but 2"),
    (["gsm8k", "--from", "missing"], "--from missing: no such file or folder"),
    (["humaneval", "--from", "x"], "humaneval is bundled with sftmix and needs no download"),
])
def test_user_errors(argv: list[str], message: str, tmp_path: Path,
                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "get", *argv, "-o", str(tmp_path / "paper")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "paper").exists()


def test_missing_split_is_an_error(tmp_path: Path, shared_data: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "only").mkdir()
    shutil.copy(shared_data / "gsm8k" / "test.jsonl", tmp_path / "only" / "test.jsonl")
    assert main(["data", "get", "gsm8k", "--from", str(tmp_path / "only"),
                 "-o", str(tmp_path / "paper")]) == 2
    assert "holds the split(s) test; expected train, test" in capsys.readouterr().err
    assert not (tmp_path / "paper" / "gsm8k").exists()


def test_an_interrupted_get_never_looks_complete(tmp_path: Path, shared_data: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    hub_like_gsm8k(shared_data, tmp_path / "copy")
    out = tmp_path / "paper"
    args = ["data", "get", "gsm8k", "--from", str(tmp_path / "copy"), "-o", str(out)]
    assert main(args) == 0
    before = manifest(out)["datasets"]["gsm8k"]
    # Fetch again from another copy, and fail between the two renames.
    shutil.copytree(tmp_path / "copy", tmp_path / "other")
    real_replace, calls = os.replace, []

    def failing_replace(src: str | Path, dst: str | Path) -> None:
        if Path(dst).name != MANIFEST:
            calls.append(dst)
        if str(dst).endswith("test.jsonl"):
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        from sftmix.data.get import get

        get("gsm8k", out, source=tmp_path / "other", say=lambda line: None)
    monkeypatch.undo()
    assert [Path(c).name for c in calls] == ["train.jsonl", "test.jsonl"]
    assert "gsm8k" not in manifest(out)["datasets"]  # its files are half replaced: not complete
    assert not [p for p in out.rglob("*") if ".partial-" in p.name]
    # The next get writes it again, whole.
    assert main([*args[:4], str(tmp_path / "other"), *args[5:]]) == 0
    after = manifest(out)["datasets"]["gsm8k"]
    assert after["files"] == before["files"] and after["source"]["local"].endswith("other")


def test_paper_configs_read_what_get_writes(tmp_path: Path, shared_data: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkout whose data/paper was filled by ``data get`` loads every paper preset unchanged."""
    for name in ("SFTMIX_MATHS_DATA", "SFTMIX_CODE_DATA", "SFTMIX_GENERAL_DATA", "SFTMIX_EVAL_DIR"):
        monkeypatch.delenv(name, raising=False)
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT / "configs" / "paper", checkout / "configs" / "paper")
    monkeypatch.chdir(checkout)
    sources = {"gsm8k": shared_data / "gsm8k",
               "code_alpaca": shared_data / "code" / "code_alpaca_2k.json",
               "sharegpt": shared_data / "general" / "sharegpt_dpo_chosen.json"}
    for name, source in sources.items():
        assert main(["data", "get", name, "--from", str(source)]) == 0
    assert main(["data", "get", "humaneval", "mtbench"]) == 0
    paper = (checkout / "data" / "paper").resolve()
    for preset in sorted((checkout / "configs" / "paper").glob("*.yaml")):
        study = load_study(preset)
        assert Path(study.abilities["maths"].data.path) == paper / "gsm8k" / "train.jsonl"
        assert Path(study.abilities["general"].data.path) == paper / "general" / "sharegpt.jsonl"
        assert Path(study.evaluation["humaneval"]["path"]).resolve() == \
            paper / "eval" / "humaneval" / "HumanEval.jsonl"
