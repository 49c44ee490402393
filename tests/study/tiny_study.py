"""The parts of the small real study that the crash, SLURM, priority and optimise tests run.

A tiny Llama built from the study's own texts, real GSM8K / Code Alpaca / ShareGPT data
from ``shared/data`` and real evaluations cut to a few items. The parts are ``str.format``
templates with a ``{data}`` field (the shared data folder), braces doubled; a test joins
the ones it needs and adds its own name, runs and executor.
"""

from __future__ import annotations

from pathlib import Path

from sftmix.study.store import STORE_NAME, ResultsStore

ABILITIES = """\
abilities:
  maths: {{data: {{path: {data}/gsm8k/train.jsonl, format: gsm8k}}, evals: [gsm8k]}}
  code: {{data: {{path: {data}/code/code_alpaca_2k.json, format: alpaca, on_error: skip}}, evals: [humaneval]}}
  general: {{data: {{path: {data}/general/sharegpt_dpo_chosen.json, format: sharegpt}}, evals: [ifeval]}}
"""
TINY = "tiny: {{vocab_size: 400, hidden: 32, layers: 2, heads: 2}}"
MODELS = "models: [{{name: tiny, " + TINY + "}}]\n"
TEMPLATE = 'template: {{user: "Q: {{content}}\\n", assistant: "A: {{content}}{{eos}}\\n"}}'
TRAINING = ("training: {{max_length: 192, max_steps: 6, save_steps: 2, global_batch_size: 4, "
            "per_device_batch_size: 4,\n           precision: fp32, learning_rate: 1.0e-3, " + TEMPLATE + "}}\n")
EVALUATION = """\
evaluation:
  gsm8k: {{path: {data}/gsm8k/test.jsonl, limit: 3, max_new_tokens: 6}}
  humaneval: {{limit: 2, max_new_tokens: 6}}
  ifeval: {{path: {data}/eval/ifeval/input_data.jsonl, limit: 3, max_new_tokens: 6}}
"""
# Two stages, DMT-style: the specialists, then general with a quarter of them replayed.
DMT_RUN = """\
runs:
  - name: dmt
    stages:
      - {{name: specialist, data: [{{ability: maths, count: 24}}, {{ability: code, count: 24}}]}}
      - {{name: general, data: [{{ability: general, count: 24}}], replay: {{stage: specialist, fraction: 1/4}}}}
"""


def metrics(out: Path) -> dict[tuple[str, str], float]:
    """Every (run, metric) value of a study directory's results store."""
    store = ResultsStore(out / STORE_NAME)
    try:
        return {(r["run"], r["metric"]): r["value"] for r in store.results()}
    finally:
        store.close()
