"""Training throughput: sftmix against TRL's SFTTrainer, same model, same data, one run.

Three trainings of the same small Llama (4 layers, width 256, SmolLM2's
49,152-token vocabulary and ChatML template) on the same real mixture (GSM8K
train + Code Alpaca, maximum length 512, batch 8), each from the same initial
weights:

* ``sftmix`` -- :mod:`sftmix.train` tokenisation, best-fit packing into rows
  with restarting position ids, and ``sft_loss`` (LM head only at trainable
  positions) inside ``sftmix.train.trainer.SftTrainer``;
* ``trl_default`` -- ``trl.SFTTrainer`` with its default data path: padding to
  the longest example of the batch, no packing;
* ``trl_packed`` -- ``trl.SFTTrainer`` with ``packing=True`` (best-fit
  decreasing, padding-free flattened batches).

Everything but the data path is set equal: fp32, no gradient checkpointing
(TRL's config would default both to on), AdamW at 2e-5, the same seed. All
three train on assistant tokens only (TRL: prompt/completion data, whose
default is completion-only loss). The figure is trainable tokens per second
over the steps after a warm-up, each method counting the labels of its own
batches.

MFU: useful FLOPs per trainable token (6 x body parameters per real token,
attention 6 x layers x width x n^2 per example, the LM head 6 x vocabulary x
width per trainable token; padding and untrained logits are not useful) times
the rate, over the fp32 matmul peak measured here with a large ``torch.mm``.

Also measured: sftmix under bf16 autocast (``TrainingArguments(bf16=True)``).
The last line printed is a JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import LlamaConfig, LlamaForCausalLM, TrainerCallback, TrainingArguments

from sftmix.data.records import Example, Message
from sftmix.templates import get_template
from sftmix.train.collate import build_train_dataset, make_collator
from sftmix.train.models import smollm2_gguf_path
from sftmix.train.tokenize import IGNORE_INDEX, tokenize_examples
from sftmix.train.trainer import SftTrainer

ROOT = Path(__file__).resolve().parents[1]
MAX_LENGTH = 512
BATCH = 8
SEED = 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few steps (under two minutes)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data",
                        help="the shared data folder (gsm8k/, code/)")
    parser.add_argument("--examples", type=int, default=None, help="examples in the mixture")
    parser.add_argument("--steps", type=int, default=None, help="measured steps per method")
    parser.add_argument("--warmup", type=int, default=None, help="unmeasured steps first")
    parser.add_argument("--no-bf16", action="store_true",
                        help="skip the bf16 autocast run (always skipped with --quick)")
    args = parser.parse_args(argv)
    args.examples = args.examples or (160 if args.quick else 600)
    args.steps = args.steps or (2 if args.quick else 10)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    args.no_bf16 = args.no_bf16 or args.quick
    return args


# -- data, model, peak ---------------------------------------------------------------------


def load_mixture(data: Path, n: int) -> list[Example]:
    """Half GSM8K train, half Code Alpaca, shuffled: short code answers next to long solutions."""
    rng = random.Random(SEED)
    gsm = [json.loads(line) for line in (data / "gsm8k" / "train.jsonl").read_text().splitlines()]
    code = json.loads((data / "code" / "code_alpaca_2k.json").read_text())
    out = []
    for i in rng.sample(range(len(gsm)), n // 2):
        out.append(Example(f"gsm8k:{i}", "maths", "gsm8k", (
            Message("user", gsm[i]["question"]), Message("assistant", gsm[i]["answer"]))))
    for i in rng.sample(range(len(code)), n - n // 2):
        rec = code[i]
        question = rec["instruction"] + (f"\n\n{rec['input']}" if rec["input"] else "")
        out.append(Example(f"code_alpaca:{i}", "code", "code_alpaca", (
            Message("user", question), Message("assistant", rec["output"]))))
    rng.shuffle(out)
    return out


def load_tokenizer() -> Any:
    from transformers import AutoTokenizer

    path = smollm2_gguf_path()
    return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)


def build_model(vocab_size: int) -> LlamaForCausalLM:
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=256, intermediate_size=1024,
                         num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=4,
                         max_position_embeddings=2048, tie_word_embeddings=True,
                         attn_implementation="sdpa")
    torch.manual_seed(SEED)
    return LlamaForCausalLM(config).float()


def matmul_peak(size: int = 2048, repeats: int = 8) -> tuple[float, float]:
    """fp32 FLOP/s of a large square matmul here: best of ``repeats`` by wall and by CPU time."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = best_cpu = float("inf")
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, (time.process_time() - cpu) / torch.get_num_threads())
    return 2 * size**3 / best, 2 * size**3 / best_cpu


