"""Mixtures of real sources: reproducible bytes, nesting across mixtures, DMT replay, proportions, manifest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from sftmix.data.mixing import build_mixture, read_mixture, write_mixture
from sftmix.data.records import Example
from sftmix.data.sources import load_source
from sftmix.data.spec import MixtureSpec, SourceSpec
from sftmix.errors import ConfigError, SftmixError


def sources(d: Path) -> list[dict[str, Any]]:
    return [
        {"name": "gsm8k", "path": str(d / "gsm8k/train.jsonl"), "format": "gsm8k"},
        {"name": "code", "path": str(d / "code/code_alpaca_2k.json"), "format": "alpaca",
         "ability": "code", "on_error": "skip"},
        {"name": "general", "path": str(d / "general/sharegpt_dpo_chosen.json"), "format": "sharegpt"},
    ]


def spec(d: Path, entries: list[dict[str, Any]], **extra: Any) -> MixtureSpec:
    return MixtureSpec.model_validate({"seed": 3, "sources": sources(d), "entries": entries, **extra})


def read_source(path: Path) -> list[Example]:
    return load_source(SourceSpec(name="chat", path=str(path), format="sharegpt")).examples


def ids(examples: list[Example], source: str | None = None) -> list[str]:
    return [ex.id for ex in examples if source is None or ex.source == source]


def test_same_inputs_and_seed_give_identical_bytes(shared_data: Path, tmp_path: Path) -> None:
    s = spec(shared_data, [{"source": "gsm8k", "fraction": "1/64"}, {"source": "code", "fraction": 0.5},
                           {"source": "general", "count": 50}])
    a = write_mixture(build_mixture(s), tmp_path / "a")
    b = write_mixture(build_mixture(s), tmp_path / "b")
    for name in ("data.jsonl", "manifest.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    other = build_mixture(s.model_copy(update={"seed": 4}))
    assert ids(other.examples) != ids(read_mixture(a))
    assert len(other.examples) == 117 + 1008 + 50


def test_subsets_are_nested_across_mixtures(shared_data: Path) -> None:
    # RQ1 (maths alone at 1/64) and RQ2 (all three at 1/16) share the seed: the former lies inside.
    alone = build_mixture(spec(shared_data, [{"source": "gsm8k", "fraction": "1/64"}]))
    mixed = build_mixture(spec(shared_data, [{"source": s, "fraction": "1/16"}
                                             for s in ("gsm8k", "code", "general")]))
    assert len(alone.examples) == 117
    assert set(ids(alone.examples)) < set(ids(mixed.examples, "gsm8k"))
    assert len(ids(mixed.examples, "gsm8k")) == 467
    assert len(ids(mixed.examples, "general")) == 19


def test_dmt_replay_is_the_stage_one_data_and_nested_in_k(shared_data: Path, tmp_path: Path) -> None:
    specialist = [{"source": "gsm8k"}, {"source": "code"}]
    stage1 = build_mixture(spec(shared_data, specialist))
    replays = {}
    for k in ("1/256", "1/64", "1/4"):
        m = build_mixture(spec(shared_data, [{"source": "general"}, {"mixture": "specialist", "fraction": k}],
                               mixtures={"specialist": {"entries": specialist}}))
        assert m.manifest["mixtures"]["specialist"]["ids_sha256"] == stage1.manifest["total"]["ids_sha256"]
        replays[k] = {i for i in ids(m.examples) if not i.startswith("general:")}
        assert len(ids(m.examples, "general")) == 300
    assert len(replays["1/256"]) == 37  # round(9488 / 256)
    assert replays["1/256"] < replays["1/64"] < replays["1/4"]
    assert replays["1/4"] <= set(ids(stage1.examples))

    # Replaying a written stage-1 folder works the same way, nested in k as well.
    write_mixture(stage1, tmp_path / "stage1")
    from_dir = [
        set(ids(build_mixture(spec(shared_data, [{"mixture_dir": "stage1", "fraction": k}]),
                              base_dir=tmp_path).examples))
        for k in ("1/256", "1/64")
    ]
    assert len(from_dir[0]) == 37 and from_dir[0] < from_dir[1]

    # A written mixture is sampled by its content: the same folder elsewhere gives the same replay.
    shutil.copytree(tmp_path / "stage1", tmp_path / "elsewhere" / "other-name")
    moved = build_mixture(spec(shared_data, [{"mixture_dir": "elsewhere/other-name", "fraction": "1/256"}]),
                          base_dir=tmp_path)
    assert set(ids(moved.examples)) == from_dir[0]


def test_equal_proportions_and_equal_counts(shared_data: Path) -> None:
    prop = build_mixture(spec(shared_data, [{"source": "gsm8k", "proportion": 1},
                                            {"source": "general", "proportion": 1}]))
    # No total: the largest that needs no upsampling -- 300 of each.
    assert prop.manifest["total"]["by_source"] == {"general": 300, "gsm8k": 300}
    weighted = build_mixture(spec(shared_data, [{"source": "gsm8k", "proportion": 3},
                                                {"source": "general", "proportion": 1}], total=1000))
    assert weighted.manifest["total"]["by_source"] == {"general": 250, "gsm8k": 750}
    entry = weighted.manifest["entries"][0]
    assert (entry["kind"], entry["requested"], entry["obtained"]) == ("proportion", 3, 750)
    counts = build_mixture(spec(shared_data, [{"source": "gsm8k", "count": 400}, {"source": "general", "count": 400}]))
    general = counts.manifest["entries"][1]
    assert (general["available"], general["obtained"], general["upsampling"]) == (300, 400, 1.333333)
    # Upsampling: every general record once, 100 of them twice.
    tally = [ids(counts.examples, "general").count(i) for i in set(ids(counts.examples, "general"))]
    assert sorted(tally) == [1] * 200 + [2] * 100


def test_manifest_records_sources_duplicates_and_tokens(shared_data: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(shared_data / "general/sharegpt_dpo_chosen.json", data / "chat.json")
    yaml_dir_spec = MixtureSpec.model_validate({
        "seed": 0,
        "sources": [{"name": "chat", "path": "data/chat.json", "format": "sharegpt", "drop_duplicates": True}],
        "entries": [{"source": "chat", "fraction": 0.5}],
    })

    def count_tokens(ex: Example) -> tuple[int, int]:
        words = [len(m.content.split()) for m in ex.messages]
        trainable = sum(w for w, m in zip(words, ex.messages, strict=True) if m.role == "assistant")
        return sum(words), trainable

    m = build_mixture(yaml_dir_spec, base_dir=tmp_path, count_tokens=count_tokens)
    src = m.manifest["sources"]["chat"]
    assert src["path"] == "data/chat.json"  # as written, no temporary absolute path
    assert src["sha256"].startswith("cb45839d80646a86")
    assert src["duplicates"]["count"] == 5 and src["duplicates"]["dropped"] == 5
    first = src["duplicates"]["examples"][0]
    assert {"id", "duplicate_of"} == set(first)
    by_id = {ex.id: ex for ex in read_source(tmp_path / "data/chat.json")}
    assert by_id[first["id"]].content_hash() == by_id[first["duplicate_of"]].content_hash()
    assert src["available"] == 295
    total = m.manifest["total"]
    assert total["count"] == 148  # 147.5 rounds up
    assert total["tokens"] == sum(count_tokens(ex)[0] for ex in m.examples)
    assert 0 < total["trainable_tokens"] < total["tokens"]
    assert m.manifest["entries"][0]["tokens"] == total["tokens"]
    assert str(tmp_path) not in json.dumps(m.manifest)


def test_write_refuses_foreign_folder_and_reads_back(shared_data: Path, tmp_path: Path) -> None:
    m = build_mixture(spec(shared_data, [{"source": "general", "count": 10}]))
    out = write_mixture(m, tmp_path / "mix")
    assert ids(read_mixture(out)) == ids(m.examples)
    assert read_mixture(out)[0] == m.examples[0]
    assert write_mixture(m, out) == out  # same mixture: nothing to do
    other = build_mixture(spec(shared_data, [{"source": "general", "count": 11}]))
    with pytest.raises(SftmixError, match="holds a different mixture"):
        write_mixture(other, out)
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(SftmixError, match="exists and is not a mixture folder"):
        write_mixture(m, foreign)
    assert (foreign / "notes.txt").read_text() == "mine"


def test_cross_field_problems_are_config_errors(shared_data: Path) -> None:
    with pytest.raises(ConfigError, match=r"field 'entries\[0\].source': unknown source 'maths'"):
        build_mixture(spec(shared_data, [{"source": "maths"}]))
    with pytest.raises(ConfigError, match="either every entry of this list has a 'proportion' or none"):
        build_mixture(spec(shared_data, [{"source": "gsm8k", "proportion": 1}, {"source": "code"}]))
    with pytest.raises(ConfigError, match="mixture 'a' includes itself"):
        build_mixture(spec(shared_data, [{"mixture": "a"}], mixtures={"a": {"entries": [{"mixture": "a"}]}}))
