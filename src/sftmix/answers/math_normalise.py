"""Normalisation of MATH answers written in LaTeX, so that equal answers compare equal as strings.

The forms handled are the ones MATH reference solutions and model completions
use for the same value: ``\\dfrac``/``\\tfrac`` vs ``\\frac``, ``\\frac12`` vs
``\\frac{1}{2}``, ``a/b`` vs ``\\frac{a}{b}``, ``0.5`` vs ``\\frac{1}{2}``,
``\\left(``/``\\right)``, units and words in ``\\text{...}``, degrees, percent,
dollar signs, ``\\!`` and other spacing commands, ``x = 5`` vs ``5``,
``\\sqrt2`` vs ``\\sqrt{2}``, thousands commas, a trailing period. It is a string
normaliser, not a computer-algebra system: ``2\\sqrt{2}`` and ``\\sqrt{8}`` stay
different.
"""

from __future__ import annotations

import re
from math import gcd

# Spacing and sizing commands that never change a value.
_DROP = ("\\!", "\\,", "\\;", "\\:", "\\quad", "\\qquad", "\\displaystyle", "\\left", "\\right")
_UNIT_WORDS = (
    "units", "unit", "degrees", "degree", "cm", "meters", "meter", "inches", "inch",
    "feet", "foot", "square", "sq", "cents", "cent", "dollars", "dollar", "hours", "hour",
    "minutes", "minute", "seconds", "second", "days", "day", "miles", "mile", "mph",
)


def normalise_math_answer(answer: str) -> str:
    """A canonical string for a MATH answer (see the module docstring for the forms)."""
    s = answer.strip().replace("\n", "")
    s = s.rstrip(".").strip()
    s = s.replace("\\\\", "\\")
    s = s.replace("tfrac", "frac").replace("dfrac", "frac")
    for cmd in _DROP:
        s = s.replace(cmd, "")
    s = re.sub(r"\\(?:text|textbf|mbox|mathrm)\{\s*(.*?)\s*\}", r" \1", s).strip()
    s = _strip_degrees_and_percent(s)
    s = s.replace("\\$", "").replace("$", "")
    s = _strip_units(s)
    s = _strip_variable_assignment(s)
    s = s.replace(" ", "")
    s = s.rstrip(".")
    s = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", s) if re.fullmatch(r"-?[\d,]+(\.\d+)?", s) else s
    s = _fix_sqrt(s)
    s = _fix_fracs(s)
    s = _slash_to_frac(s)
    s = _decimal_to_frac(s)
    if s.startswith("."):
        s = "0" + s
    s = s.replace("{.", "{0.")
    return s


def _strip_degrees_and_percent(s: str) -> str:
    s = s.replace("^{\\circ}", "").replace("^\\circ", "").replace("\\circ", "")
    s = s.replace("\\%", "").replace("%", "")
    return s


def _strip_units(s: str) -> str:
    """Drop a trailing unit word (``5 cm``, ``12 square units``), only after a value."""
    words = "|".join(_UNIT_WORDS)
    pattern = re.compile(rf"\s*\b(?:{words})\b(?:\^\d|\^\{{\d\}})?\s*$")
    while True:
        stripped = pattern.sub("", s).strip()
        if stripped == s or not re.search(r"\d", stripped):
            return s
        s = stripped


def _strip_variable_assignment(s: str) -> str:
    """``x = 5`` -> ``5`` (only a short left side, so equations stay intact)."""
    parts = s.split("=")
    if len(parts) == 2 and len(parts[0].strip()) <= 2:
        return parts[1].strip()
    return s


def _fix_sqrt(s: str) -> str:
    """``\\sqrt2`` -> ``\\sqrt{2}``."""
    return re.sub(r"\\sqrt(\w)", r"\\sqrt{\1}", s)


def _fix_fracs(s: str) -> str:
    """``\\frac12`` -> ``\\frac{1}{2}``, ``\\frac1{2}`` -> ``\\frac{1}{2}``, ``\\frac{1}2`` -> ..."""
    parts = s.split("\\frac")
    out = parts[0]
    for part in parts[1:]:
        out += "\\frac"
        if not part:
            continue
        if part[0] == "{":
            # numerator is braced; the denominator may not be.
            close = matching_brace(part, 0)
            if close is None or close + 1 >= len(part):
                out += part
                continue
            num, rest = part[: close + 1], part[close + 1 :]
            if rest[0] != "{":
                rest = "{" + rest[0] + "}" + rest[1:]
            out += num + rest
        elif len(part) >= 2:
            a, b, rest = part[0], part[1], part[2:]
            if b == "{":
                out += "{" + a + "}" + b + rest
            else:
                out += "{" + a + "}{" + b + "}" + rest
        else:
            out += part
    return out


def matching_brace(s: str, start: int) -> int | None:
    """Index of the brace that closes the one at ``start``; None if it is never closed."""
    depth = 0
    for i in range(start, len(s)):
        if s[i] == "{":
            depth += 1
        elif s[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return None


def _slash_to_frac(s: str) -> str:
    """``3/4`` and ``-3/4`` -> ``\\frac{3}{4}`` when the whole answer is a simple fraction."""
    m = re.fullmatch(r"(-?)(\d+)/(\d+)", s)
    if m:
        return f"{m.group(1)}\\frac{{{m.group(2)}}}{{{m.group(3)}}}"
    return s


def _decimal_to_frac(s: str) -> str:
    """``0.5`` -> ``\\frac{1}{2}`` (exact decimals only), ``2.0`` -> ``2``."""
    m = re.fullmatch(r"(-?)(\d*)\.(\d+)", s)
    if not m:
        return s
    sign, whole, frac = m.group(1), m.group(2) or "0", m.group(3)
    den = 10 ** len(frac)
    num = int(whole) * den + int(frac)
    g = gcd(num, den)
    num, den = num // g, den // g
    if den == 1:
        return f"{sign}{num}" if num else "0"
    return f"{sign}\\frac{{{num}}}{{{den}}}"
