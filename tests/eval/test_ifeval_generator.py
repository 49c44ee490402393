"""Generated verifiable prompts: seeded, self-consistent, scored by the ifeval task, held out by split."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import pytest

from sftmix.errors import ConfigError
from sftmix.eval.tasks.ifeval.constraints import RANGES, SPECS
from sftmix.eval.tasks.ifeval.generator import (
    FAMILIES,
    generate,
    generate_items,
    item_from_dict,
    respond,
    to_example,
    write_ifeval_jsonl,
)
from sftmix.eval.tasks.ifeval.task import IFEvalTask


@pytest.fixture(scope="module")
def train_items():
    return generate(150, seed=11, split="train")


@pytest.fixture(scope="module")
def test_items():
    return generate(150, seed=11, split="test")


def test_deterministic_per_seed() -> None:
    a, b, c = generate(15, seed=5), generate(15, seed=5), generate(15, seed=6)
    assert a == b and [respond(x) for x in a] == [respond(x) for x in b]
    assert [x.prompt for x in a] != [x.prompt for x in c]
    # The stream is unbounded and its prefix does not depend on how much is taken.
    assert list(itertools.islice(generate_items(5), 15)) == a


def test_items_are_varied(train_items, test_items) -> None:
    used = Counter(i for it in train_items + test_items for i in it.instruction_id_list)
    assert len(used) >= 20
    assert Counter(len(it.instruction_id_list) for it in train_items).keys() == {1, 2, 3}
    assert len({it.prompt for it in train_items}) == len(train_items)


def test_references_follow_their_instructions_through_the_task(tmp_path: Path, train_items,
                                                               test_items) -> None:
    path = tmp_path / "generated.jsonl"
    items = train_items + test_items
    assert write_ifeval_jsonl(items, path) == 300
    task = IFEvalTask(path)
    eval_items = task.items()
    results = task.score(eval_items, [[respond(it)] for it in items])
    failed = [(r.id, r.reason) for r in results if r.metrics["prompt_level_strict"] != 1.0]
    assert failed == []
    # A reply written for another prompt fails somewhere.
    shifted = task.score(eval_items, [[respond(items[i - 1])] for i in range(len(items))])
    assert sum(r.metrics["prompt_level_strict"] for r in shifted) < 0.6 * len(items)
    # Items round-trip through the file.
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [item_from_dict(r) for r in rows] == items


def test_heldout_split_is_disjoint(train_items, test_items) -> None:
    train_fam = {f.name for f in FAMILIES if f.split == "train"}
    assert {it.family for it in train_items} <= train_fam
    assert not {it.family for it in test_items} & train_fam
    assert not {it.prompt for it in train_items} & {it.prompt for it in test_items}

    def values(items):
        # (instruction, kwarg, relation) -> values: "at least 6" and "less than 6" differ.
        seen: dict[tuple[str, str, str], set] = {}
        for it in items:
            for iid, kw in zip(it.instruction_id_list, it.kwargs, strict=True):
                relation = next((v for k, v in kw.items() if k.endswith("relation")), "")
                for k, v in kw.items():
                    if not k.endswith("relation") and k != "prompt_to_repeat":
                        seen.setdefault((iid, k, relation), set()).update(
                            v if isinstance(v, list) else [v])
        return seen

    train_v, test_v = values(train_items), values(test_items)
    for key in train_v.keys() & test_v.keys():
        if key[1] == "nth_paragraph":  # a position, bounded by the paragraph count
            continue
        assert not train_v[key] & test_v[key], key
    for name, ranges in RANGES.items():
        assert ranges["train"][1] < ranges["test"][0], name


def test_training_example(train_items) -> None:
    item = train_items[0]
    ex = to_example(item)
    assert ex.ability == "general" and ex.source == "ifeval-gen"
    assert [m.role for m in ex.messages] == ["user", "assistant"]
    assert ex.messages[0].content == item.prompt and ex.messages[1].content == respond(item)
    assert ex.metadata["split"] == "train"


def test_language_is_not_generated_and_bad_options_fail() -> None:
    assert "language:response_language" not in SPECS
    with pytest.raises(ConfigError, match="split 'dev'"):
        generate(1, seed=0, split="dev")
    with pytest.raises(ConfigError, match="max_constraints"):
        generate(1, seed=0, max_constraints=5)
