"""Continuous batching over a transformers causal LM's forward pass, on token ids.

:class:`BatchDecoder` is the loop behind :class:`sftmix.eval.engine.generation.HFGenerator`.
A benchmark's answers differ wildly in length, so the batch is a set of row slots
(:class:`~sftmix.eval.engine.kv_cache.SlotCache`) rather than a fixed group of prompts:

* a row that finishes (end-of-sequence token, stop string, token limit) leaves at
  once, and when a quarter of the slots are free the next prompts in the queue are
  prefilled together and join the running batch, so the matrix multiplications keep
  working on many rows until the queue runs dry;
* once few rows are left, greedy decoding lets each row carry prompt-lookup draft
  tokens (:mod:`sftmix.eval.engine.prompt_lookup`) that the model verifies in the same
  forward pass, so the tail of long answers is not decoded one token per pass.

Every row has its own position ids and attends only to its own columns, and a draft
token is kept only while it equals the argmax of the logits before it, so greedy
output is what one-at-a-time decoding produces (tested on CPU fp32). Sampling draws
from each row's own generator, so a sample does not depend on its batch neighbours.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from transformers import DynamicCache

from sftmix.eval.base import GenerationSpec
from sftmix.eval.engine.kv_cache import SlotCache
from sftmix.eval.engine.prompt_lookup import NgramLookup, choose_width

log = logging.getLogger(__name__)

# Slack kept in the cache beyond the longest prompt plus max new tokens, so that the
# holes left by rejected drafts seldom force the live columns to move.
CAPACITY_SLACK = 1.25
# Squeeze holes out of the cache when its live width exceeds the longest row's need by this.
REPACK_FACTOR = 1.5

Chooser = Callable[[torch.Tensor, list[torch.Generator]], torch.Tensor]


@dataclass
class _Row:
    unit: int
    lookup: NgramLookup
    generator: torch.Generator
    position: int  # position id of ``pending``
    pending: int = 0  # the last chosen token, not yet in the cache
    out: list[int] = field(default_factory=list)


class BatchDecoder:
    """Decodes many prompts through ``model`` with at most ``slots`` rows in flight.

    ``draft_tokens`` caps the prompt-lookup drafts per row and step (0 disables them);
    ``fixed_cost`` is a forward pass's cost independent of its size, in units of the
    cost of one token, which decides when drafts pay (see
    :func:`~sftmix.eval.engine.prompt_lookup.choose_width`).
    """

    def __init__(self, model: torch.nn.Module, *, slots: int, eos_ids: set[int], pad_id: int,
                 draft_tokens: int = 8, fixed_cost: float = 8.0) -> None:
        self.model = model
        self.slots = slots
        self.eos_ids = eos_ids
        self.pad_id = pad_id
        self.draft_tokens = draft_tokens
        self.fixed_cost = fixed_cost
        self.device = next(model.parameters()).device
        eager = getattr(model.config, "_attn_implementation", "sdpa") == "eager"
        self.mask_dtype = next(model.parameters()).dtype if eager else None
        # Counts of the last run: forward passes (prefills included), tokens emitted,
        # draft tokens verified and accepted, cache repacks.
        self.stats = dict.fromkeys(("forwards", "tokens", "drafted", "accepted", "repacks"), 0)

    def run(self, prompts: Sequence[list[int]], spec: GenerationSpec, seeds: Sequence[int],
            choose: Chooser, stopped: Callable[[list[int]], bool],
            done: Callable[[int, list[int]], None]) -> None:
        """Decode every prompt; ``done(index, tokens)`` is called as each one finishes.

        ``choose`` picks one token per row from last-position logits (sampling);
        greedy decoding (``spec.temperature <= 0``) takes the argmax itself so it can
        verify drafts. ``stopped(tokens)`` says whether a row's output hit a stop string.
        """
        greedy = spec.temperature <= 0
        self.stats = dict.fromkeys(self.stats, 0)
        longest = max(len(p) for p in prompts)
        capacity = int(CAPACITY_SLACK * (longest + spec.max_new_tokens)) + 16
        cache = SlotCache(self.model.config, self.slots, capacity, self.device)
        queue = deque(range(len(prompts)))
        rows: list[_Row] = []

        def finish(row: _Row, token: int) -> bool:
            row.out.append(token)
            self.stats["tokens"] += 1
            return (token in self.eos_ids or len(row.out) >= spec.max_new_tokens
                    or stopped(row.out))

        while queue or rows:
            free = self.slots - len(rows)
            if queue and (not rows or free >= max(1, self.slots // 4)):
                picked = [queue.popleft() for _ in range(min(free, len(queue)))]
                rows += self._admit(cache, [prompts[i] for i in picked], picked, seeds, choose,
                                    greedy, finish, done)
                if not rows:
                    continue
            width, drafts = 1, [[] for _ in rows]
            if greedy and self.draft_tokens > 0:
                drafts = [r.lookup.draft(min(self.draft_tokens, spec.max_new_tokens - len(r.out) - 1))
                          for r in rows]
                width = choose_width(drafts, [r.lookup.accept for r in rows], self.fixed_cost)
            preds = self._step(cache, rows, drafts, width, choose, greedy)
            dead = []
            for j, (row, pred) in enumerate(zip(rows, preds, strict=True)):
                draft = drafts[j][:width - 1]
                accepted = 0
                while accepted < len(draft) and draft[accepted] == pred[accepted]:
                    accepted += 1
                if draft:
                    row.lookup.record(len(draft), accepted)
                    self.stats["drafted"] += len(draft)
                    self.stats["accepted"] += accepted
                elif drafts[j]:  # not verified this step: still learn whether it would have been
                    row.lookup.record(1, int(drafts[j][0] == pred[0]))
                cache.reject(j, width - 1 - accepted)
                row.position += accepted + 1
                emitted = pred[:accepted + 1]
                if any(finish(row, t) for t in emitted):
                    dead.append(j)
                    done(row.unit, row.out)
                    continue
                row.pending = emitted[-1]
                row.lookup.extend(emitted)
            if dead:
                order = cache.remove(dead)
                rows = [rows[i] for i in order]
            if width > 1 and rows:
                self.stats["repacks"] += self._maybe_repack(cache)

    def _admit(self, cache: SlotCache, prompts: list[list[int]], units: list[int],
               seeds: Sequence[int], choose: Chooser, greedy: bool,
               finish: Callable[[_Row, int], bool], done: Callable[[int, list[int]], None]) -> list[_Row]:
        """Prefill new prompts together and move the unfinished ones into the running batch."""
        n, width = len(prompts), max(len(p) for p in prompts)
        ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        for r, p in enumerate(prompts):
            ids[r, width - len(p):] = torch.tensor(p, dtype=torch.long)
            mask[r, width - len(p):] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        prefill = DynamicCache(config=self.model.config)
        self.stats["forwards"] += 1
        logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                            cache=prefill, use_cache=True, logits_to_keep=1).logits[:, -1]
        new = [_Row(unit=u, lookup=NgramLookup(p), position=len(p),
                    generator=torch.Generator().manual_seed(seeds[u]))
               for u, p in zip(units, prompts, strict=True)]
        tokens = logits.argmax(dim=-1) if greedy else choose(logits, [r.generator for r in new])
        keep = []
        for j, (row, token) in enumerate(zip(new, tokens.tolist(), strict=True)):
            if finish(row, token):
                done(row.unit, row.out)
            else:
                row.pending = token
                row.lookup.extend([token])
                keep.append(j)
        if keep:
            cache.admit(prefill, [len(p) for p in prompts], keep)
        return [new[j] for j in keep]

    def _step(self, cache: SlotCache, rows: list[_Row], drafts: list[list[int]], width: int,
              choose: Chooser, greedy: bool) -> list[list[int]]:
        """One forward of ``width`` tokens per row; the model's choice after each of them."""
        inputs = [[r.pending, *d[:width - 1]] for r, d in zip(rows, drafts, strict=True)]
        # A row with a shorter draft is padded with its own token: any filler is safe,
        # since a token is kept only if it is what the model itself would choose.
        inputs = [x + [x[0]] * (width - len(x)) for x in inputs]
        ids = torch.tensor(inputs, dtype=torch.long, device=self.device)
        offsets = torch.arange(width, device=self.device)
        positions = torch.tensor([r.position for r in rows], device=self.device)[:, None] + offsets
        cache.reserve(width)
        self.stats["forwards"] += 1
        mask = cache.attention_mask(width, self.mask_dtype)
        logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                            cache=cache.cache, use_cache=True).logits
        cache.advance(width)
        if greedy:
            return logits.argmax(dim=-1).tolist()
        return [[t] for t in choose(logits[:, -1], [r.generator for r in rows]).tolist()]

    @staticmethod
    def _maybe_repack(cache: SlotCache) -> bool:
        live = cache.valid[:cache.rows, cache.start:cache.end]
        need = int(live.sum(dim=1).max())
        if cache.end - cache.start > REPACK_FACTOR * need + 16:
            cache.repack()
            return True
        return False
