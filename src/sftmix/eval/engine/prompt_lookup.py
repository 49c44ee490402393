"""Prompt-lookup drafts for exact greedy speculative decoding.

A sequence's continuation often repeats text it has already seen: a GSM8K answer
copies the question's numbers and names, code copies identifiers, and a small model
stuck in a loop repeats itself verbatim. :class:`NgramLookup` proposes, for a row,
the tokens that followed the most recent earlier occurrence of its last few tokens.
The model then checks all of them in one forward pass, and the engine keeps a draft
token only while it equals the argmax of the logits before it, so the output is
plain greedy decoding's by construction; drafts only change how many forward passes
it takes.

:func:`choose_width` decides how many tokens per row a forward pass carries. On a CPU
a forward's cost is roughly a fixed part plus a part per token, so verifying drafts
is nearly free when few rows are left in the batch and pure waste when the batch
already fills the matrix units; the choice weighs each row's expected accepted
tokens (its recent acceptance rate) against that cost.
"""

from __future__ import annotations

from collections.abc import Sequence

# The longest and shortest suffix looked up; a single token matches too often to help.
MAX_NGRAM = 3
MIN_NGRAM = 2
# A row's prior chance that a draft token is accepted, and how fast the estimate moves.
PRIOR_ACCEPT = 0.4
ACCEPT_DECAY = 0.7


class NgramLookup:
    """The tokens of one row (prompt and generated), indexed by their 2- and 3-grams."""

    def __init__(self, tokens: Sequence[int]) -> None:
        self.tokens = list(tokens)
        self.index: dict[tuple[int, ...], int] = {}
        self.indexed = 0  # n-grams ending before this position are in the index
        self.accept = PRIOR_ACCEPT

    def extend(self, tokens: Sequence[int]) -> None:
        self.tokens.extend(tokens)

    def _catch_up(self) -> None:
        # Index every n-gram that ends before the last token, so that a lookup of the
        # current suffix finds an *earlier* occurrence, the most recent one winning.
        toks = self.tokens
        for end in range(self.indexed, len(toks) - 1):
            for n in range(MIN_NGRAM, MAX_NGRAM + 1):
                if end + 1 >= n:
                    self.index[tuple(toks[end + 1 - n:end + 1])] = end
        self.indexed = max(self.indexed, len(toks) - 1)

    def draft(self, limit: int) -> list[int]:
        """Up to ``limit`` tokens that followed the latest earlier match of the suffix."""
        if limit <= 0:
            return []
        self._catch_up()
        toks = self.tokens
        for n in range(MAX_NGRAM, MIN_NGRAM - 1, -1):
            if len(toks) < n:
                continue
            end = self.index.get(tuple(toks[-n:]))
            if end is not None:
                return toks[end + 1:end + 1 + limit]
        return []

    def record(self, proposed: int, accepted: int) -> None:
        """Update the row's acceptance estimate after a verification."""
        if proposed:
            self.accept = ACCEPT_DECAY * self.accept + (1 - ACCEPT_DECAY) * accepted / proposed


def choose_width(drafts: Sequence[Sequence[int]], accept: Sequence[float], fixed_cost: float) -> int:
    """Tokens per row (1 + drafts) that maximise expected tokens per unit of forward cost.

    A forward over ``rows`` rows of ``width`` tokens is taken to cost
    ``fixed_cost + rows * width`` token-units; a row with acceptance rate ``p`` is
    expected to gain ``p + p**2 + ...`` tokens from its drafts (a draft counts only
    while all before it were accepted).
    """
    rows = len(drafts)
    longest = max((len(d) for d in drafts), default=0)
    best, best_rate = 1, rows / (fixed_cost + rows)
    gains = [0.0] * rows
    for width in range(2, longest + 2):
        for r, (draft, p) in enumerate(zip(drafts, accept, strict=True)):
            if len(draft) >= width - 1:
                gains[r] += p ** (width - 1)
        rate = (rows + sum(gains)) / (fixed_cost + rows * width)
        if rate > best_rate:
            best, best_rate = width, rate
    return best
