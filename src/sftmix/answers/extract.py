"""Answer extraction: small named filters composed into pipelines.

A filter maps the list of candidate strings found so far to a new list (a regex
finds every match, ``take_last`` keeps the final one, a normaliser rewrites each
candidate). A :class:`Pipeline` runs its filters over one completion and returns
the surviving candidate or ``None``. This is the lm-evaluation-harness way of
writing extraction: each step is trivial to test and the pipelines say exactly
what "strict" and "flexible" mean.

GSM8K
    ``GSM8K_STRICT`` takes the number after ``#### `` (the dataset's own answer
    marker); ``GSM8K_FLEXIBLE`` takes the last number anywhere in the
    completion. Both normalise the number (``$``, thousands commas, a trailing
    period, ``72.0`` -> ``72``) and :func:`numbers_equal` compares numerically,
    so ``3/4`` equals ``0.75``.

MATH
    :func:`last_boxed` takes the content of the last ``\\boxed{...}`` or
    ``\\fbox{...}`` (nested braces allowed); :func:`math_equiv` compares two
    answers after :func:`normalise_math_answer` (see ``math_normalise``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from sftmix.answers.math_normalise import matching_brace, normalise_math_answer

Filter = Callable[[list[str]], list[str]]


def regex(pattern: str, group: int = 1, flags: int = 0) -> Filter:
    """Every match of ``pattern`` in every candidate (the given group, or the whole match)."""
    compiled = re.compile(pattern, flags)

    def apply(candidates: list[str]) -> list[str]:
        found: list[str] = []
        for text in candidates:
            for m in compiled.finditer(text):
                found.append(m.group(group) if compiled.groups >= group else m.group(0))
        return found

    apply.__name__ = f"regex({pattern!r})"
    return apply


def take_first(candidates: list[str]) -> list[str]:
    return candidates[:1]


def take_last(candidates: list[str]) -> list[str]:
    return candidates[-1:]


def strip(candidates: list[str]) -> list[str]:
    return [c.strip() for c in candidates]


def normalise_numbers(candidates: list[str]) -> list[str]:
    """Canonical number strings; candidates that are not numbers are dropped."""
    out = []
    for c in candidates:
        n = normalise_number(c)
        if n is not None:
            out.append(n)
    return out


@dataclass(frozen=True)
class Pipeline:
    """A named sequence of filters applied to one completion."""

    name: str
    filters: tuple[Filter, ...]

    def __call__(self, text: str) -> str | None:
        candidates = [text]
        for f in self.filters:
            candidates = f(candidates)
            if not candidates:
                return None
        return candidates[0]


# A number as models write it: optional sign and currency, digits with optional
# thousands commas, an optional decimal part, or a simple fraction.
_NUMBER = r"-?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s?/\s?\d+)?"

GSM8K_STRICT = Pipeline(
    "strict-match",
    (regex(r"#### (\-?[0-9\.\,]+)"), take_first, normalise_numbers),
)
GSM8K_FLEXIBLE = Pipeline(
    "flexible-extract",
    (regex(rf"(?<![\w.])({_NUMBER})"), take_last, normalise_numbers),
)


def normalise_number(text: str) -> str | None:
    """``"$1,234."`` -> ``"1234"``, ``"72.0"`` -> ``"72"``, ``"3/4"`` -> ``"3/4"``; None if no number.

    The canonical form is the shortest exact rendering of the value, so two
    strings are equal exactly when their numbers are.
    """
    value = parse_number(text)
    if value is None:
        return None
    if value.denominator == 1:
        return str(value.numerator)
    # Terminating decimals are written as decimals, others as fractions.
    d = value.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d == 1:
        return _decimal_string(value)
    return f"{value.numerator}/{value.denominator}"


def _decimal_string(value: Fraction) -> str:
    sign = "-" if value < 0 else ""
    value = abs(value)
    whole, rest = divmod(value.numerator, value.denominator)
    digits = ""
    while rest:
        rest *= 10
        q, rest = divmod(rest, value.denominator)
        digits += str(q)
    return f"{sign}{whole}.{digits}"


def parse_number(text: str) -> Fraction | None:
    """The exact value of a number string as written in an answer, or None."""
    s = text.strip().replace("$", "").replace(" ", "").replace("\u2212", "-")
    s = s.rstrip(".")
    s = re.sub(r"(?<=\d),(?=\d{3}(?:\D|$))", "", s)
    if s.endswith("%"):
        s = s[:-1]
    if not s:
        return None
    try:
        if "/" in s:
            num, den = s.split("/", 1)
            if Fraction(den) == 0:
                return None
            return Fraction(num) / Fraction(den)
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None


def numbers_equal(a: str | None, b: str | None) -> bool:
    """Numeric equality of two answer strings (False if either is not a number)."""
    if a is None or b is None:
        return False
    x, y = parse_number(a), parse_number(b)
    return x is not None and y is not None and x == y


def gsm8k_reference(answer: str) -> str:
    """The normalised final answer of a GSM8K solution (the number after ``####``)."""
    marker = answer.rsplit("####", 1)
    if len(marker) != 2:
        raise ValueError("a GSM8K answer ends with '#### <number>'")
    value = normalise_number(marker[1])
    if value is None:
        raise ValueError(f"the GSM8K final answer {marker[1].strip()!r} is not a number")
    return value


# --- MATH -------------------------------------------------------------------

_BOX_COMMANDS = ("\\boxed", "\\fbox")


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}``/``\\fbox{...}`` (or ``\\boxed 5``), braces balanced."""
    start = max(text.rfind(cmd) for cmd in _BOX_COMMANDS)
    if start < 0:
        return None
    cmd = next(c for c in _BOX_COMMANDS if text.startswith(c, start))
    i = start + len(cmd)
    if text.startswith(" ", i) and not text.startswith(" {", i):
        # "\boxed 5" form: the argument runs to the next "$" or whitespace.
        m = re.match(r" ([^\s$]+)", text[i:])
        return m.group(1) if m else None
    while i < len(text) and text[i] == " ":
        i += 1
    if i >= len(text) or text[i] != "{":
        return None
    close = matching_brace(text, i)
    # None when unbalanced: the completion was cut off inside the box.
    return None if close is None else text[i + 1 : close]


def boxed_filter(candidates: list[str]) -> list[str]:
    return [b for c in candidates if (b := last_boxed(c)) is not None]


# When a model does not box its answer, the usual phrasings of a final answer.
_ANSWER_PHRASE = re.compile(
    r"(?:final answer|the answer|answer)\s*(?:is|:)\s*:?\s*(\$[^$]+\$|[^\n]+?)(?:\.\s|\.?$|\n)",
    re.IGNORECASE,
)


def answer_phrase_filter(candidates: list[str]) -> list[str]:
    found = []
    for c in candidates:
        matches = _ANSWER_PHRASE.findall(c)
        if matches:
            found.append(matches[-1].strip().strip("$"))
    return found


MATH_BOXED = Pipeline("boxed", (boxed_filter, strip))
MATH_ANSWER_PHRASE = Pipeline("answer-phrase", (answer_phrase_filter, strip))


def first_of(pipelines: Sequence[Pipeline], text: str) -> str | None:
    """The first pipeline's result that is not None (a fallback chain)."""
    for p in pipelines:
        value = p(text)
        if value is not None:
            return value
    return None


def math_equiv(a: str | None, b: str | None) -> bool:
    """Whether two MATH answers are the same after normalisation (numerically if both are numbers)."""
    if a is None or b is None:
        return False
    na, nb = normalise_math_answer(a), normalise_math_answer(b)
    if na == nb:
        return True
    return numbers_equal(_latex_number(na), _latex_number(nb))


def _latex_number(s: str) -> str | None:
    """``\\frac{1}{2}`` -> ``1/2`` so that fractions and decimals compare by value."""
    m = re.fullmatch(r"(-?)\\frac\{(-?\d+)\}\{(\d+)\}", s)
    if m:
        return f"{m.group(1)}{m.group(2)}/{m.group(3)}"
    if re.fullmatch(r"-?\d+(?:\.\d+)?(?:/\d+)?", s):
        return s
    return None
