"""One decoding step of SmolLM2-135M on the CPU: MKL's products against packed oneDNN weights.

For 1, 16, 32 and 64 rows, each with a 300-token KV cache, times a forward pass of
one new token per row through ``model(...)`` -- first as transformers runs it (its
linear layers on MKL's ``sgemm``), then inside
:func:`sftmix.eval.engine.packed_linear.packed_linears` -- and prints ms per step, tokens/s
and the ratio. This is the per-step cost behind ``bench/eval_bench.py``'s figures
(``docs/benchmarks/eval.md``). The last line is a JSON object of the figures.

    python bench/eval_steps.py [--threads N] [--seconds S]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, DynamicCache

from sftmix.eval.engine.packed_linear import packed_linears
from sftmix.train.models import import_gguf, smollm2_gguf_path

CONTEXT = 300
ROWS = (1, 16, 32, 64)


def step_seconds(model: torch.nn.Module, rows: int, seconds: float) -> float:
    """Mean wall time of one decoding step of ``rows`` rows over a ``CONTEXT``-token cache."""
    gen = torch.Generator().manual_seed(rows)
    vocab = model.config.vocab_size
    cache = DynamicCache(config=model.config)
    model(input_ids=torch.randint(0, vocab, (rows, CONTEXT), generator=gen), cache=cache,
          use_cache=True, logits_to_keep=1)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or steps < 3:
        model(input_ids=torch.randint(0, vocab, (rows, 1), generator=gen), cache=cache,
              use_cache=True)
        cache.crop(-1)  # back to CONTEXT tokens
        steps += 1
    return (time.perf_counter() - start) / steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--seconds", type=float, default=2.0, help="time spent on each measurement")
    parser.add_argument("--model-dir", type=Path,
                        default=Path(tempfile.gettempdir()) / "sftmix-bench-smollm2",
                        help="where SmolLM2 is imported from its GGUF (reused when complete)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model_dir = import_gguf(smollm2_gguf_path(), args.model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    figures: dict[str, object] = {"threads": torch.get_num_threads(), "context": CONTEXT}
    with torch.inference_mode():
        for rows in ROWS:
            mkl = step_seconds(model, rows, args.seconds)
            with packed_linears(model) as used:
                if not used:
                    print("this PyTorch build has no oneDNN packed linear", file=sys.stderr)
                    return 1
                packed = step_seconds(model, rows, args.seconds)
            figures[f"rows_{rows}"] = {"ms_mkl": round(mkl * 1e3, 1), "ms_packed": round(packed * 1e3, 1),
                                       "ratio": round(mkl / packed, 2)}
            print(f"{rows:3d} rows: MKL {mkl * 1e3:7.1f} ms ({rows / mkl:6.1f} tok/s)   packed "
                  f"{packed * 1e3:7.1f} ms ({rows / packed:6.1f} tok/s)   x{mkl / packed:.2f}", flush=True)
    print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
