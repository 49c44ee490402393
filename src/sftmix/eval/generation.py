"""The generation engine behind :data:`sftmix.eval.base.GenerateFn`.

Two backends share one interface, ``generate(prompts, spec) -> [[str] * spec.n]``:

* :class:`HFGenerator` -- transformers models on CPU or one GPU. It runs its own
  decode loop over the model's forward pass rather than ``model.generate``,
  because a benchmark's answers differ wildly in length: sequences are sorted by
  prompt length so a batch carries little padding, the batch size adapts to the
  prompt length (a token budget), and a sequence that has finished (end-of-turn
  token or a stop string) leaves the batch at once -- its rows are dropped from
  the KV cache, as are left-padding columns no remaining row needs. Greedy
  decoding stays exactly what one-at-a-time decoding produces (tested on CPU
  fp32): every row gets its own position ids, padding is masked, and nothing
  about a row depends on its neighbours.
* :class:`VLLMGenerator` -- used when ``vllm`` is importable (GPU machines); it
  renders prompts the same way and hands them to vLLM.

A prompt that is a message list is rendered with the model's training chat
template (:class:`PromptRenderer`); a string prompt is used as is.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm

from sftmix.data.records import Message
from sftmix.errors import SftmixError
from sftmix.eval.base import GenerateFn, GenerationSpec
from sftmix.templates import ChatTemplate, get_template

log = logging.getLogger(__name__)

BACKENDS = ("auto", "hf", "vllm")
# Written next to the weights by a training stage; its settings name the chat template.
STAGE_CONFIG_FILE = "stage_config.json"


class PromptRenderer:
    """Turns an :class:`~sftmix.eval.base.EvalItem` prompt into the text the model is given."""

    def __init__(self, tokenizer, template: ChatTemplate | None = None) -> None:
        self.tokenizer = tokenizer
        self.template = template or get_template(
            "model" if getattr(tokenizer, "chat_template", None) else "vicuna_v1.1", tokenizer)

    @classmethod
    def for_model(cls, model_dir: Path, tokenizer, template: str | dict | None = None) -> PromptRenderer:
        """The template the model was trained with, unless ``template`` overrides it.

        Order: the override; ``settings.template`` in the stage's ``stage_config.json``;
        the tokenizer's own chat template; the reference study's ``vicuna_v1.1``.
        """
        info_file = model_dir / STAGE_CONFIG_FILE
        if template is None and info_file.is_file():
            try:
                template = (json.loads(info_file.read_text()).get("settings") or {}).get("template")
            except (json.JSONDecodeError, AttributeError) as exc:
                raise SftmixError(f"{info_file}: not a stage config ({exc}); expected a JSON "
                                  'object with "settings": {"template": ...}') from None
        if template is None:
            return cls(tokenizer)
        return cls(tokenizer, get_template(template, tokenizer))

    def render(self, prompt: list[Message] | str) -> str:
        if isinstance(prompt, str):
            return prompt
        return self.template.render_prompt(prompt)

    def stops_for(self, prompts: Sequence[list[Message] | str]) -> list[str]:
        """The template's end-of-turn strings, when any prompt went through the template."""
        if any(not isinstance(p, str) for p in prompts):
            return list(self.template.stop_strings)
        return []

    def encode(self, text: str) -> list[int]:
        # A template that writes the BOS token itself must not get a second one.
        bos = getattr(self.tokenizer, "bos_token", None)
        special = not (bos and text.startswith(bos))
        return list(self.tokenizer(text, add_special_tokens=special)["input_ids"])


def _unit_seed(seed: int, prompt: int, sample: int) -> int:
    # Each (prompt, sample) draws from its own stream, so a sample does not depend on
    # which other sequences happened to share its batch.
    digest = hashlib.sha256(f"{seed}:{prompt}:{sample}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def _filter_top_p(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Zero the tail of each row's distribution beyond cumulative mass ``top_p``."""
    if top_p >= 1.0:
        return probs
    sorted_p, order = probs.sort(dim=-1, descending=True)
    cumulative = sorted_p.cumsum(dim=-1)
    # Keep a token if the mass before it is below top_p (so the top token is always kept).
    sorted_p[(cumulative - sorted_p) >= top_p] = 0.0
    return torch.zeros_like(probs).scatter(-1, order, sorted_p)


@functools.cache
def _growing_layer_class() -> type:
    # Defined on first use: importing transformers' cache module is slow.
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        """A KV cache layer with room reserved up front: a new token is written in place.

        transformers' DynamicLayer concatenates, copying the whole cache of every layer
        at every step; with the final length known (prompt + max new tokens) one
        allocation per batch suffices. Attention reads a view of the filled part.
        """

        def __init__(self, capacity: int) -> None:
            super().__init__()
            self.capacity = capacity
            self.length = 0

        def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
            rows, heads, _, dim = key_states.shape
            self.device = key_states.device
            self._k = key_states.new_empty((rows, heads, self.capacity, dim))
            self._v = value_states.new_empty((rows, heads, self.capacity, value_states.shape[-1]))
            self.is_initialized = True

        def _views(self) -> None:
            self.keys = self._k[:, :, :self.length]
            self.values = self._v[:, :, :self.length]

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: object,
                   **kwargs: object) -> tuple[torch.Tensor, torch.Tensor]:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            end = self.length + key_states.shape[-2]
            if end > self._k.shape[-2]:  # more than reserved: grow (not on the engine's path)
                more = end - self._k.shape[-2]
                self._k = torch.cat([self._k, self._k.new_empty((*self._k.shape[:2], more, self._k.shape[-1]))], 2)
                self._v = torch.cat([self._v, self._v.new_empty((*self._v.shape[:2], more, self._v.shape[-1]))], 2)
            self._k[:, :, self.length:end] = key_states
            self._v[:, :, self.length:end] = value_states
            self.length = end
            self._views()
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return self.length if self.is_initialized else 0

        def batch_select_indices(self, indices: torch.Tensor) -> None:
            if self.is_initialized:
                self._k, self._v = self._k[indices], self._v[indices]
                self._views()

        def drop_front(self, columns: int) -> None:
            """Forget the first ``columns`` positions (padding no row attends to any more)."""
            self._k, self._v = self._k[:, :, columns:], self._v[:, :, columns:]
            self.length -= columns
            self._views()

    return GrowingLayer


