"""How long a plan takes, before it runs: each job's time on what it asks for, the wall time
on the study's executor, and device-hours by kind of job.

A job's time is its work over a rate (:mod:`sftmix.study.rates`):

* a stage: its training tokens (``sftmix.study.cost``, the one estimate) over a training rate;
* an evaluation: the tokens it generates -- items x turns x samples x ``max_new_tokens`` x
  the share an item uses -- over a generation rate, or its items over a rate in items/s;
* a base model, a mixture: a fixed time, small beside the rest (assumed);

plus a few seconds to start each stage and evaluation (load the model, tokenize). A job
whose artefact is complete costs nothing. The wall time follows the executor: the
local one runs ``workers`` jobs at a time, longest remaining chain first (as it does);
on SLURM it is the longest chain of dependent jobs, reached only if the cluster starts
every ready job at once.
"""

from __future__ import annotations

import heapq
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sftmix.artifacts import read_marker
from sftmix.errors import SftmixError
from sftmix.study.config import ModelConfig, StudyConfig
from sftmix.study.cost import Cost
from sftmix.study.jobs import Job
from sftmix.study.plan import Plan
from sftmix.study.priority import remaining_path
from sftmix.study.rates import (
    GENERATED_SHARE,
    ITEMS,
    SMOLLM2_PARAMETERS,
    Device,
    Rate,
    config_parameters,
    default_generate_rate,
    default_train_rate,
    llama_parameters,
)
from sftmix.study.specs import EvalSpec

# Assumed fixed costs, in seconds (a tokenizer trained or a GGUF imported; a mixture
# written; a model loaded and its data tokenized before a stage or an evaluation starts).
FIXED_SECONDS = {"model": 30.0, "mixture": 5.0}
START_SECONDS = 10.0


@dataclass
class JobTime:
    key: str
    kind: str
    seconds: float  # 0 for a job whose artefact is complete
    device: Device
    complete: bool


