"""Answer extraction on completions written the way chat models answer."""

from __future__ import annotations

import json

import pytest

from sftmix.answers.extract import (
    GSM8K_FLEXIBLE,
    GSM8K_STRICT,
    MATH_ANSWER_PHRASE,
    MATH_BOXED,
    Pipeline,
    gsm8k_reference,
    last_boxed,
    math_equiv,
    normalise_number,
    numbers_equal,
    regex,
    take_first,
    take_last,
)
from sftmix.answers.math_normalise import normalise_math_answer


@pytest.mark.parametrize(
    ("completion", "strict", "flexible"),
    [
        ("Natalia sold 48/2 = 24 clips in May.\nShe sold 48 + 24 = 72 clips.\n#### 72", "72", "72"),
        ("The total cost is 3 * $412 = $1,236.\n#### 1,236", "1236", "1236"),
        ("The answer is $1,234.", None, "1234"),
        ("So she has 18 dollars left.", None, "18"),
        ("He is 5 years younger, so the difference is -5.", None, "-5"),
        ("She ate 3/4 of the pie.", None, "0.75"),
        ("Each box holds 12.50 pounds, so 4 boxes weigh 50.0 pounds.", None, "50"),
        ("#### 72.\n\nQuestion: next one", "72", "72"),
        ("After 2 weeks (14 days) he saved $7 a day, so 14 * 7 = 98.\n#### 98\n", "98", "98"),
        ("I don't know.", None, None),
    ],
)
def test_gsm8k_strict_and_flexible(completion: str, strict: str | None,
                                   flexible: str | None) -> None:
    assert GSM8K_STRICT(completion) == strict
    assert GSM8K_FLEXIBLE(completion) == flexible


def test_strict_takes_the_first_marker_and_flexible_the_last_number() -> None:
    text = "#### 10\nActually, let me redo it: 6 + 6 = 12.\n#### 12"
    assert GSM8K_STRICT(text) == "10"
    assert GSM8K_FLEXIBLE(text) == "12"


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [("72.0", "72", True), ("$1,234.", "1234", True), ("3/4", "0.75", True),
     ("-5", "-5.00", True), ("18", "18.5", False), ("1,000,000", "1000000", True),
     ("abc", "1", False), (None, "1", False), ("1/0", "1", False)],
)
def test_numbers_equal(a: str | None, b: str | None, equal: bool) -> None:
    assert numbers_equal(a, b) is equal


def test_normalise_number_is_canonical() -> None:
    assert normalise_number(" $2,500.00 ") == "2500"
    assert normalise_number("1/3") == "1/3"
    assert normalise_number("0.50") == "0.5"
    assert normalise_number("twelve") is None


def test_gsm8k_reference_from_a_real_solution(shared_data) -> None:
    first = (shared_data / "gsm8k" / "test.jsonl").read_text().splitlines()[0]
    assert gsm8k_reference(json.loads(first)["answer"]) == "18"
    with pytest.raises(ValueError, match="####"):
        gsm8k_reference("no marker here")


def test_pipeline_is_made_of_named_filters() -> None:
    p = Pipeline("first-word", (regex(r"[a-z]+"), take_first))
    assert p("hello world") == "hello"
    assert Pipeline("last", (regex(r"\d"), take_last))("1 2 3") == "3"
    assert p("123") is None


@pytest.mark.parametrize(
    ("completion", "boxed"),
    [
        ("So the probability is $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"),
        ("First \\boxed{3}, but correcting: \\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt{3}}{2}"),
        ("The answer is \\fbox{7}.", "7"),
        ("Thus $\\boxed 5$.", "5"),
        ("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "\\left( 3, \\frac{\\pi}{2} \\right)"),
        ("cut off inside \\boxed{\\frac{1}{", None),
        ("no box at all", None),
    ],
)
def test_last_boxed(completion: str, boxed: str | None) -> None:
    assert last_boxed(completion) == boxed
    assert MATH_BOXED(completion) == (boxed.strip() if boxed else None)


@pytest.mark.parametrize(
    ("a", "b"),
    [("\\frac{1}{2}", "0.5"), ("\\dfrac{1}{2}", "\\frac12"), ("\\tfrac{3}{4}", "3/4"),
     ("\\left(3, 4\\right)", "(3,4)"), ("10\\text{ cm}", "10"), ("90^\\circ", "90"),
     ("x = 5", "5"), ("\\sqrt2", "\\sqrt{2}"), ("5.", "5"), ("1,000", "1000"),
     ("\\$18.90", "18.9"), ("50\\%", "50"), ("12 \\text{ square units}", "12"),
     ("-\\frac{1}{2}", "-0.5"), ("\\!\\!-2", "-2"), ("\\frac{\\sqrt{3}}{2}", "\\dfrac{\\sqrt3}{2}")],
)
def test_math_equivalent_forms(a: str, b: str) -> None:
    assert math_equiv(a, b), (normalise_math_answer(a), normalise_math_answer(b))


@pytest.mark.parametrize(("a", "b"), [("\\frac{1}{3}", "0.33"), ("2\\sqrt{2}", "\\sqrt{8}"),
                                      ("(3,4)", "(4,3)"), ("x^2+1", "x^2-1")])
def test_math_different_answers(a: str, b: str) -> None:
    assert not math_equiv(a, b)


def test_math_answer_phrase_fallback() -> None:
    assert MATH_ANSWER_PHRASE("Adding them up, the final answer is $\\frac{7}{2}$.") == "\\frac{7}{2}"
    assert MATH_ANSWER_PHRASE("The answer is 42.\nDone.") == "42"
