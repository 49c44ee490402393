"""Tokenisation with exact assistant-only labels.

A chat template renders an example into ``(text, trainable)`` segments. The
concatenated text is tokenised **once**, as a whole, with character offsets, so
the token ids are exactly what the model's tokenizer produces for the
conversation (no per-segment artefacts such as a second prefix space). Each
token is then labelled from the characters it covers:

* a token whose characters all lie in non-trainable segments gets label -100;
* a token with any character from a trainable segment (the assistant's words
  and its end-of-turn marker) is trained on, so no assistant character ever
  goes untrained.

Pre-tokenizers split at spaces, newlines and special tokens, which is where
templates put their segment boundaries, so a token almost never straddles a
boundary. When one does (SmolLM2's tokenizer merges ``"\\n" + "\\n  Hello"``
into one ``"\\n\\n "`` token, for instance), the rule above trains on it and
the merge is counted in :class:`TokenizeStats` (``boundary_merges``).

The first token of an example is never trained on: nothing precedes it to
predict it from, and keeping it at -100 means a packed row never asks one
example to predict the next one's first token.

Truncation keeps the first ``max_length`` tokens. An example left without a
trainable token is dropped (``tokenize_example`` returns None) and counted,
never silently trained as a no-op.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from sftmix.data.records import Example
from sftmix.errors import SftmixError
from sftmix.templates import ChatTemplate, Segment

log = logging.getLogger(__name__)

IGNORE_INDEX = -100
"""Label of a position that does not contribute to the loss (PyTorch's cross-entropy default)."""

_BATCH = 512  # texts per call to the Rust tokenizer, which encodes a batch on all cores


@dataclass(frozen=True, slots=True)
class TokenizedExample:
    """Token ids and labels of one example; ``labels[i]`` is ``input_ids[i]`` or -100."""

    input_ids: list[int]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def num_trainable(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE_INDEX)


@dataclass
class TokenizeStats:
    """What tokenisation did to a set of examples (recorded in the data manifest)."""

    examples: int = 0
    """Examples given."""
    kept: int = 0
    """Examples returned (with at least one trainable token)."""
    tokens: int = 0
    """Tokens of the kept examples, after truncation."""
    trainable_tokens: int = 0
    """Tokens with a label, after truncation."""
    truncated: int = 0
    """Kept examples that lost tokens to ``max_length``."""
    dropped_no_trainable: int = 0
    """Examples dropped because no trainable token survived truncation."""
    boundary_merges: int = 0
    """Tokens spanning a prompt/assistant boundary (trained on; see module docstring)."""
    dropped_ids: list[str] = field(default_factory=list)
    """Ids of the dropped examples (first 100)."""

    def add(self, other: TokenizeStats) -> None:
        for name in ("examples", "kept", "tokens", "trainable_tokens", "truncated",
                     "dropped_no_trainable", "boundary_merges"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.dropped_ids = (self.dropped_ids + other.dropped_ids)[:100]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _bos_prefix(tokenizer: Any) -> list[int]:
    """The BOS id if the tokenizer adds one by default (Llama-style), else nothing."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return []
    with_special = tokenizer("a", add_special_tokens=True)["input_ids"]
    without = tokenizer("a", add_special_tokens=False)["input_ids"]
    return [bos] if with_special[:1] == [bos] and without[:1] != [bos] else []


def _segments(example: Example, template: ChatTemplate) -> list[Segment]:
    try:
        return template.segments(example.messages)
    except SftmixError as exc:
        raise SftmixError(f"example {example.id}: {exc}") from None
    except ValueError as exc:
        raise SftmixError(f"example {example.id}: template '{template.name}': {exc}") from None


def _label(segments: Sequence[Segment], ids: list[int], offsets: Sequence[tuple[int, int]],
           bos: list[int]) -> tuple[list[int], list[int], int]:
    """Labels for the whole-text tokenisation from the segments' character ranges."""
    text_len = sum(len(t) for t, _ in segments)
    flags = np.zeros(text_len + 1, dtype=np.int32)
    pos = 0
    for text, trainable in segments:
        if trainable:
            flags[pos + 1: pos + 1 + len(text)] = 1
        pos += len(text)
    cum = np.cumsum(flags)  # cum[j] = trainable characters among text[:j]
    starts = np.fromiter((s for s, _ in offsets), dtype=np.int64, count=len(offsets))
    ends = np.fromiter((e for _, e in offsets), dtype=np.int64, count=len(offsets))
    covered = cum[ends] - cum[starts]
    # A zero-width token (some tokenizers give special tokens empty spans) takes the
    # label of the character it sits at.
    empty = ends <= starts
    at = np.minimum(starts, text_len - 1) if text_len else starts
    covered[empty] = (cum[at[empty] + 1] - cum[at[empty]]) if text_len else 0
    trainable = covered > 0
    merges = int(np.count_nonzero(trainable & ~empty & (covered < ends - starts)))
    labels = np.where(trainable, np.asarray(ids, dtype=np.int64), IGNORE_INDEX).tolist()
    input_ids = bos + list(ids)
    labels = [IGNORE_INDEX] * len(bos) + labels
    if labels:
        labels[0] = IGNORE_INDEX
    return input_ids, labels, merges


def _finish(example: Example, input_ids: list[int], labels: list[int], max_length: int,
            merges: int, stats: TokenizeStats) -> TokenizedExample | None:
    stats.examples += 1
    truncated = len(input_ids) > max_length
    input_ids, labels = input_ids[:max_length], labels[:max_length]
    trainable = sum(1 for x in labels if x != IGNORE_INDEX)
    if trainable == 0:
        stats.dropped_no_trainable += 1
        if len(stats.dropped_ids) < 100:
            stats.dropped_ids.append(example.id)
        return None
    stats.kept += 1
    stats.truncated += int(truncated)
    stats.tokens += len(input_ids)
    stats.trainable_tokens += trainable
    stats.boundary_merges += merges
    return TokenizedExample(input_ids, labels)


def _tokenize_batch(examples: Sequence[Example], tokenizer: Any, template: ChatTemplate,
                    max_length: int, bos: list[int] | None = None
                    ) -> tuple[list[TokenizedExample | None], TokenizeStats]:
    stats = TokenizeStats()
    bos = _bos_prefix(tokenizer) if bos is None else bos
    bos_text = getattr(tokenizer, "bos_token", None)
    all_segments = [_segments(ex, template) for ex in examples]
    texts = ["".join(t for t, _ in segs) for segs in all_segments]
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    out: list[TokenizedExample | None] = []
    for ex, segs, text, ids, offsets in zip(examples, all_segments, texts, enc["input_ids"],
                                            enc["offset_mapping"], strict=True):
        prefix = [] if bos_text and text.startswith(bos_text) else bos
        input_ids, labels, merges = _label(segs, ids, offsets, prefix)
        out.append(_finish(ex, input_ids, labels, max_length, merges, stats))
    return out, stats


def _check(tokenizer: Any, max_length: int) -> None:
    if max_length < 2:
        raise SftmixError(f"max_length is {max_length}; expected at least 2 tokens")
    if not getattr(tokenizer, "is_fast", False):
        raise SftmixError(
            f"tokenizer {type(tokenizer).__name__} is not a fast (Rust) tokenizer; exact label "
            f"masking needs character offsets, which only fast tokenizers give"
        )


def tokenize_example(example: Example, tokenizer: Any, template: ChatTemplate,
                     max_length: int) -> TokenizedExample | None:
    """Tokenise one example; labels on assistant tokens only; None if none survives truncation."""
    _check(tokenizer, max_length)
    out, _ = _tokenize_batch([example], tokenizer, template, max_length)
    return out[0]


def _worker(args: tuple[list[Example], Any, ChatTemplate, int, list[int]]
            ) -> tuple[list[TokenizedExample | None], TokenizeStats]:
    return _tokenize_batch(*args)


def tokenize_examples(examples: Iterable[Example], tokenizer: Any, template: ChatTemplate,
                      max_length: int, num_proc: int = 1, progress: bool | None = None
                      ) -> tuple[list[TokenizedExample], TokenizeStats]:
    """Tokenise many examples; dropped ones are left out of the list and counted in the stats.

    Texts go to the tokenizer in batches (the Rust tokenizer encodes a batch in
    parallel); ``num_proc > 1`` also renders templates in that many processes,
    which helps when a Jinja chat template dominates. A progress bar shows
    for large inputs (``progress=None``) or when asked.
    """
    _check(tokenizer, max_length)
    items = list(examples)
    chunks = [items[i: i + _BATCH] for i in range(0, len(items), _BATCH)]
    stats = TokenizeStats()
    kept: list[TokenizedExample] = []
    show = len(chunks) >= 20 if progress is None else progress
    bar = tqdm(total=len(items), desc="tokenizing", unit="example", disable=not show)
    bos = _bos_prefix(tokenizer)
    with ExitStack() as stack:
        if num_proc > 1 and len(chunks) > 1:
            pool = stack.enter_context(ProcessPoolExecutor(num_proc, mp_context=get_context("spawn")))
            results: Iterable[tuple[list[TokenizedExample | None], TokenizeStats]] = pool.map(
                _worker, [(c, tokenizer, template, max_length, bos) for c in chunks])
        else:
            results = (_tokenize_batch(c, tokenizer, template, max_length, bos) for c in chunks)
        for out, part in results:
            kept.extend(t for t in out if t is not None)
            stats.add(part)
            bar.update(part.examples)
    bar.close()
    if stats.dropped_no_trainable:
        log.warning("%d of %d examples have no trainable token within max_length=%d and were "
                    "dropped (e.g. %s)", stats.dropped_no_trainable, stats.examples, max_length,
                    ", ".join(stats.dropped_ids[:3]))
    if stats.boundary_merges:
        # The usual cause: a cue ending in whitespace ("ASSISTANT: ") before a reply that starts
        # with whitespace (an indented code body). Training sees one merged token there, but a
        # generation prompt ends at the cue, so the model starts from a split it never saw.
        log.warning("%d tokens of %d examples straddle the boundary between the template's "
                    "prompt and the assistant's reply; at evaluation the prompt ends at that "
                    "boundary, so the model starts from a token split it was not trained on. "
                    "End the template's assistant cue without whitespace (e.g. 'ASSISTANT:' "
                    "rather than 'ASSISTANT: ')", stats.boundary_merges, stats.examples)
    return kept, stats


def count_tokens_fn(tokenizer: Any, template: ChatTemplate,
                    max_length: int) -> Callable[[Example], tuple[int, int]]:
    """A function giving an example's ``(tokens, trainable tokens)`` after truncation.

    ``(tokens, 0)`` means the example would be dropped for having no trainable token.
    """
    _check(tokenizer, max_length)

    bos = _bos_prefix(tokenizer)

    def count(example: Example) -> tuple[int, int]:
        out, _ = _tokenize_batch([example], tokenizer, template, max_length, bos)
        if out[0] is None:
            segs = _segments(example, template)
            n = len(tokenizer("".join(t for t, _ in segs), add_special_tokens=False)["input_ids"])
            return min(n + len(bos), max_length), 0
        return len(out[0]), out[0].num_trainable

    return count