@dataclass
class Estimate:
    executor: str
    machine: str  # what the jobs run on, in words
    jobs: dict[str, JobTime]
    wall_seconds: float
    wall_how: str
    rates: dict[str, Rate] = field(default_factory=dict)  # what each rate is for -> the rate
    notes: list[str] = field(default_factory=list)

    @property
    def job_seconds(self) -> float:
        return sum(j.seconds for j in self.jobs.values())

    @property
    def gate_seconds(self) -> float:
        """What ``sftmix run`` weighs against its threshold: the wall time where jobs run on
        this machine, the jobs' total time where a cluster runs them side by side."""
        return self.job_seconds if self.executor == "slurm" else self.wall_seconds

    def by_kind(self) -> dict[str, dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {}
        for job in self.jobs.values():
            row = rows.setdefault(job.kind, {"jobs": 0, "to_run": 0, "seconds": 0.0, "longest": 0.0,
                                             "gpu_hours": 0.0, "cpu_hours": 0.0, "device": job.device})
            row["jobs"] += 1
            if job.complete:
                continue
            row["to_run"] += 1
            row["seconds"] += job.seconds
            row["longest"] = max(row["longest"], job.seconds)
            row["gpu_hours"] += job.seconds * job.device.gpu_count / 3600
            row["cpu_hours"] += job.seconds * job.device.cpus * job.device.nodes / 3600
        return rows


# -- where jobs run -------------------------------------------------------------------------

def job_devices(study: StudyConfig, executor: str, workers: int) -> tuple[dict[str, Device], int | None, str]:
    """Kind -> what one job runs on; jobs at a time (None: as many as are ready); the machine."""
    from sftmix.study.kinds import KINDS

    if executor == "slurm":
        devices = {}
        for kind in KINDS:
            res = study.executor.kind(kind)
            devices[kind] = Device(res.cpus, res.gpus, getattr(res, "nodes", 1))
        where = f"partition {study.executor.partition}" if study.executor.partition else "the default partition"
        return devices, None, f"SLURM, {where}, each kind as the executor block asks"
    from sftmix.study.pool import usable_cpus, visible_gpus

    slots = 1 if executor == "inline" else workers
    cpus, gpus = usable_cpus(), len(visible_gpus())
    given = os.environ.get("OMP_NUM_THREADS", "")
    threads = int(given) if given.isdigit() and int(given) > 0 else max(1, cpus // slots)
    device = Device(threads, 1 if gpus >= slots else 0)
    machine = (f"this machine: {cpus} CPUs, {gpus or 'no'} GPU{'s' if gpus != 1 else ''}; "
               f"{slots} job{'s' if slots > 1 else ''} at a time, each on {device.describe()}")
    return dict.fromkeys(KINDS, device), slots, machine


def model_parameters(model: ModelConfig) -> int | None:
    """The base model's parameters, from its settings or its folder's config.json."""
    if model.tiny is not None:
        from sftmix.train.models import _swiglu_width

        t = model.tiny
        return llama_parameters(t.vocab_size, t.hidden, t.layers, t.heads, t.kv_heads or t.heads,
                                t.intermediate or _swiglu_width(t.hidden), tied=True)
    if model.gguf == "smollm2":
        return SMOLLM2_PARAMETERS
    if model.path is not None:
        return config_parameters(Path(model.path) / "config.json")
    return None


# -- what the study measured itself ---------------------------------------------------------

def measured_rates(plan: Plan, cost: Cost, jobs: Mapping[str, Job]) -> dict[tuple[str, str], Rate]:
    """(model, "train") and (model, suite) -> the rate of the study's complete stages and
    evaluations: estimated tokens over ``train_seconds``, items over ``elapsed_s``."""
    sums: dict[tuple[str, str], list[float]] = {}
    for key, node in plan.stages.items():
        job = jobs.get(key)
        if job is None or not job.complete:
            continue
        seconds = read_marker(job.out).get("train_seconds")
        if seconds:
            total = sums.setdefault((node.model, "train"), [0.0, 0.0])
            total[0] += cost.stage_tokens.get(key, 0.0)
            total[1] += float(seconds)
    for key, ev in plan.evals.items():
        job = jobs.get(key)
        if job is None or not job.complete:
            continue
        try:
            summary = json.loads((job.out / "summary.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if summary.get("elapsed_s") and summary.get("n_items"):
            total = sums.setdefault((ev.model, ev.suite), [0.0, 0.0])
            total[0] += float(summary["n_items"])
            total[1] += float(summary["elapsed_s"])
    rates = {}
    for (model, what), (work, seconds) in sums.items():
        if work > 0 and seconds > 0:
            unit = "tokens/s" if what == "train" else ITEMS
            rates[(model, what)] = Rate(work / seconds, unit, "measured: this study's complete jobs")
    return rates


# -- evaluations ----------------------------------------------------------------------------

@dataclass(frozen=True)
class EvalWork:
    items: int
    tokens: float  # generated, estimated
    judge_calls: int = 0


def eval_work(spec: EvalSpec) -> EvalWork:
    """The items a suite evaluates (its ``limit`` applied) and the tokens they generate."""
    from sftmix.eval.runner import build_suite
    from sftmix.eval.task_options import with_default_path

    options = dict(spec.suite.options)
    limit = options.pop("limit", None)
    options.pop("generator", None)
    task = build_suite(spec.suite.suite, with_default_path(spec.suite.suite, options))
    items = task.items(limit)
    generation = task.generation()
    turns = sum(len(it.metadata.get("turns") or [None]) for it in items)
    tokens = turns * generation.n * generation.max_new_tokens * GENERATED_SHARE
    judge = turns * int(getattr(task, "repetitions", 0) or 0)
    return EvalWork(len(items), tokens, judge)


# -- the estimate ---------------------------------------------------------------------------

class _Rates:
    """The rate of each job, by precedence: --throughput, the study's own, the defaults."""

    def __init__(self, plan: Plan, devices: dict[str, Device], given: Mapping[str, Rate],
                 measured: Mapping[tuple[str, str], Rate]) -> None:
        self.plan, self.devices, self.given, self.measured = plan, devices, given, measured
        self.sizes: dict[str, int] = {}
        self.used: dict[str, Rate] = {}
        self.notes: list[str] = []
        for model in plan.study.models:
            size = model_parameters(model)
            if size is None:
                self.notes.append(f"model {model.name}: its size is unknown (no Llama-like config.json); "
                                  "rates are SmolLM2-135M's")
            self.sizes[model.name] = size or SMOLLM2_PARAMETERS

    def train(self, model: str) -> Rate:
        rate = self.given.get("train") or self.measured.get((model, "train")) or default_train_rate(
            self.sizes[model], self.devices["stage"])
        return self._use(f"training, model {model} ({self.sizes[model] / 1e6:.2f}M parameters)", rate)

    def evaluate(self, model: str, suite: str) -> Rate:
        rate = self.given.get(suite) or self.given.get("eval") or self.measured.get((model, suite))
        if rate is None:
            batch = int((self.plan.study.evaluation.get(suite) or {}).get("generator", {}).get("batch_size", 32))
            rate = default_generate_rate(self.sizes[model], self.devices["eval"], batch)
            return self._use(f"generation, model {model}", rate)
        return self._use(f"evaluation {suite}, model {model}", rate)

    def _use(self, what: str, rate: Rate) -> Rate:
        self.used.setdefault(what, rate)
        return rate


def estimate(plan: Plan, cost: Cost, jobs: Mapping[str, Job], executor: str, workers: int = 1,
             given: Mapping[str, Rate] | None = None) -> Estimate:
    """Each job's time, the wall time on ``executor`` and the rates used."""
    devices, slots, machine = job_devices(plan.study, executor, workers)
    rates = _Rates(plan, devices, given or {}, measured_rates(plan, cost, jobs))
    works: dict[str, EvalWork | None] = {}
    times: dict[str, JobTime] = {}
    judge_calls = 0
    for key, job in jobs.items():
        seconds = 0.0
        if not job.complete:
            if job.kind == "stage":
                node = plan.stages[key]
                seconds = START_SECONDS + cost.stage_tokens.get(key, 0.0) / rates.train(node.model).value
            elif job.kind == "eval":
                ev = plan.evals[key]
                work = _eval_work(ev.spec, ev.suite, works, rates.notes)
                if work is not None:
                    rate = rates.evaluate(ev.model, ev.suite)
                    seconds = START_SECONDS + (work.items if rate.unit == ITEMS else work.tokens) / rate.value
                    judge_calls += work.judge_calls
            else:
                seconds = FIXED_SECONDS.get(job.kind, START_SECONDS)
        times[key] = JobTime(key, job.kind, seconds, devices.get(job.kind, devices["stage"]), job.complete)
    if judge_calls:
        rates.notes.append(f"not counted: {judge_calls:,} calls to the MT-Bench judge")
    if executor == "slurm":
        rates.notes += _over_time_limits(plan.study, times)
    wall = _wall(jobs, {k: t.seconds for k, t in times.items()}, slots)
    how = (f"{slots} job{'s' if slots > 1 else ''} at a time" if slots is not None
           else "the longest chain of dependent jobs, if every ready job starts at once")
    return Estimate(executor, machine, times, wall, how, rates.used, rates.notes)


def slurm_seconds(limit: str) -> float:
    """Seconds of a SLURM time limit: minutes, M:S, H:M:S, D-H, D-H:M or D-H:M:S."""
    days, _, clock = limit.rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    if days:
        parts += [0] * (3 - len(parts))
        return int(days) * 86400 + parts[0] * 3600 + parts[1] * 60 + parts[2]
    weights = {1: (60,), 2: (60, 1), 3: (3600, 60, 1)}[len(parts)]
    return float(sum(p * w for p, w in zip(parts, weights, strict=True)))


def _over_time_limits(study: StudyConfig, times: Mapping[str, JobTime]) -> list[str]:
    """A kind whose longest job would outlast its time limit: a note of what happens then."""
    notes = []
    for kind in sorted({t.kind for t in times.values()}):
        limit = study.executor.kind(kind).time or study.executor.time
        longest = max(t.seconds for t in times.values() if t.kind == kind)
        if longest > slurm_seconds(limit):
            then = (f"it checkpoints and requeues itself, up to {study.executor.max_requeues} times"
                    if kind == "stage" and study.executor.warning_seconds else "it is ended at its limit")
            notes.append(f"{kind}: the longest job, about {longest / 3600:.1f} h, is over its time limit "
                         f"{limit}: {then}")
    return notes


def _eval_work(spec: EvalSpec, suite: str, cache: dict[str, EvalWork | None],
               notes: list[str]) -> EvalWork | None:
    """The suite's work, read once per suite and options (the benchmark file is read)."""
    ident = json.dumps(spec.suite.model_dump(mode="json"), sort_keys=True)
    if ident not in cache:
        try:
            cache[ident] = eval_work(spec)
        except (SftmixError, OSError) as exc:
            notes.append(f"{suite}: its items could not be read, so it is not counted ({exc})")
            cache[ident] = None
    return cache[ident]


def _wall(jobs: Mapping[str, Job], seconds: Mapping[str, float], slots: int | None) -> float:
    """The executor's schedule, simulated: ready jobs longest remaining chain first, ``slots``
    at a time (None: all); returns when the last one ends."""
    priority = remaining_path(jobs, seconds)
    done = {k for k, j in jobs.items() if j.complete}
    pending = [k for k in jobs if k not in done]
    running: list[tuple[float, str]] = []
    now = 0.0
    while pending or running:
        ready = sorted((k for k in pending if all(d in done or d not in jobs for d in jobs[k].deps)),
                       key=lambda k: -priority[k])
        for key in ready:
            if slots is not None and len(running) >= slots:
                break
            pending.remove(key)
            heapq.heappush(running, (now + seconds[key], key))
        if not running:
            break  # nothing can start: a dependency outside the graph never ends
        now, key = heapq.heappop(running)
        done.add(key)
    return now


def estimate_study(plan: Plan, study_dir: Path, executor: str, throughput: list[str] | None = None
                   ) -> tuple[Estimate, dict[str, Job]]:
    """The estimate of ``plan`` (its cost computed) run into ``study_dir`` on ``executor``: the
    jobs complete there cost nothing and set the rates they measured. ``throughput``: the
    ``--throughput`` values."""
    from sftmix.study.jobs import build_jobs
    from sftmix.study.rates import parse_throughput

    suites = {suite for ability in plan.study.abilities.values() for suite in ability.evals}
    given = parse_throughput(throughput or [], suites)
    jobs = build_jobs(plan, study_dir.resolve())
    return estimate(plan, plan.cost, jobs, executor, plan.study.workers, given), jobs
