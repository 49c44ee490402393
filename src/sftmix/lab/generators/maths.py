"""Multi-step arithmetic word problems with worked solutions, in GSM8K's format.

A problem is a story about one quantity (apples in a basket, coins in a jar):
it starts at some amount and goes through ``steps`` operations (gets more,
gives some away, buys packs of several, becomes k times as many, is split into
equal groups), possibly interleaved with distractor sentences whose numbers do
not matter. The worked solution has one line per operation with a GSM8K
calculator annotation and ends with ``#### N``, so the GSM8K reader and
evaluator take the files unchanged.

Why it suits a tiny model: the wording is short and regular, each solution
line copies numbers from the question in order and does one small operation,
and the difficulty knobs (steps, number sizes, distractors, operations) move
the task from "a few hundred examples suffice" to "needs thousands".

Held out: a scenario tells its story in one of four wordings (two opening
sentences times two questions); one wording of each scenario is reserved for
the test split, so a test story's template combination never occurs in
training although each of its sentences does. On top, each test problem's
arithmetic (its start value, operations and operands) is reserved for the test
split by a content hash, so no training problem has the same computation in
any wording. Everything the test needs was taught, nothing it asks was seen:
with wholly new vocabulary instead (objects, names and sentences never seen
in training), a 1M-parameter model trained on 2,000 problems solved 86% of
its training problems and 6% of the test ones: it learned the stories, not
the skill.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, model_validator

from sftmix.config import StrictModel
from sftmix.lab.generators.heldout import Drawer, Drawn, Split, parse_difficulty

Operation = Literal["add", "sub", "packs", "times", "share"]


class MathsDifficulty(StrictModel):
    """Knobs of the maths generator.

    The defaults are learnable by a 1M-parameter model from a few thousand problems
    (see docs/lab_generators.md for measured accuracies); ``packs``, ``times``,
    ``share``, more steps, larger numbers and distractors make the task need more data.
    """

    steps: int = Field(2, ge=1, le=8, description="operations after the starting amount")
    min_number: int = Field(2, ge=1, description="smallest operand")
    max_number: int = Field(10, ge=2, le=10_000, description="largest operand")
    distractors: int = Field(0, ge=0, le=6, description="sentences with irrelevant numbers")
    operations: tuple[Operation, ...] = Field(
        ("add", "sub"), min_length=1, description="operations a story may use"
    )
    annotations: bool = Field(True, description="write GSM8K <<a+b=c>> calculator annotations")

    @model_validator(mode="after")
    def _range(self) -> MathsDifficulty:
        if self.min_number >= self.max_number:
            raise ValueError(
                f"min_number ({self.min_number}) must be below max_number ({self.max_number})"
            )
        return self


@dataclass(frozen=True)
class Scenario:
    name: str
    units: tuple[str, ...]
    start: tuple[str, ...]  # "{name}" "{n}" "{unit}"
    question: tuple[str, ...]


SCENARIOS = (
    Scenario("orchard", ("apples", "pears", "plums", "oranges"),
             ("{name} has {n} {unit} in a basket.", "{name} picked {n} {unit} this morning."),
             ("How many {unit} does {name} have now?", "How many {unit} are left in the end?")),
    Scenario("shop", ("boxes", "bottles", "cans", "jars"),
             ("{name} runs a shop with {n} {unit} on the shelf.",
              "{name} has {n} {unit} in the store room."),
             ("How many {unit} does {name} have now?", "How many {unit} are in the shop now?")),
    Scenario("savings", ("coins", "dollars", "tokens"),
             ("{name} has saved {n} {unit}.", "{name} keeps {n} {unit} in a jar."),
             ("How many {unit} does {name} have now?", "How many {unit} are in the jar now?")),
    Scenario("library", ("books", "comics", "maps"),
             ("{name} has {n} {unit} on a shelf.", "{name} owns {n} {unit}."),
             ("How many {unit} does {name} have now?", "How many {unit} are on the shelf now?")),
    Scenario("bakery", ("cookies", "muffins", "rolls", "cakes"),
             ("{name} baked {n} {unit}.", "{name} has {n} {unit} on a tray."),
             ("How many {unit} does {name} have now?", "How many {unit} are on the tray now?")),
    Scenario("farm", ("eggs", "carrots", "potatoes", "onions"),
             ("{name} collected {n} {unit} on the farm.", "{name} has {n} {unit} in a crate."),
             ("How many {unit} does {name} have now?", "How many {unit} are in the crate now?")),
    Scenario("beach", ("shells", "pebbles", "stones"),
             ("{name} found {n} {unit} on the beach.", "{name} has {n} {unit} in a bucket."),
             ("How many {unit} does {name} have now?", "How many {unit} are in the bucket now?")),
    Scenario("crafts", ("beads", "stickers", "buttons"),
             ("{name} has a box with {n} {unit}.", "{name} bought {n} {unit} for a project."),
             ("How many {unit} does {name} have now?", "How many {unit} are in the box now?")),
)
WORDINGS = ((0, 0), (0, 1), (1, 0), (1, 1))  # (start sentence, question) of a scenario

NAMES = (("Mia", "she"), ("Liam", "he"), ("Emma", "she"), ("Noah", "he"),
         ("Olivia", "she"), ("Lucas", "he"), ("Ava", "she"), ("Ethan", "he"),
         ("Sophia", "she"), ("Jack", "he"), ("Chloe", "she"), ("Leo", "he"),
         ("Grace", "she"), ("Owen", "he"), ("Ella", "she"), ("Sam", "he"),
         ("Nora", "she"), ("Felix", "he"), ("Iris", "she"), ("Hugo", "he"))



def is_test_family(scenario: int, wording: int) -> bool:
    """One of the four wordings of each scenario is kept for testing, a different one each time."""
    return (scenario + wording) % len(WORDINGS) == 0


# Operation phrasings are shared by both splits (see the module docstring).
PHRASES: dict[str, tuple[str, ...]] = {
    "add": ("{Pron} gets {n} more {unit}.", "Then {pron} finds {n} more {unit}.",
            "{Name} is given {n} more {unit}.", "Later {pron} adds {n} {unit}."),
    "sub": ("{Pron} gives away {n} {unit}.", "Then {pron} uses {n} of the {unit}.",
            "{Name} loses {n} {unit}.", "Later {pron} sells {n} {unit}."),
    "packs": ("{Pron} buys {k} packs of {n} {unit} each.",
              "Then {pron} gets {k} bags with {n} {unit} in each."),
    "times": ("{Pron} ends up with {k} times as many {unit} as before.",
              "Then the number of {unit} grows to {k} times as many."),
    "share": ("{Pron} splits the {unit} into {k} equal groups and keeps one group.",
              "Then {pron} shares the {unit} equally with {k} people in all and keeps one share."),
}
DISTRACTORS = ("{Name}'s friend has {d} marbles.", "{Pron} is {d} years old.",
               "The walk home takes {d} minutes.", "There are {d} chairs in the room.",
               "{Pron} read {d} pages yesterday.")


@dataclass(frozen=True)
class MathsProblem(Drawn):
    question: str
    answer: str  # worked solution ending with "#### N"
    value: int
    steps: tuple[tuple[str, int, int, int], ...]  # (operation, operand, k, result)

    def record(self) -> dict[str, str]:
        """The GSM8K-format record."""
        return {"question": self.question, "answer": self.answer}


def _calc(expr: str, result: int, annotations: bool) -> str:
    return f"{expr}=<<{expr}={result}>>{result}" if annotations else f"{expr}={result}"


def _operation(rng: random.Random, value: int, d: MathsDifficulty) -> tuple[str, int, int, int]:
    """One feasible operation on ``value``: (name, operand, factor, new value)."""
    lo, hi = d.min_number, d.max_number
    choices = list(d.operations)
    rng.shuffle(choices)
    for op in choices:
        if op == "add":
            n = rng.randint(lo, hi)
            return op, n, 1, value + n
        if op == "sub" and value - 1 >= lo:
            n = rng.randint(lo, min(hi, value - 1))
            return op, n, 1, value - n
        if op == "packs":
            # Packs stay within a small times table: the product is the hard part.
            k, n = rng.randint(2, 4), rng.randint(lo, max(lo, min(hi, 12)))
            return op, n, k, value + k * n
        if op == "times" and value <= hi * 5:
            k = rng.randint(2, 3)
            return op, 0, k, value * k
        if op == "share":
            ks = [k for k in range(2, 6) if value % k == 0 and value // k >= 1]
            if ks:
                k = rng.choice(ks)
                return op, 0, k, value // k
    # Only infeasible choices (e.g. "sub" on 1): adding always works.
    n = rng.randint(lo, hi)
    return "add", n, 1, value + n


def _solution_line(op: str, n: int, k: int, before: int, after: int, unit: str,
                   annotations: bool) -> str:
    if op == "add":
        return f"After adding {n}: {_calc(f'{before}+{n}', after, annotations)} {unit}."
    if op == "sub":
        return f"After taking away {n}: {_calc(f'{before}-{n}', after, annotations)} {unit}."
    if op == "packs":
        packed = k * n
        return (f"The packs hold {_calc(f'{k}*{n}', packed, annotations)} {unit}, "
                f"so {_calc(f'{before}+{packed}', after, annotations)} {unit}.")
    if op == "times":
        return f"{k} times as many: {_calc(f'{before}*{k}', after, annotations)} {unit}."
    return f"One of {k} equal parts: {_calc(f'{before}/{k}', after, annotations)} {unit}."


def make_problem(rng: random.Random, split: Split, d: MathsDifficulty) -> MathsProblem:
    si = rng.randrange(len(SCENARIOS))
    wi = rng.choice([w for w in range(len(WORDINGS)) if is_test_family(si, w) == (split == "test")])
    sc, (start_form, question_form) = SCENARIOS[si], WORDINGS[wi]
    name, pron = rng.choice(NAMES)
    unit = rng.choice(sc.units)
    fill = {"name": name, "Name": name, "pron": pron, "Pron": pron.capitalize(), "unit": unit}

    value = start = rng.randint(d.min_number, d.max_number)
    sentences = [sc.start[start_form].format(n=value, **fill)]
    lines = []
    steps = []
    for _ in range(d.steps):
        op, n, k, after = _operation(rng, value, d)
        sentences.append(rng.choice(PHRASES[op]).format(n=n, k=k, **fill))
        lines.append(_solution_line(op, n, k, value, after, unit, d.annotations))
        steps.append((op, n, k, after))
        value = after
    for _ in range(d.distractors):
        # Never before the first sentence: the starting amount opens every story.
        at = rng.randint(1, len(sentences))
        distractor = rng.choice(DISTRACTORS).format(d=rng.randint(d.min_number, d.max_number), **fill)
        sentences.insert(at, distractor)
    sentences.append(sc.question[question_form].format(**fill))
    question = " ".join(sentences)
    answer = "\n".join([*lines, f"#### {value}"])
    key = f"maths:{start}|" + "|".join(f"{op}:{n}:{k}" for op, n, k, _ in steps)
    return MathsProblem(key=key, family=f"{sc.name}/{wi}", prompt=question, question=question,
                        answer=answer, value=value, steps=tuple(steps))


def problems(n: int | None, seed: int, split: str = "train",
             difficulty: MathsDifficulty | dict[str, Any] | None = None) -> Iterator[MathsProblem]:
    """Distinct maths problems of one split (``n=None``: without end)."""
    d = parse_difficulty(MathsDifficulty, difficulty, "maths")
    drawer: Drawer[MathsProblem] = Drawer("maths", lambda rng, s: make_problem(rng, s, d))
    return drawer.draw(n, seed, split)


def generate(n: int | None, seed: int, split: str = "train",
             difficulty: MathsDifficulty | dict[str, Any] | None = None) -> Iterator[dict[str, str]]:
    """GSM8K-format records ``{"question", "answer"}``; the same format for both splits."""
    for problem in problems(n, seed, split, difficulty):
        yield problem.record()
