"""How fast a job works: training tokens/s, generated tokens/s, items/s -- and where each
figure comes from.

A rate is one of

* the user's (``--throughput``): per job, as the job runs on what it asks for;
* the study's own: its finished stages' ``train_seconds`` and evaluations' ``elapsed_s``
  (this machine, this data, this model) -- :mod:`sftmix.study.estimate` reads them;
* a default: on a CPU, rates measured by ``bench/estimate_rates.py`` per CPU thread for a few
  model sizes and interpolated between them by parameter count (a larger model is
  scaled down in proportion); on a GPU, assumed from published figures, since no GPU
  run of sftmix has been measured yet. Each says so where it is printed.

Every default assumes a job's speed grows in proportion to its threads or GPUs, which
is optimistic for models too small to keep them busy.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from sftmix.errors import ConfigError

TOKENS = "tokens/s"
ITEMS = "items/s"


@dataclass(frozen=True)
class Rate:
    value: float  # per second, in ``unit``
    unit: str  # TOKENS or ITEMS
    source: str  # where the figure comes from, as printed

    def scaled(self, factor: float, source: str | None = None) -> Rate:
        return Rate(self.value * factor, self.unit, source or self.source)


@dataclass(frozen=True)
class Device:
    """What one job runs on: CPU threads, or GPUs on each of ``nodes`` nodes."""

    cpus: int
    gpus: int = 0  # per node
    nodes: int = 1

    @property
    def gpu_count(self) -> int:
        return self.gpus * self.nodes

    def describe(self) -> str:
        nodes = f"{self.nodes} nodes x " if self.nodes > 1 else ""
        if self.gpus:
            return f"{nodes}{self.gpus} GPU{'s' if self.gpus > 1 else ''}, {self.cpus} CPUs"
        return f"{nodes}{self.cpus} CPU{'s' if self.cpus > 1 else ''}"


# -- defaults ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Anchor:
    """A model size measured on the CPU: tokens per CPU-second on one thread."""

    name: str
    parameters: int
    train: float  # training tokens (every token of the packed rows)
    generate: float  # generated tokens, greedy, batches of 32


# `bench/estimate_rates.py` on the 2-core development VM (AMD EPYC, torch 2.13 CPU build),
# one thread, fp32, rates by process CPU time (docs/studies.md has the commands); SmolLM2's
# generation is bench/eval_bench.py's one-thread figure (batches of 32, the suites' default).
CPU_ANCHORS = (
    Anchor("the quick start's Llama", 393_696, 10_068, 5_816),
    Anchor("the lab's Llama", 885_632, 5_824, 4_919),
    Anchor("SmolLM2-135M", 134_515_008, 57.9, 199.5),
)
CPU_SOURCE = "measured on a 2-core AMD EPYC (bench/estimate_rates.py, eval_bench.py), at this model's size"

# Assumed, not measured with sftmix (no GPU run yet): modded-nanogpt's H100 record trains a
# 124M-parameter GPT at about 405,000 tokens/s (about 30% of the bf16 peak); taken as what
# one GPU does for a model of that size, in proportion to size above it, and no faster below.
GPU_TRAIN = (405_000.0, 124_000_000)
GPU_TRAIN_SOURCE = ("assumed, not measured: modded-nanogpt's H100 record, 405,000 tokens/s at 124M "
                    "parameters, in proportion to parameters")
# Decoding reads every weight once per step: 2 bytes a parameter in bf16 at half an H100's
# 3.35 TB/s, and a step of an eager PyTorch model takes at least 15 ms (its kernel launches).
GPU_STEP = (2 / 1.675e12, 0.015)
GPU_GENERATE_SOURCE = ("assumed, not measured: a decoding step for a batch reads every weight at half "
                       "an H100's bandwidth and takes at least 15 ms")
SMOLLM2_PARAMETERS = 134_515_008
# What an item generates, as a share of its max_new_tokens: SmolLM2-135M-Instruct on GSM8K
# (bench/eval_bench.py: 12,922 tokens for 48 prompts of at most 512).
GENERATED_SHARE = 0.53


def cpu_per_thread(parameters: int, which: str) -> float:
    """Tokens per CPU-second of one thread (``which``: train or generate) for a model of
    ``parameters``: between two anchors log-linearly, above the largest in proportion."""
    points = [(a.parameters, getattr(a, which)) for a in CPU_ANCHORS]
    if parameters <= points[0][0]:
        return points[0][1]
    for (p0, r0), (p1, r1) in itertools.pairwise(points):
        if parameters <= p1:
            t = (math.log(parameters) - math.log(p0)) / (math.log(p1) - math.log(p0))
            return math.exp(math.log(r0) + t * (math.log(r1) - math.log(r0)))
    largest, rate = points[-1]
    return rate * largest / parameters


def default_train_rate(parameters: int, device: Device) -> Rate:
    if device.gpu_count:
        per_gpu = GPU_TRAIN[0] * min(1.0, GPU_TRAIN[1] / parameters)
        return _times(per_gpu, device.gpu_count, "GPU", GPU_TRAIN_SOURCE)
    return _times(cpu_per_thread(parameters, "train"), device.cpus * device.nodes, "CPU thread", CPU_SOURCE)


def default_generate_rate(parameters: int, device: Device, batch: int = 32) -> Rate:
    """One evaluation job generates on one device (its first GPU, or its threads)."""
    if device.gpus:
        seconds_per_byte, floor = GPU_STEP
        step = max(floor, 2 * parameters * seconds_per_byte)
        return Rate(batch / step, TOKENS, GPU_GENERATE_SOURCE)
    return _times(cpu_per_thread(parameters, "generate"), device.cpus, "CPU thread", CPU_SOURCE)


def _times(each: float, count: int, what: str, source: str) -> Rate:
    return Rate(each * count, TOKENS, f"{each:,.4g} per {what} x {count}; {source}")


# -- the model's size --------------------------------------------------------------------

def llama_parameters(vocab: int, hidden: int, layers: int, heads: int, kv_heads: int,
                     intermediate: int, tied: bool) -> int:
    """Parameters of a Llama-architecture model (attention, SwiGLU MLP, RMS norms)."""
    head_dim = hidden // heads
    attention = 2 * hidden * hidden + 2 * hidden * kv_heads * head_dim
    block = attention + 3 * hidden * intermediate + 2 * hidden
    return vocab * hidden * (1 if tied else 2) + layers * block + hidden


def config_parameters(config_file: Path) -> int | None:
    """From a Hugging Face ``config.json`` of a Llama-like model; None when it is not one."""
    try:
        c = json.loads(config_file.read_text(encoding="utf-8"))
        heads = int(c["num_attention_heads"])
        return llama_parameters(int(c["vocab_size"]), int(c["hidden_size"]), int(c["num_hidden_layers"]),
                                heads, int(c.get("num_key_value_heads") or heads),
                                int(c["intermediate_size"]), bool(c.get("tie_word_embeddings", False)))
    except (OSError, ValueError, KeyError, TypeError):
        return None


# -- the user's rates --------------------------------------------------------------------

_RATE = re.compile(r"^\s*([\w-]+)\s*=\s*([0-9.eE+]+)\s*(tokens/s|items/s)?\s*$")


def parse_throughput(values: list[str], suites: set[str]) -> dict[str, Rate]:
    """``--throughput`` values: ``train=RATE`` (training tokens/s of one stage job),
    ``eval=RATE`` or ``SUITE=RATE`` (one evaluation job: generated tokens/s, or items/s with
    that unit written: ``gsm8k=2items/s``)."""
    rates: dict[str, Rate] = {}
    for text in values:
        m = _RATE.match(text)
        value = float(m[2]) if m and re.fullmatch(r"[0-9.]+([eE][+-]?[0-9]+)?", m[2]) else 0.0
        if m is None or not value > 0 or not math.isfinite(value):
            raise ConfigError(f"--throughput {text!r}: expected WHAT=RATE with a positive rate, e.g. "
                              "train=40000 (training tokens/s of one stage), eval=1500 (generated "
                              "tokens/s of one evaluation) or gsm8k=2items/s")
        what, unit = m[1], m[3] or TOKENS
        if what != "train" and what != "eval" and what not in suites:
            raise ConfigError(f"--throughput {text!r}: {what!r} is not 'train', 'eval' or a suite "
                              f"of this study ({', '.join(sorted(suites)) or 'none'})")
        if what == "train" and unit != TOKENS:
            raise ConfigError(f"--throughput {text!r}: training is counted in tokens/s")
        rates[what] = Rate(value, unit, "given with --throughput")
    return rates
