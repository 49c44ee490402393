"""The generation engine behind :data:`sftmix.eval.base.GenerateFn`.

Two backends share one interface, ``generate(prompts, spec) -> [[str] * spec.n]``:

* :class:`HFGenerator` -- transformers models on CPU or one GPU. It runs its own
  decode loop over the model's forward pass rather than ``model.generate``
  (:class:`sftmix.eval.engine.decoder.BatchDecoder`), because a benchmark's answers
  differ wildly in length: finished rows leave the batch at once and queued
  prompts take their slots (continuous batching), and when few rows are left,
  greedy rows carry prompt-lookup drafts that the model verifies in the same
  forward pass. Greedy decoding stays what one-at-a-time decoding produces
  (tested on CPU fp32): every row gets its own position ids and attends only to
  its own tokens, and a draft is kept only where it is the model's own argmax.
* :class:`VLLMGenerator` -- used when ``vllm`` is importable (GPU machines); it
  renders prompts the same way and hands them to vLLM.

A prompt that is a message list is rendered with the model's training chat
template (:class:`PromptRenderer`); a string prompt is used as is.
"""

from __future__ import annotations

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
from sftmix.eval.engine.decoder import BatchDecoder
from sftmix.eval.engine.packed_linear import packed_linears
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


class HFGenerator:
    """Continuously batched decoding with a KV cache through a transformers causal LM.

    ``batch_size`` rows are in flight (fewer when ``max_batch_tokens`` over the longest
    prompt plus the new tokens allows fewer); ``draft_tokens`` caps the prompt-lookup
    drafts a greedy row may carry per step (0 turns them off) and ``fixed_cost`` is a
    forward pass's size-independent cost in tokens' worth of compute, which decides
    when drafts pay. ``packed_weights`` runs the linear layers on oneDNN with weights
    prepacked for the call, on a CPU where the build allows
    (:mod:`sftmix.eval.engine.packed_linear`). After each call, ``stats`` holds the decoder's
    counts.
    """

    def __init__(self, model: torch.nn.Module, tokenizer, renderer: PromptRenderer | None = None, *,
                 batch_size: int = 32, max_batch_tokens: int = 32768, progress: bool = True,
                 draft_tokens: int = 8, fixed_cost: float | None = None,
                 packed_weights: bool = True) -> None:
        if batch_size < 1 or max_batch_tokens < 1 or draft_tokens < 0:
            raise SftmixError(f"generation: batch_size ({batch_size}) and max_batch_tokens "
                              f"({max_batch_tokens}) must be positive, draft_tokens "
                              f"({draft_tokens}) not negative")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.renderer = renderer or PromptRenderer(tokenizer)
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.progress = progress
        self.draft_tokens = draft_tokens
        self.packed_weights = packed_weights
        self.stats: dict[str, int] = {}  # the decoder's counts for the last call
        self.device = next(model.parameters()).device
        self.eos_ids = self._eos_ids()
        self.eos_texts = {tokenizer.convert_ids_to_tokens(i) for i in self.eos_ids}
        pad = tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else min(self.eos_ids, default=0)
        # A forward pass's size-independent cost, in tokens' worth of compute: about 8 on
        # a CPU (measured with SmolLM2-135M), far more on a GPU, where drafts pay sooner.
        self.fixed_cost = fixed_cost if fixed_cost is not None else (
            8.0 if self.device.type == "cpu" else 64.0)

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
        # One unit per (prompt, sample); longest prompt first, so the cache is laid out
        # for the widest prompts and later, shorter ones fit in front of its end.
        units = [(i, s) for i in range(len(prompts)) for s in range(spec.n)]
        units.sort(key=lambda u: (-len(encoded[u[0]]), u))
        results: list[list[str]] = [[""] * spec.n for _ in prompts]
        if not units or spec.max_new_tokens <= 0:
            return results
        bar = tqdm(total=len(units), desc="generate", unit="seq", disable=not self.progress,
                   leave=False)
        window = max((len(s) for s in stops), default=0) + 2

        def done(unit: int, ids: list[int]) -> None:
            i, s = units[unit]
            results[i][s] = self._text(ids, stops)
            bar.update(1)

        decoder = BatchDecoder(self.model, slots=self._slots(max(map(len, encoded)), spec.max_new_tokens),
                               eos_ids=self.eos_ids, pad_id=self.pad_id,
                               draft_tokens=self.draft_tokens, fixed_cost=self.fixed_cost)
        with torch.inference_mode(), packed_linears(self.model, self.packed_weights):
            decoder.run([encoded[i] for i, _ in units], spec,
                        [_unit_seed(spec.seed, i, s) for i, s in units],
                        lambda logits, gens: self._choose(logits, spec, gens),
                        lambda ids: self._stopped(ids, stops, window), done)
        bar.close()
        self.stats = decoder.stats
        return results

    def _slots(self, prompt_len: int, max_new: int) -> int:
        """Rows in flight: the batch size, within the token budget for the longest prompt."""
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
        probs = torch.softmax(logits.float() / spec.temperature, dim=-1)
        probs = _filter_top_p(probs, spec.top_p)
        return torch.stack([torch.multinomial(probs[j].cpu(), 1, generator=g)[0]
                            for j, g in enumerate(generators)]).to(logits.device)

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
