"""Small Python functions specified in words, as HumanEval-style problems.

Each problem is one *kind* of small function (arithmetic on its arguments, a
string operation, a list filter, map or reduction, a conditional) with random
constants, a function name and argument names, described in a docstring with
one worked example. The evaluation record is HumanEval's
(``task_id``, ``prompt`` = signature + docstring, ``canonical_solution`` = body,
``test`` = ``def check(candidate)`` with hidden asserts, ``entry_point``), so the
HumanEval evaluator and its sandbox score it unchanged. The training record is
an Alpaca record whose instruction is the prompt exactly as the HumanEval task
asks a chat model (``HUMANEVAL_CHAT``) and whose output is the body: the
evaluator appends a body reply to the prompt (``prompt + completion + test``),
and a body is the shortest answer a tiny model can learn to give.

Held out: a description is one of four *frames* around the kind's operation
phrase ("Return {op}.", "Compute {op} and return it.", ...); each kind keeps
one frame for the test split (a different frame for the next kind), so a test
problem's wording never occurs in training although every frame and every
operation phrase does. On top, each test problem's (kind, constants) pair is
reserved for the test split by a content hash, so training never contains the
same function under any name or wording.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from sftmix.config import StrictModel
from sftmix.errors import ConfigError
from sftmix.eval.tasks.code import HUMANEVAL_CHAT
from sftmix.lab.generators.heldout import Drawer, Drawn, Split, parse_difficulty


class CodeDifficulty(StrictModel):
    """Knobs of the code generator."""

    max_constant: int = Field(9, ge=3, le=1000, description="largest integer constant in a spec")
    hidden_tests: int = Field(5, ge=1, le=20, description="asserts in each problem's check()")
    kinds: tuple[str, ...] | None = Field(None, description="restrict to these function kinds")
    varied_arguments: bool = Field(
        True, description="vary argument names (False: always x, y, s or xs), a copying burden")


@dataclass(frozen=True)
class Kind:
    """One kind of function: its signature, its operation in words and in code."""

    name: str
    args: tuple[str, ...]  # argument roles: "int", "int2", "str", "list"
    returns: str  # return annotation
    phrase: tuple[str, ...]  # operation in words; "{a}", "{b}" the arguments, "{c}" ... constants
    expr: str  # body expression with the same fields
    names: tuple[str, ...]  # function names
    constants: Callable[[random.Random, int], dict[str, Any]]
    nonempty: bool = False  # list arguments must not be empty


def _c(lo: int = 1) -> Callable[[random.Random, int], dict[str, Any]]:
    return lambda rng, hi: {"c": rng.randint(lo, hi)}


def _cd(rng: random.Random, hi: int) -> dict[str, Any]:
    return {"c": rng.randint(2, hi), "d": rng.randint(1, hi)}


WORDS = ("cat", "sun", "tree", "book", "moon", "lamp", "ship", "rock", "bird", "cake", "door",
         "fish", "road", "star", "wind", "leaf", "ring", "salt", "wolf", "milk")


def _word(rng: random.Random, hi: int) -> dict[str, Any]:
    return {"w": rng.choice(WORDS)}


def _letter(rng: random.Random, hi: int) -> dict[str, Any]:
    return {"ch": rng.choice("aeiorst")}


KINDS: tuple[Kind, ...] = (
    Kind("add", ("int",), "int", ("{a} plus {c}", "{a} increased by {c}"), "{a} + {c}",
         ("add_amount", "increase", "shift_up"), _c()),
    Kind("sub", ("int",), "int", ("{a} minus {c}", "{a} decreased by {c}"), "{a} - {c}",
         ("subtract_amount", "decrease", "shift_down"), _c()),
    Kind("mul", ("int",), "int", ("{a} times {c}", "{a} multiplied by {c}"), "{a} * {c}",
         ("scale", "multiply", "times_const"), _c(2)),
    Kind("affine", ("int",), "int", ("{a} times {c} plus {d}", "{d} more than {c} times {a}"),
         "{a} * {c} + {d}", ("affine", "linear", "scale_and_shift"), _cd),
    Kind("mod", ("int",), "int", ("the remainder of {a} divided by {c}", "{a} modulo {c}"),
         "{a} % {c}", ("remainder", "modulo", "wrap"), _c(2)),
    Kind("floordiv", ("int",), "int", ("{a} divided by {c}, rounded down",
                                        "the whole number of times {c} fits into {a}"),
         "{a} // {c}", ("divide_down", "floor_divide", "groups_of"), _c(2)),
    Kind("is_multiple", ("int",), "bool", ("whether {a} is a multiple of {c}",
                                            "True if {c} divides {a} evenly, else False"),
         "{a} % {c} == 0", ("is_multiple", "divisible", "check_multiple"), _c(2)),
    Kind("threshold", ("int",), "str", ("'big' if {a} is greater than {c}, otherwise 'small'",
                                         "'small' unless {a} exceeds {c}, in which case 'big'"),
         "'big' if {a} > {c} else 'small'", ("size_label", "classify", "big_or_small"), _c()),
    Kind("cap", ("int",), "int", ("{a}, but never more than {c}", "the smaller of {a} and {c}"),
         "min({a}, {c})", ("cap_value", "limit", "clip_top"), _c()),
    Kind("sum_times", ("int", "int2"), "int", ("the sum of {a} and {b}, times {c}",
                                                "{c} times the total of {a} and {b}"),
         "({a} + {b}) * {c}", ("sum_scaled", "total_times", "combine"), _c(2)),
    Kind("max_plus", ("int", "int2"), "int", ("the larger of {a} and {b}, plus {c}",
                                               "{c} more than the bigger of {a} and {b}"),
         "max({a}, {b}) + {c}", ("max_plus", "bigger_plus", "top_shift"), _c()),
    Kind("repeat", ("str",), "str", ("{a} repeated {c} times", "{c} copies of {a} joined together"),
         "{a} * {c}", ("repeat_text", "copies", "echo"), _c(2)),
    Kind("prefix", ("str",), "str", ("{a} with '{w}' put in front", "'{w}' followed by {a}"),
         "'{w}' + {a}", ("add_prefix", "prepend", "lead_with"), _word),
    Kind("suffix", ("str",), "str", ("{a} followed by '{w}'", "{a} with '{w}' added at the end"),
         "{a} + '{w}'", ("add_suffix", "append_word", "end_with"), _word),
    Kind("head", ("str",), "str", ("the first {c} characters of {a}", "the start of {a}, {c} characters long"),
         "{a}[:{c}]", ("head", "first_chars", "take_start"), _c()),
    Kind("count_char", ("str",), "int", ("how many times '{ch}' occurs in {a}",
                                          "the number of '{ch}' characters in {a}"),
         "{a}.count('{ch}')", ("count_letter", "letter_count", "occurrences"), _letter),
    Kind("keep_above", ("list",), "list[int]", ("the elements of {a} that are greater than {c}",
                                                  "{a} without the elements that are {c} or less"),
         "[v for v in {a} if v > {c}]", ("keep_above", "filter_large", "above"), _c()),
    Kind("keep_below", ("list",), "list[int]", ("the elements of {a} that are less than {c}",
                                                  "{a} without the elements that are {c} or more"),
         "[v for v in {a} if v < {c}]", ("keep_below", "filter_small", "below"), _c()),
    Kind("keep_multiples", ("list",), "list[int]", ("the elements of {a} that are multiples of {c}",
                                                      "the elements of {a} divisible by {c}"),
         "[v for v in {a} if v % {c} == 0]", ("keep_multiples", "filter_divisible", "multiples"),
         _c(2)),
    Kind("map_add", ("list",), "list[int]", ("{a} with {c} added to each element",
                                               "each element of {a} increased by {c}"),
         "[v + {c} for v in {a}]", ("add_to_each", "shift_all", "raise_all"), _c()),
    Kind("map_mul", ("list",), "list[int]", ("{a} with each element multiplied by {c}",
                                               "each element of {a} times {c}"),
         "[v * {c} for v in {a}]", ("scale_all", "multiply_each", "stretch"), _c(2)),
    Kind("count_above", ("list",), "int", ("how many elements of {a} are greater than {c}",
                                            "the number of elements of {a} above {c}"),
         "len([v for v in {a} if v > {c}])", ("count_above", "how_many_large", "tally_above"),
         _c()),
    Kind("sum_plus", ("list",), "int", ("the sum of {a} plus {c}", "{c} more than the total of {a}"),
         "sum({a}) + {c}", ("sum_plus", "total_plus", "shifted_total"), _c()),
    Kind("max_times", ("list",), "int", ("the largest element of {a} times {c}",
                                          "{c} times the maximum of {a}"),
         "max({a}) * {c}", ("max_scaled", "peak_times", "largest_times"), _c(2), nonempty=True),
)
KIND_NAMES = tuple(k.name for k in KINDS)

FRAMES = ("Return {op}.", "Compute {op} and return it.", "This function returns {op}.",
          "Given the input, give back {op}.")


def is_test_family(kind: int, frame: int) -> bool:
    """Each kind keeps one of the four frames for testing, a different one for the next kind."""
    return (kind + frame) % len(FRAMES) == 0

ARG_NAMES = {"int": ("x", "n", "value", "number"), "int2": ("y", "m", "other", "k"),
             "str": ("s", "text", "word"), "list": ("xs", "nums", "values", "items")}
ANNOTATIONS = {"int": "int", "int2": "int", "str": "str", "list": "list[int]"}


@dataclass(frozen=True)
class CodeProblem(Drawn):
    kind: str
    entry_point: str
    signature_prompt: str  # HumanEval prompt: signature and docstring
    body: str  # canonical solution (indented, ends with a newline)
    test: str  # "def check(candidate): ..."

    def humaneval(self, task_id: str) -> dict[str, str]:
        return {"task_id": task_id, "prompt": self.signature_prompt,
                "canonical_solution": self.body, "test": self.test,
                "entry_point": self.entry_point}

    def alpaca(self) -> dict[str, str]:
        # Asked exactly as the HumanEval task asks a chat model; the reply is the body,
        # which the evaluator appends to the prompt like any body continuation.
        return {"instruction": HUMANEVAL_CHAT.format(prompt=self.signature_prompt), "input": "",
                "output": self.body}


def _value(rng: random.Random, role: str, nonempty: bool) -> Any:
    if role in ("int", "int2"):
        return rng.randint(0, 30)
    if role == "str":
        return "".join(rng.choice(WORDS) for _ in range(rng.randint(1, 2)))
    return [rng.randint(0, 20) for _ in range(rng.randint(1 if nonempty else 0, 6))]


def make_problem(rng: random.Random, split: Split, d: CodeDifficulty) -> CodeProblem:
    ki = rng.choice([i for i, k in enumerate(KINDS) if d.kinds is None or k.name in d.kinds])
    kind = KINDS[ki]
    consts = kind.constants(rng, d.max_constant)
    used: set[str] = set()
    params = []
    for role in kind.args:
        choices = [a for a in ARG_NAMES[role] if a not in used]
        arg = rng.choice(choices) if d.varied_arguments else choices[0]
        used.add(arg)
        params.append((arg, role))
    fields = {**consts, "a": params[0][0], "b": params[-1][0]}
    expr = kind.expr.format(**fields)
    fi = rng.choice([f for f in range(len(FRAMES)) if is_test_family(ki, f) == (split == "test")])
    text = FRAMES[fi].format(op=rng.choice(kind.phrase).format(**fields))
    entry = rng.choice(kind.names)

    # The expression is one of ours with our own constants: evaluating it gives the
    # reference outputs from the very code that is shipped as the canonical solution.
    fn = eval(f"lambda {', '.join(a for a, _ in params)}: {expr}")
    calls = []
    seen: set[str] = set()
    while len(calls) < d.hidden_tests + 1:
        args = [_value(rng, role, kind.nonempty) for _, role in params]
        call = ", ".join(repr(v) for v in args)
        if call not in seen:
            seen.add(call)
            calls.append((call, fn(*args)))
    (example_call, example_out), hidden = calls[0], calls[1:]
    signature = ", ".join(f"{a}: {ANNOTATIONS[r]}" for a, r in params)
    prompt = (f"def {entry}({signature}) -> {kind.returns}:\n"
              f'    """{text}\n'
              f"    >>> {entry}({example_call})\n"
              f"    {example_out!r}\n"
              f'    """\n')
    body = f"    return {expr}\n"
    test = "def check(candidate):\n" + "".join(
        f"    assert candidate({call}) == {out!r}\n" for call, out in hidden)
    key = f"code:{kind.name}:" + ",".join(f"{k}={consts[k]}" for k in sorted(consts))
    return CodeProblem(key=key, family=f"{kind.name}/frame{fi}",
                       prompt=prompt, kind=kind.name, entry_point=entry, signature_prompt=prompt,
                       body=body, test=test)


def problems(n: int | None, seed: int, split: str = "train",
             difficulty: CodeDifficulty | dict[str, Any] | None = None) -> Iterator[CodeProblem]:
    """Distinct code problems of one split (``n=None``: without end)."""
    d = parse_difficulty(CodeDifficulty, difficulty, "code")
    if d.kinds is not None:
        unknown = sorted(set(d.kinds) - set(KIND_NAMES))
        if unknown or not d.kinds:
            raise ConfigError(f"code difficulty 'kinds': found {unknown or 'an empty list'}, "
                              f"expected names among: {', '.join(KIND_NAMES)}")
    drawer: Drawer[CodeProblem] = Drawer("code", lambda rng, s: make_problem(rng, s, d))
    return drawer.draw(n, seed, split)


def generate(n: int | None, seed: int, split: str = "train",
             difficulty: CodeDifficulty | dict[str, Any] | None = None) -> Iterator[dict[str, str]]:
    """Alpaca records for ``train``; HumanEval records (``LabCode/i``) for ``test``."""
    for i, problem in enumerate(problems(n, seed, split, difficulty)):
        yield problem.humaneval(f"LabCode/{i}") if split == "test" else problem.alpaca()
