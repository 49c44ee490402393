"""13-gram decontamination of real training files against real evaluation sets."""

from __future__ import annotations

import json
from pathlib import Path

from sftmix.data.decontam import NgramIndex, decontaminate
from sftmix.data.mixing import build_mixture
from sftmix.data.records import Example, Message
from sftmix.data.sources import load_source
from sftmix.data.spec import MixtureSpec, SourceSpec


def _examples(path: Path, fmt: str) -> list[Example]:
    return load_source(SourceSpec(name=fmt, path=str(path), format=fmt, on_error="skip")).examples


def test_gsm8k_train_overlaps_known_test_questions(shared_data: Path) -> None:
    index = NgramIndex.from_examples(_examples(shared_data / "gsm8k/test.jsonl", "gsm8k"))
    train = _examples(shared_data / "gsm8k/train.jsonl", "gsm8k")
    kept, report = decontaminate(train, index, drop=True)
    assert report["contaminated"] == report["dropped"] == 7
    assert len(kept) == 7473 - 7
    first = report["examples"][0]
    assert (first["id"], first["eval_id"]) == ("gsm8k:20", "gsm8k:632")
    assert len(first["ngram"].split()) == 13
    # the n-gram really is in both records
    test = {ex.id: ex for ex in _examples(shared_data / "gsm8k/test.jsonl", "gsm8k")}
    both = [" ".join(" ".join(m.content for m in ex.messages).lower().split())
            for ex in (train[20], test["gsm8k:632"])]
    assert all(first["ngram"] in text for text in both)


def test_twelve_words_do_not_match_thirteen_do() -> None:
    words = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
             "twelve", "thirteen"]
    ev = Example("e:0", "maths", "e", (Message("user", " ".join(words)), Message("assistant", "x")))
    index = NgramIndex.from_examples([ev])
    short = Example("t:0", "general", "t", (Message("user", "Say " + " ".join(words[:12])),
                                            Message("assistant", "ok")))
    full = Example("t:1", "general", "t", (Message("user", "hi"),
                                           Message("assistant", "ONE " + " ".join(words[1:]) + " more")))
    assert index.match(short) is None
    assert index.match(full) == ("e:0", tuple(words))


def test_mixture_reports_contamination_per_source(shared_data: Path, tmp_path: Path) -> None:
    # A general file with one HumanEval prompt pasted in: found, reported, dropped.
    he = json.loads((shared_data / "eval/humaneval/HumanEval.jsonl").read_text().splitlines()[3])
    chat = json.loads((shared_data / "general/sharegpt_dpo_chosen.json").read_text())[:20]
    chat.append({"conversations": [{"from": "human", "value": "Complete this:\n" + he["prompt"]},
                                   {"from": "gpt", "value": he["canonical_solution"]}]})
    (tmp_path / "chat.json").write_text(json.dumps(chat))
    spec = MixtureSpec.model_validate({
        "sources": [{"name": "chat", "path": "chat.json", "format": "sharegpt"}],
        "entries": [{"source": "chat"}],
        "decontamination": {"eval_sets": [
            {"path": str(shared_data / "eval/humaneval/HumanEval.jsonl"), "format": "humaneval"},
            {"path": str(shared_data / "eval/ifeval/input_data.jsonl"), "format": "ifeval"},
        ], "drop": True},
    })
    m = build_mixture(spec, base_dir=tmp_path)
    report = m.manifest["sources"]["chat"]["decontamination"]
    assert report["contaminated"] == 1 and report["dropped"] == 1
    assert report["examples"][0]["id"] == "chat:20"
    assert report["examples"][0]["eval_id"] == "humaneval:HumanEval/3"
    assert len(m.examples) == 20
    assert [e["records"] for e in m.manifest["eval_sets"]] == [164, 541]
