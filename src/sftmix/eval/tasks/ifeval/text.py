"""Text measurements the instruction checkers share: words, sentences, paragraphs.

Counting conventions follow IFEval's: a word is a run of word characters
(``\\w+``, so "don't" is two words and "3.5" is two); a sentence ends at ``.``,
``!`` or ``?`` followed by space, except after common abbreviations, initials
and inside decimals; line breaks do not end sentences by themselves.
"""

from __future__ import annotations

import re

_ABBREVIATIONS = (
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "inc", "ltd",
    "co", "corp", "no", "fig", "approx", "dept", "est", "mt", "jan", "feb", "mar", "apr", "jun",
    "jul", "aug", "sep", "sept", "oct", "nov", "dec", "u.s", "u.k", "a.m", "p.m", "ph.d",
)
_WORD = re.compile(r"\w+")
# A candidate sentence end: terminal punctuation (and closing quotes/brackets) then space.
_END = re.compile(r"([.!?]+[\"'”’)\]]*)(\s+|$)")


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def count_words(text: str) -> int:
    return len(words(text))


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` (non-empty, stripped)."""
    flat = " ".join(text.split())
    sentences: list[str] = []
    start = 0
    for m in _END.finditer(flat):
        candidate = flat[start : m.end(1)]
        if m.group(1).startswith(".") and len(m.group(1)) == 1 and _is_abbreviation(candidate):
            continue
        if candidate.strip():
            sentences.append(candidate.strip())
        start = m.end()
    tail = flat[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def _is_abbreviation(candidate: str) -> bool:
    last = candidate[:-1].rsplit(" ", 1)[-1].lower().lstrip("(\"'")
    if last in _ABBREVIATIONS:
        return True
    # Initials such as "J." in "J. R. R. Tolkien".
    return len(last) == 1 and last.isalpha()


def count_sentences(text: str) -> int:
    return len(split_sentences(text))


def compare(value: int, relation: str, threshold: int) -> bool:
    """IFEval's two relations: ``less than`` is strict, ``at least`` is inclusive."""
    if relation == "less than":
        return value < threshold
    if relation == "at least":
        return value >= threshold
    raise ValueError(f"relation {relation!r}; expected 'less than' or 'at least'")


RELATIONS = ("less than", "at least")
