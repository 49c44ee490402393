"""The lab generators: deterministic, correct by construction, held out, and readable by sftmix."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest

from sftmix.answers.extract import gsm8k_reference
from sftmix.data.sources import load_source
from sftmix.data.spec import SourceSpec
from sftmix.errors import ConfigError, SftmixError
from sftmix.eval.tasks.code import HUMANEVAL_CHAT, HumanEvalTask
from sftmix.eval.tasks.gsm8k import GSM8KTask
from sftmix.eval.tasks.ifeval.checkers import CHECKERS, make_checker
from sftmix.eval.tasks.ifeval.task import IFEvalTask
from sftmix.lab.generators import GENERATORS, text_corpus, write_lab_corpus
from sftmix.lab.generators import code as code_gen
from sftmix.lab.generators import general as general_gen
from sftmix.lab.generators import maths as maths_gen
from sftmix.lab.generators.heldout import is_test_content, normalise_text

MODULES = {"maths": maths_gen, "code": code_gen, "general": general_gen}
HARD_MATHS = {"steps": 4, "distractors": 2, "max_number": 60,
              "operations": ["add", "sub", "packs", "times", "share"]}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    sizes = {"maths_train": 60, "maths_test": 40, "code_train": 60, "code_test": 40,
             "general_train": 60, "general_test": 60}
    return write_lab_corpus(tmp_path_factory.mktemp("lab") / "corpus", sizes, seed=3)


# --- determinism ---------------------------------------------------------------

@pytest.mark.parametrize("ability", sorted(MODULES))
@pytest.mark.parametrize("split", ["train", "test"])
def test_generation_is_deterministic_per_seed_and_nested(ability: str, split: str) -> None:
    gen = MODULES[ability].generate
    first = list(gen(60, 11, split))
    assert first == list(gen(60, 11, split))
    assert first != list(gen(60, 12, split))
    # Asking for fewer gives a prefix; asking for none gives an endless stream.
    assert list(gen(25, 11, split)) == first[:25]
    assert list(itertools.islice(gen(None, 11, split), 60)) == first


# --- maths -----------------------------------------------------------------------

@pytest.mark.parametrize("difficulty", [None, HARD_MATHS], ids=["default", "hard"])
def test_maths_answers_are_correct(difficulty: dict | None) -> None:
    for split in ("train", "test"):
        for p in maths_gen.problems(300, 5, split, difficulty):
            start = int(p.key.split(":")[1].split("|")[0])
            assert re.search(rf"\b{start}\b", p.question)
            value = start
            for op, n, k, result in p.steps:
                if op == "add":
                    value += n
                elif op == "sub":
                    value -= n
                elif op == "packs":
                    value += k * n
                elif op == "times":
                    value *= k
                else:
                    assert op == "share" and value % k == 0
                    value //= k
                assert value == result and value >= 1
            assert value == p.value
            # Every calculator annotation computes what it says.
            for expr, shown in re.findall(r"<<([^=]+)=(-?\d+)>>", p.answer):
                assert eval(expr) == int(shown)  # our own arithmetic, digits and + - * / only
            assert gsm8k_reference(p.answer) == str(p.value)
            assert p.answer.endswith(f"#### {p.value}")


def test_maths_difficulty_knobs_change_the_problems() -> None:
    hard = list(maths_gen.problems(50, 0, "train", HARD_MATHS))
    assert all(len(p.steps) == 4 for p in hard)
    assert all(p.answer.count("\n") == 4 for p in hard)  # one line per step, then ####
    # Distractors add sentences whose numbers the solution never uses.
    assert all(p.question.count(".") >= 4 + 1 + 2 for p in hard)
    plain = list(maths_gen.problems(50, 0, "train", {"annotations": False, "max_number": 9}))
    assert all("<<" not in p.answer for p in plain)
    assert all(n <= 9 for p in plain for _, n, _, _ in p.steps)


def test_maths_test_file_is_scored_by_the_gsm8k_task(corpus: dict[str, Path]) -> None:
    task = GSM8KTask(path=corpus["maths_test"])
    items = task.items()
    assert len(items) == 40
    answers = [json.loads(line)["answer"] for line in corpus["maths_test"].read_text().splitlines()]
    right = task.score(items, [[a] for a in answers])
    assert all(r.metrics["exact_match_strict"] == 1.0 for r in right)
    wrong = task.score(items, [[a.rsplit("####", 1)[0] + "#### 100000"] for a in answers])
    assert all(r.metrics["exact_match_strict"] == 0.0 for r in wrong)


# --- code ------------------------------------------------------------------------

def test_code_canonical_solutions_pass_their_hidden_tests_in_the_sandbox(
        corpus: dict[str, Path], tmp_path: Path) -> None:
    # Training problems too, rendered as HumanEval records, so both splits are checked.
    train = [p.humaneval(f"LabTrain/{i}") for i, p in enumerate(code_gen.problems(25, 3, "train"))]
    train_file = tmp_path / "train_as_humaneval.jsonl"
    train_file.write_text("".join(json.dumps(r) + "\n" for r in train))
    for path in (corpus["code_test"], train_file):
        task = HumanEvalTask(path=path, workers=2)
        items = task.items()
        bodies = [[r["canonical_solution"]] for r in task.records()]
        assert all(r.metrics["pass@1"] == 1.0 for r in task.score(items, bodies)), path
        # A plausible but wrong body fails: the hidden tests have teeth.
        wrong = task.score(items, [["    return 1\n"]] * len(items))
        assert sum(r.metrics["pass@1"] for r in wrong) <= 2


def test_code_docstring_examples_and_training_records_match_the_function() -> None:
    for p, record in zip(code_gen.problems(200, 9, "train"), code_gen.generate(200, 9, "train"),
                         strict=True):
        namespace: dict = {}
        exec(p.signature_prompt + p.body, namespace)  # our own generated function
        call, shown = re.search(r">>> (.*)\n\s+(.*)\n", p.signature_prompt).groups()
        assert repr(eval(call, namespace)) == shown
        assert record == {"instruction": HUMANEVAL_CHAT.format(prompt=p.signature_prompt),
                          "input": "", "output": p.body}


def test_code_kinds_cover_the_families_of_small_functions() -> None:
    kinds = {p.kind for p in code_gen.problems(800, 0, "train")}
    assert kinds == set(code_gen.KIND_NAMES)
    fixed = {re.search(r"\((\w+):", p.signature_prompt).group(1)
             for p in code_gen.problems(200, 0, "train", {"varied_arguments": False})}
    assert fixed <= {"x", "s", "xs"} and len(fixed) == 3
    with pytest.raises(ConfigError, match="kinds"):
        list(code_gen.generate(1, 0, difficulty={"kinds": ["nope"]}))


# --- general ---------------------------------------------------------------------

def test_general_replies_follow_their_instructions() -> None:
    seen: set[str] = set()
    for split in ("train", "test"):
        for p in general_gen.problems(400, 2, split, {"max_instructions": 3}):
            for iid, kwargs in zip(p.instruction_ids, p.kwargs, strict=True):
                assert make_checker(iid, kwargs).check(p.reply), (iid, kwargs, p.reply)
                seen.add(iid)
    # Every instruction type the generator knows is exercised and has an IFEval checker.
    from sftmix.lab.generators.replies import INSTRUCTIONS
    assert seen == set(INSTRUCTIONS) and len(seen) >= 10
    assert seen <= set(CHECKERS.names())


def test_general_test_file_is_scored_by_the_ifeval_task(corpus: dict[str, Path]) -> None:
    task = IFEvalTask(path=corpus["general_test"])
    items = task.items()
    assert len(items) == 60
    replies = [p.reply for p in general_gen.problems(60, 3, "test")]
    right = task.score(items, [[r] for r in replies])
    assert all(r.metrics["prompt_level_strict"] == 1.0 for r in right)
    # Another prompt's reply mostly fails: the instructions are really checked.
    shifted = task.score(items, [[r] for r in replies[1:] + replies[:1]])
    assert sum(r.metrics["prompt_level_strict"] for r in shifted) < 0.5 * len(items)


def test_general_mixes_in_specialist_conversations_at_the_asked_fraction() -> None:
    none = [p.kind for p in general_gen.problems(600, 0, "train", {"specialist_fraction": 0.0})]
    assert "maths" not in none and "code" not in none and "plain" in none
    mixed = [p.kind for p in general_gen.problems(
        1000, 0, "train", {"specialist_fraction": 0.3, "specialist": "both"})]
    share = sum(k in ("maths", "code") for k in mixed) / len(mixed)
    assert 0.25 < share < 0.35 and {"maths", "code"} <= set(mixed)
    only = {p.kind for p in general_gen.problems(
        200, 0, "train", {"specialist_fraction": 1.0, "plain_fraction": 0.0, "specialist": "code"})}
    assert only == {"code"}
    # Maths conversations follow the maths knobs they are given.
    knobs = {"specialist_fraction": 1.0, "plain_fraction": 0.0, "specialist": "maths",
             "specialist_maths": {"steps": 3}}
    assert all(p.reply.count("\n") == 3 for p in general_gen.problems(50, 0, "train", knobs))


# --- held out --------------------------------------------------------------------

@pytest.mark.parametrize("ability", sorted(MODULES))
def test_no_test_item_occurs_in_the_training_data(ability: str) -> None:
    module = MODULES[ability]
    knobs = {"specialist_fraction": 0.3} if ability == "general" else None
    train = list(module.problems(5000, 0, "train", knobs))
    test = list(module.problems(400, 0, "test"))
    assert len(train) == 5000 and len(test) == 400
    # Exact prompts, normalised prompts, and content (what is asked, in any wording).
    assert not {p.prompt for p in train} & {p.prompt for p in test}
    assert not {normalise_text(p.prompt) for p in train} & {normalise_text(p.prompt) for p in test}
    assert not {p.key for p in train} & {p.key for p in test}
    assert all(is_test_content(p.key) for p in test)
    assert not any(is_test_content(p.key) for p in train)
    if ability == "code":
        # Not even the same function body under another name (operators matter: spaces only).
        bodies = {" ".join(p.body.split()) for p in train}
        assert not bodies & {" ".join(p.body.split()) for p in test}
    if ability == "general":
        # The maths and code conversations mixed into general data are training items
        # only: neither their content keys nor their text match a maths or code test item.
        held = [q for other in ("maths", "code") for q in MODULES[other].problems(400, 0, "test")]
        assert not {p.key for p in train} & {q.key for q in held}
        texts = {normalise_text(q.prompt) for q in held}
        for p in train:
            if p.kind in ("maths", "code"):
                words = normalise_text(p.prompt).split()
                # The question is embedded at the end of the request: check every suffix.
                assert not any(" ".join(words[i:]) in texts for i in range(len(words)))


@pytest.mark.parametrize("ability", sorted(MODULES))
def test_held_out_template_families_are_disjoint(ability: str) -> None:
    module = MODULES[ability]
    train_families = {p.family for p in module.problems(3000, 1, "train")}
    test_families = {p.family for p in module.problems(400, 1, "test")}
    assert not train_families & test_families
    # Every family occurs, on exactly one side: one wording in four (five for general
    # requests) is a test family. A code kind whose constants all hash to training
    # content has no test item, hence "nearly all" test families.
    every, test_share = {
        "maths": ({f"{sc.name}/{w}" for sc in maths_gen.SCENARIOS for w in range(4)}, 4),
        "code": ({f"{k.name}/frame{f}" for k in code_gen.KINDS for f in range(4)}, 4),
        "general": ({f"{t.name}/request{r}" for t in general_gen.TOPICS for r in range(5)}, 5),
    }[ability]
    assert train_families | test_families <= every
    assert len(train_families) == len(every) - len(every) // test_share
    assert len(test_families) >= 0.9 * len(every) // test_share
    # A test family combines parts (scenario and wording, kind and frame, topic and
    # request) that training uses elsewhere: new combinations, no unseen parts.
    train_parts = {part for f in train_families for part in f.split("/")}
    assert {part for f in test_families for part in f.split("/")} <= train_parts


def test_an_exhausted_test_space_is_a_clear_error() -> None:
    knobs = {"kinds": ["add"], "max_constant": 5}
    assert not any(is_test_content(f"code:add:c={c}") for c in range(1, 6))  # all train content
    with pytest.raises(SftmixError, match="could not draw"):
        list(code_gen.generate(1, 0, "test", knobs))


# --- files -----------------------------------------------------------------------

def test_corpus_files_read_with_the_data_layer(corpus: dict[str, Path]) -> None:
    sizes = {"maths_train": 60, "maths_test": 40, "code_train": 60, "code_test": 40,
             "general_train": 60, "general_test": 60}
    assert (corpus["maths_train"].parent / "COMPLETE.json").is_file()
    for name, path in corpus.items():
        ability, split = name.split("_")
        fmt = getattr(GENERATORS.get(ability), f"{split}_format")
        spec = SourceSpec(name=f"lab-{ability}-{split}", path=str(path), format=fmt, ability=ability)
        loaded = load_source(spec)
        assert len(loaded.examples) == sizes[name] and loaded.skipped == 0, name
        assert all(ex.ability == ability for ex in loaded.examples)
    manifest = json.loads((corpus["maths_train"].parent / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["formats"]["code_test"] == "humaneval"


def test_write_lab_corpus_reuses_and_refuses(tmp_path: Path) -> None:
    sizes = {"maths_train": 5, "code_test": 5}
    out = tmp_path / "c"
    paths = write_lab_corpus(out, sizes, seed=1, difficulty={"maths": {"steps": 3}})
    marker = json.loads((out / "COMPLETE.json").read_text())
    # General data's maths conversations follow the corpus's maths knobs.
    assert marker["difficulty"]["general"]["specialist_maths"]["steps"] == 3
    stamp = paths["maths_train"].stat().st_mtime_ns
    assert write_lab_corpus(out, sizes, seed=1, difficulty={"maths": {"steps": 3}}) == paths
    assert paths["maths_train"].stat().st_mtime_ns == stamp
    assert paths["general_train"].read_text() == "[\n]\n"  # size 0: an empty list
    with pytest.raises(SftmixError, match="other settings"):
        write_lab_corpus(out, sizes, seed=2)
    bad = tmp_path / "bad"
    with pytest.raises(ConfigError, match="maths_tran"):
        write_lab_corpus(bad, {"maths_tran": 5})
    with pytest.raises(ConfigError, match="field 'steps'"):
        write_lab_corpus(bad, {"maths_train": 5}, difficulty={"maths": {"steps": 0}})
    assert not bad.exists() and not list(tmp_path.glob("*partial*"))


def test_text_corpus_covers_every_ability_and_no_test_item() -> None:
    texts = list(text_corpus(100, seed=0))
    assert texts == list(text_corpus(100, seed=0))
    joined = "\n".join(texts)
    assert "####" in joined and "return " in joined and "Describe" in joined
    test_prompts = [p.prompt for m in MODULES.values() for p in m.problems(100, 0, "test")]
    assert not any(prompt in joined for prompt in test_prompts)
