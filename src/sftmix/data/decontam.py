"""Decontamination: n-gram overlap between training records and evaluation sets.

A training record is *contaminated* when any n consecutive tokens of it
(n = 13 by default, the usual choice) also occur, consecutively, in a record
of an evaluation set. Tokens are whitespace-separated words, lowercased, with
punctuation kept as part of the word -- simple, and insensitive to how each
model tokenises. Every message of both sides counts: an evaluation record's
question *and* its reference solution (copying a GSM8K test solution into
training data contaminates as much as copying its question).

Records shorter than n words have no n-grams and can never match; a
contaminated record is reported with the eval record it overlaps and the first
overlapping n-gram. Whether contaminated records are dropped is the mixture's
``decontamination.drop``.

Public API::

    NgramIndex.from_examples(eval_examples, n=13)
    index.match(example) -> (eval_id, ngram) | None
    decontaminate(examples, index, *, drop) -> (kept, report)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sftmix.data.records import Example


def words(text: str) -> list[str]:
    return text.lower().split()


def _ngrams(tokens: list[str], n: int) -> Iterable[tuple[str, ...]]:
    return (tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


@dataclass
class NgramIndex:
    n: int
    # n-gram -> id of the first evaluation record that holds it
    grams: dict[tuple[str, ...], str]
    records: int = 0

    @classmethod
    def from_examples(cls, examples: Iterable[Example], n: int = 13) -> NgramIndex:
        index = cls(n, {})
        for ex in examples:
            index.records += 1
            for m in ex.messages:
                for gram in _ngrams(words(m.content), n):
                    index.grams.setdefault(gram, ex.id)
        return index

    def match(self, example: Example) -> tuple[str, tuple[str, ...]] | None:
        """The eval record and n-gram of the first overlap, or None."""
        grams = self.grams
        for m in example.messages:
            for gram in _ngrams(words(m.content), self.n):
                hit = grams.get(gram)
                if hit is not None:
                    return hit, gram
        return None


def decontaminate(examples: list[Example], index: NgramIndex, *, drop: bool, limit: int = 5
                  ) -> tuple[list[Example], dict[str, Any]]:
    """Find contaminated records; returns the records kept and a report for the manifest."""
    kept: list[Example] = []
    found: list[dict[str, str]] = []
    count = 0
    for ex in examples:
        hit = index.match(ex)
        if hit is None:
            kept.append(ex)
            continue
        count += 1
        if len(found) < limit:
            found.append({"id": ex.id, "eval_id": hit[0], "ngram": " ".join(hit[1])})
        if not drop:
            kept.append(ex)
    report = {"n": index.n, "contaminated": count, "dropped": count if drop else 0, "examples": found}
    return kept, report