def useful_flops_per_trainable_token(model: LlamaForCausalLM, tokenized: Sequence[Any]) -> float:
    c = model.config
    body = sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n
               and "lm_head" not in n)
    tokens = sum(len(t) for t in tokenized)
    trainable = sum(t.num_trainable for t in tokenized)
    attention = 6 * c.num_hidden_layers * c.hidden_size * sum(len(t) ** 2 for t in tokenized)
    head = 6 * c.vocab_size * c.hidden_size * trainable
    return (6 * body * tokens + attention + head) / trainable


# -- measuring -----------------------------------------------------------------------------


class CountingCollator:
    """Wraps a collator and records each batch's trainable-label count, in order."""

    def __init__(self, inner: Callable[[Any], dict[str, Any]]) -> None:
        self.inner = inner
        self.counts: list[int] = []

    def __call__(self, features: Any) -> dict[str, Any]:
        batch = self.inner(features)
        self.counts.append(int((batch["labels"][..., 1:] != IGNORE_INDEX).sum()))
        return batch


class StepTimer(TrainerCallback):
    """Wall and process CPU time from the start of step ``warmup`` to the end of the last step.

    CPU time divided by the thread count is what the wall time would be on an
    otherwise idle machine (the steps are compute-bound), so it is the fairer
    figure when other work shares the cores.
    """

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.start = self.end = self.cpu_start = self.cpu_end = 0.0

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.warmup:
            self.start, self.cpu_start = time.perf_counter(), time.process_time()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.end, self.cpu_end = time.perf_counter(), time.process_time()


def measure(trainer: Any, warmup: int, steps: int) -> dict[str, float]:
    counter = CountingCollator(trainer.data_collator)
    trainer.data_collator = counter
    timer = StepTimer(warmup)
    trainer.add_callback(timer)
    trainer.train()
    seconds = timer.end - timer.start
    cpu_seconds = (timer.cpu_end - timer.cpu_start) / torch.get_num_threads()
    trainable = sum(counter.counts[warmup: warmup + steps])
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "trainable_tokens": trainable,
            "tokens_per_s": trainable / seconds, "tokens_per_cpu_s": trainable / cpu_seconds}


def common_args(out: str, total_steps: int, bf16: bool = False) -> dict[str, Any]:
    return dict(output_dir=out, per_device_train_batch_size=BATCH, max_steps=total_steps,
                learning_rate=2e-5, lr_scheduler_type="constant", logging_steps=10_000,
                save_strategy="no", report_to="none", disable_tqdm=True, seed=SEED,
                gradient_checkpointing=False, bf16=bf16, dataloader_num_workers=0,
                use_cpu=True)


def run_sftmix(state: dict[str, Any], tokenized: Sequence[Any], tokenizer: Any, args: Any,
               bf16: bool = False) -> dict[str, float]:
    model = build_model(len(tokenizer))
    model.load_state_dict(state)
    dataset = build_train_dataset(tokenized, packing=True, max_length=MAX_LENGTH, seed=SEED)
    with tempfile.TemporaryDirectory() as out:
        trainer = SftTrainer(
            model=model, args=TrainingArguments(**common_args(out, args.warmup + args.steps, bf16)),
            train_dataset=dataset,
            data_collator=make_collator(True, tokenizer.pad_token_id, "sdpa"))
        return measure(trainer, args.warmup, args.steps)