class HFGenerator:
    """Batched decoding with a KV cache through a transformers causal LM."""

    def __init__(self, model: torch.nn.Module, tokenizer, renderer: PromptRenderer | None = None, *,
                 batch_size: int = 32, max_batch_tokens: int = 32768, progress: bool = True) -> None:
        if batch_size < 1 or max_batch_tokens < 1:
            raise SftmixError(f"generation: batch_size ({batch_size}) and max_batch_tokens "
                              f"({max_batch_tokens}) must be positive")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.renderer = renderer or PromptRenderer(tokenizer)
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.progress = progress
        self.device = next(model.parameters()).device
        self.eos_ids = self._eos_ids()
        self.eos_texts = {tokenizer.convert_ids_to_tokens(i) for i in self.eos_ids}
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else min(self.eos_ids, default=0)

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        for source in (getattr(self.model, "generation_config", None), self.model.config):
            value = getattr(source, "eos_token_id", None) if source is not None else None
            if isinstance(value, int):
                ids.add(value)
            elif value:
                ids.update(int(v) for v in value)
        if self.tokenizer.eos_token_id is not None:
            ids.add(int(self.tokenizer.eos_token_id))
        return ids

    # -- the GenerateFn interface ---------------------------------------------------
    def __call__(self, prompts: Sequence[list[Message] | str], spec: GenerationSpec) -> list[list[str]]:
        texts = [self.renderer.render(p) for p in prompts]
        stops = tuple(dict.fromkeys((*spec.stop, *self.renderer.stops_for(prompts))))
        # An end-of-sequence token already ends a row by its id; matching its text too
        # would only cost a decode per row and step.
        stops = tuple(s for s in stops if s not in self.eos_texts)
        encoded = [self.renderer.encode(t) for t in texts]
        # One unit per (prompt, sample); longest first so the batch size settles early.
        units = [(i, s) for i in range(len(prompts)) for s in range(spec.n)]
        units.sort(key=lambda u: (-len(encoded[u[0]]), u))
        results: list[list[str]] = [[""] * spec.n for _ in prompts]
        bar = tqdm(total=len(units), desc="generate", unit="seq", disable=not self.progress,
                   leave=False)
        start = 0
        with torch.inference_mode():
            while start < len(units):
                size = self._batch_rows(len(encoded[units[start][0]]), spec.max_new_tokens)
                batch = units[start:start + size]
                outs = self._decode([encoded[i] for i, _ in batch], spec, stops,
                                    [_unit_seed(spec.seed, i, s) for i, s in batch])
                for (i, s), ids in zip(batch, outs, strict=True):
                    results[i][s] = self._text(ids, stops)
                bar.update(len(batch))
                start += size
        bar.close()
        return results

    def _batch_rows(self, prompt_len: int, max_new: int) -> int:
        return max(1, min(self.batch_size, self.max_batch_tokens // max(1, prompt_len + max_new)))

    def _text(self, ids: list[int], stops: Sequence[str]) -> str:
        ids = [t for t in ids if t not in self.eos_ids]
        raw = self.tokenizer.decode(ids, skip_special_tokens=False)
        cuts = [raw.find(s) for s in stops if s and s in raw]
        if cuts:
            return raw[: min(cuts)]
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def _stopped(self, ids: list[int], stops: Sequence[str], window: int) -> bool:
        if not stops:
            return False
        tail = self.tokenizer.decode(ids[-window:], skip_special_tokens=False)
        return any(s in tail for s in stops)

    def _choose(self, logits: torch.Tensor, spec: GenerationSpec,
                generators: list[torch.Generator]) -> torch.Tensor:
        if spec.temperature <= 0:
            return logits.argmax(dim=-1)
        probs = torch.softmax(logits.float() / spec.temperature, dim=-1)
        probs = _filter_top_p(probs, spec.top_p)
        return torch.stack([torch.multinomial(probs[j].cpu(), 1, generator=g)[0]
                            for j, g in enumerate(generators)]).to(logits.device)

    def _decode(self, prompts: list[list[int]], spec: GenerationSpec, stops: Sequence[str],
                seeds: list[int]) -> list[list[int]]:
        """Decode one batch; rows leave the batch (and the cache) as soon as they finish."""
        rows, width = len(prompts), max(len(p) for p in prompts)
        ids = torch.full((rows, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((rows, width), dtype=torch.long)
        for r, p in enumerate(prompts):
            ids[r, width - len(p):] = torch.tensor(p, dtype=torch.long)
            mask[r, width - len(p):] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = self._new_cache(width + spec.max_new_tokens)
        generators = [torch.Generator().manual_seed(s) for s in seeds]
        window = max((len(s) for s in stops), default=0) + 2
        out: list[list[int]] = [[] for _ in prompts]
        alive = list(range(rows))  # original row of each row still in the batch
        logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                            cache=cache, use_cache=True, logits_to_keep=1).logits[:, -1]
        next_pos = positions[:, -1] + 1
        for step in range(spec.max_new_tokens):
            tokens = self._choose(logits, spec, generators)
            keep = []
            for j, (row, token) in enumerate(zip(alive, tokens.tolist(), strict=True)):
                out[row].append(token)
                if token not in self.eos_ids and not self._stopped(out[row], stops, window):
                    keep.append(j)
            if not keep or step == spec.max_new_tokens - 1:
                break
            if len(keep) < len(alive):
                index = torch.tensor(keep, device=self.device)
                cache.batch_select_indices(index)
                mask, tokens, next_pos = mask[index], tokens[index], next_pos[index]
                alive = [alive[j] for j in keep]
                generators = [generators[j] for j in keep]
                mask = self._drop_dead_columns(mask, cache)
            mask = torch.cat([mask, mask.new_ones((len(alive), 1))], dim=1)
            logits = self.model(input_ids=tokens[:, None], attention_mask=mask,
                                position_ids=next_pos[:, None], cache=cache,
                                use_cache=True).logits[:, -1]
            next_pos = next_pos + 1
        return out

    def _new_cache(self, capacity: int):
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer

        cache = DynamicCache(config=self.model.config)
        growing = _growing_layer_class()
        # Only plain full-attention layers are replaced; sliding-window or recurrent
        # layers keep their own semantics.
        cache.layers = [growing(capacity) if type(layer) is DynamicLayer else layer
                        for layer in cache.layers]
        return cache

    @staticmethod
    def _drop_dead_columns(mask: torch.Tensor, cache) -> torch.Tensor:
        """Remove leading padding columns that no remaining row attends to."""
        used = mask.any(dim=0).nonzero()
        first = int(used[0]) if len(used) else 0
        if first == 0 or not all(hasattr(layer, "drop_front") for layer in cache.layers):
            return mask
        for layer in cache.layers:
            layer.drop_front(first)
        return mask[:, first:]


class VLLMGenerator:
    """The same interface over vLLM (GPU machines where ``vllm`` is installed)."""

    def __init__(self, model_dir: Path, renderer: PromptRenderer, **engine_args: object) -> None:
        from vllm import LLM

        self.llm = LLM(model=str(model_dir), **engine_args)
        self.renderer = renderer

    def __call__(self, prompts: Sequence[list[Message] | str], spec: GenerationSpec) -> list[list[str]]:
        from vllm import SamplingParams

        stops = list(dict.fromkeys((*spec.stop, *self.renderer.stops_for(prompts))))
        params = SamplingParams(n=spec.n, temperature=max(spec.temperature, 0.0),
                                top_p=spec.top_p if spec.temperature > 0 else 1.0,
                                max_tokens=spec.max_new_tokens, stop=stops or None, seed=spec.seed)
        outputs = self.llm.generate([self.renderer.render(p) for p in prompts], params)
        return [[c.text for c in o.outputs] for o in outputs]


def load_generator(model_dir: str | Path, *, backend: str = "auto", template: str | None = None,
                   batch_size: int = 32, max_batch_tokens: int = 32768, device: str | None = None,
                   progress: bool = True) -> GenerateFn:
    """Build the generate function for a saved model directory (once per model)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise SftmixError(f"{model_dir}: not a saved model directory (no config.json); expected "
                          "the output of a training stage or of save_pretrained")
    if backend not in BACKENDS:
        raise SftmixError(f"generation backend {backend!r} is unknown; available: {', '.join(BACKENDS)}")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    renderer = PromptRenderer.for_model(model_dir, tokenizer, template)
    has_vllm = importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()
    if backend == "vllm" or (backend == "auto" and has_vllm):
        if not has_vllm:
            raise SftmixError("generation backend 'vllm' needs the vllm package and a CUDA device")
        log.info("generating with vLLM from %s", model_dir)
        return VLLMGenerator(model_dir, renderer)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device)
    log.info("generating with transformers on %s from %s", device, model_dir)
    return HFGenerator(model, tokenizer, renderer, batch_size=batch_size,
                       max_batch_tokens=max_batch_tokens, progress=progress)
