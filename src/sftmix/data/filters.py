"""Record filters: named predicates that drop records and say why.

``FILTERS`` maps a name to a function ``example -> reason | None``: a reason
(a short string) drops the record and is reported, ``None`` keeps it. A
source lists the filters to apply in its ``filters:`` field; the loaded
source reports, per filter, how many records it dropped and the first reasons.

``no_code_math`` -- the reference study's ablation that removes code and maths
conversations from the general (ShareGPT) data, so that the general source
trains general ability only. The heuristic looks at every turn (user and
assistant) and drops the record on the first of these cues:

code
  * a fenced block (three backticks or tildes);
  * two or more lines that look like source code: a line starting with a
    statement keyword (``def``, ``class``, ``import``, ``from x import``,
    ``#include``, ``public``/``private``/``static``, ``function``, ``const``/
    ``let``/``var`` with ``=``, ``return ...;``, SQL ``SELECT ... FROM``), or a
    line ending in ``{`` / ``;`` / ``):`` with code punctuation in it;
  * an inline call with code syntax: ``print(``, ``console.log(``, ``printf(``,
    ``System.out``, ``std::``, an arrow function ``x => ...``, ``def f(``.

maths
  * LaTeX: ``\\frac``, ``\\sqrt``, ``\\sum``, ``\\int``, ``\\cdot``, ``\\times``,
    ``\\begin{equation|align}``, or a short ``$...$`` span holding an operator or ``^``
    (not one opening with a digit: ``$30,000 ... $5`` is money);
  * an equation with numbers: ``<number> <op> <number> =`` (``12 * 4 = 48``,
    ``3x + 2 = 11``), a GSM8K-style calculator note ``<<48/2=24>>``, or a power
    written with a caret (``2^n``, ``x^2``);
  * an explicit maths request: "solve for", "solve the equation", "derivative",
    "integral of", "simplify the expression", "quadratic", "prime factori",
    "calculate / compute / find the area|volume|probability|angle|sum|mean|...",
    "what is <number> <op> <number>".

What it does *not* catch: code described only in prose, pseudo-code without
punctuation, maths written out in words ("twelve times four"); and it drops
some general records that merely quote a snippet of code or a single equation
(which the study's ablation also removes). The tests pin hand-checked records
of the shared general files on both sides.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sftmix.data.records import Example
from sftmix.registry import Registry

FilterFn = Callable[[Example], str | None]
FILTERS: Registry[FilterFn] = Registry("filter")

_FENCE = re.compile(r"^\s*(```|~~~)", re.MULTILINE)
_CODE_LINE = re.compile(
    r"^\s*(?:"
    r"def \w+\s*\(|class \w+\s*[:(]|import [\w.]+|from [\w.]+ import |#include\s*[<\"]"
    r"|(?:public|private|protected|static)\s+[\w<>\[\]]+\s+\w+|function\s*\w*\s*\("
    r"|(?:const|let|var)\s+\w+\s*=|return\b[^\n]*;\s*$|SELECT\s.+\sFROM\s"
    r"|[\w.\[\]]+\s*(?:=|\+=|-=)\s*[^\n]*[;{]\s*$|[^\n]*\)\s*\{\s*$|(?:if|for|while|elif)\s[^\n]*\):?\s*$"
    r")",
    re.MULTILINE,
)
_INLINE_CODE = re.compile(
    r"\bprint\(|console\.log\(|\bprintf\(|System\.out\.|\bstd::|\w\s*=>\s*[\w{(]|\bdef \w+\(\w*"
)
_LATEX = re.compile(
    r"\\(?:frac|sqrt|sum|int|cdot|times|div|pm|leq|geq|neq|begin\{(?:equation|align))"
    # An inline $...$ span with an operator; a "$" followed by a digit is money, not maths.
    r"|\$(?![\d\s])[^$\n]{0,60}?[=+\-*/^][^$\n]{0,60}?\$"
)
_EQUATION = re.compile(
    r"\d+(?:\.\d+)?\s*[a-z]?\s*(?:[+\-*/×÷^x]|\*\*)\s*\(?\d+(?:\.\d+)?\)?\s*[a-z]?\s*=\s*-?\(?\d"
    r"|<<[^<>\n]*=[^<>\n]*>>"
    r"|\b\d+\^[\w(]|\b[a-z]\^\d"
)
_MATHS_REQUEST = re.compile(
    r"\bsolve (?:for|the equation)|\bderivative\b|\bintegral of\b|\bsimplify the expression\b"
    r"|\b(?:calculate|compute|find) the (?:area|volume|perimeter|probability|angle|sum|product|average"
    r"|mean|median|value of)\b"
    r"|\bquadratic\b|\bprime factori|\bwhat is -?\d+(?:\.\d+)?\s*(?:[+\-*/×÷^]|plus|minus|times|divided by)\s*-?\d",
    re.IGNORECASE,
)


def code_reason(text: str) -> str | None:
    """Why ``text`` looks like code, or None."""
    if _FENCE.search(text):
        return "code: fenced code block"
    lines = _CODE_LINE.findall(text)
    if len(lines) >= 2:
        return f"code: {len(lines)} lines of source code (e.g. {lines[0].strip()[:40]!r})"
    m = _INLINE_CODE.search(text)
    if m:
        return f"code: inline code {m.group(0).strip()!r}"
    return None


def maths_reason(text: str) -> str | None:
    """Why ``text`` looks like maths, or None."""
    m = _LATEX.search(text)
    if m:
        return f"maths: LaTeX {m.group(0)[:40]!r}"
    m = _EQUATION.search(text)
    if m:
        return f"maths: equation {m.group(0)[:40]!r}"
    m = _MATHS_REQUEST.search(text)
    if m:
        return f"maths: request {m.group(0)[:40]!r}"
    return None


@FILTERS.register("no_code_math")
def no_code_math(example: Example) -> str | None:
    for i, message in enumerate(example.messages):
        if message.role == "system":
            continue
        reason = code_reason(message.content) or maths_reason(message.content)
        if reason:
            return f"{reason} in turn {i} ({message.role})"
    return None


def apply_filters(examples: list[Example], names: list[str], *, limit: int = 5
                  ) -> tuple[list[Example], dict[str, dict[str, object]]]:
    """Run the named filters in order; returns the kept records and a per-filter report.

    The report holds ``dropped`` (a count) and ``examples`` (the first ``limit``
    dropped ids with their reasons), in the order the filters ran.
    """
    report: dict[str, dict[str, object]] = {}
    for name in names:
        fn = FILTERS.get(name)
        kept, dropped = [], []
        for ex in examples:
            reason = fn(ex)
            if reason is None:
                kept.append(ex)
            else:
                dropped.append({"id": ex.id, "reason": reason})
        report[name] = {"dropped": len(dropped), "examples": dropped[:limit]}
        examples = kept
    return examples, report