def run_trl(state: dict[str, Any], examples: Sequence[Example], tokenizer: Any, args: Any,
            packing: bool) -> dict[str, float]:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    model = build_model(len(tokenizer))
    model.load_state_dict(state)
    data = Dataset.from_list([{"prompt": [m.to_dict() for m in e.messages[:-1]],
                               "completion": [e.messages[-1].to_dict()]} for e in examples])
    with tempfile.TemporaryDirectory() as out:
        config = SFTConfig(**common_args(out, args.warmup + args.steps), max_length=MAX_LENGTH,
                           packing=packing, dataset_num_proc=1)
        trainer = SFTTrainer(model=model, args=config, train_dataset=data,
                             processing_class=tokenizer)
        return measure(trainer, args.warmup, args.steps)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    tokenizer = load_tokenizer()
    examples = load_mixture(args.data, args.examples)
    template = get_template("model", tokenizer)
    tokenized, stats = tokenize_examples(examples, tokenizer, template, MAX_LENGTH)
    initial = build_model(len(tokenizer))
    state = {k: v.clone() for k, v in initial.state_dict().items()}
    per_token = useful_flops_per_trainable_token(initial, tokenized)
    peak, peak_cpu = matmul_peak()
    load_before = os.getloadavg()[0]
    print(f"mixture: {len(examples)} examples, {stats.tokens} tokens, {stats.trainable_tokens} "
          f"trainable; {torch.get_num_threads()} threads; fp32 matmul peak {peak / 1e9:.1f} GFLOP/s "
          f"(by CPU time {peak_cpu / 1e9:.1f})")

    results = {
        "sftmix": run_sftmix(state, tokenized, tokenizer, args),
        "trl_default": run_trl(state, examples, tokenizer, args, packing=False),
        "trl_packed": run_trl(state, examples, tokenizer, args, packing=True),
    }
    if not args.no_bf16:
        results["sftmix_bf16"] = run_sftmix(state, tokenized, tokenizer, args, bf16=True)
    for name, r in results.items():
        r["mfu"] = r["tokens_per_s"] * per_token / peak
        r["mfu_cpu"] = r["tokens_per_cpu_s"] * per_token / peak_cpu
        print(f"{name:12s} {r['tokens_per_s']:8.1f} trainable tokens/s wall, "
              f"{r['tokens_per_cpu_s']:8.1f} per CPU-s/thread  ({r['trainable_tokens']} in "
              f"{r['seconds']:.1f} s)  MFU {100 * r['mfu']:.1f}% wall, {100 * r['mfu_cpu']:.1f}% CPU")
    figures: dict[str, Any] = {}
    for key, suffix in (("tokens_per_s", ""), ("tokens_per_cpu_s", "_cpu")):
        rate = results["sftmix"][key]
        for name in ("sftmix", "trl_default", "trl_packed"):
            figures[f"{name}_{key}"] = round(results[name][key], 1)
        figures[f"ratio_vs_trl_default{suffix}"] = round(rate / results["trl_default"][key], 2)
        figures[f"ratio_vs_trl_packed{suffix}"] = round(rate / results["trl_packed"][key], 2)
        if "sftmix_bf16" in results:
            figures[f"bf16_speedup{suffix}"] = round(results["sftmix_bf16"][key] / rate, 2)
    figures.update({
        "mfu": round(results["sftmix"]["mfu"], 4),
        "mfu_cpu": round(results["sftmix"]["mfu_cpu"], 4),
        "mfu_trl_default": round(results["trl_default"]["mfu"], 4),
        "mfu_trl_packed": round(results["trl_packed"]["mfu"], 4),
        "matmul_peak_gflops": round(peak / 1e9, 1),
        "matmul_peak_gflops_cpu": round(peak_cpu / 1e9, 1), "threads": torch.get_num_threads(),
        "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "examples": len(examples), "measured_steps": args.steps, "quick": args.quick,
    })
    print(f"sftmix / TRL default: {figures['ratio_vs_trl_default']}x wall, "
          f"{figures['ratio_vs_trl_default_cpu']}x CPU   sftmix / TRL packed: "
          f"{figures['ratio_vs_trl_packed']}x wall, {figures['ratio_vs_trl_packed_cpu']}x CPU")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
