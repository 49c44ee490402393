"""Every extension point of docs/architecture.md's table, each added in this one file.

A strategy (``general_first``), a design (``pairs``, with a report section), a job
kind (``probe``: the parameter count of a stage's model, published as an artefact),
an executor (``serial``: every job in this process), a benchmark (``reply_length``)
and abilities named ``reasoning``, ``coding`` and ``chat`` (the general one) -- none
of them known to sftmix's own modules -- run together as a tiny real study: planned,
trained, evaluated, reported and given a recommendation with DMT candidates.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field

from sftmix.artifacts import building
from sftmix.cli import main
from sftmix.config import StrictModel
from sftmix.eval.base import TASKS, EvalItem, GenerationSpec, ItemResult, Metric, Task
from sftmix.report.build import build_report
from sftmix.report.document import Section
from sftmix.report.plotting import FigureOut
from sftmix.results.data import StudyResults, load_results
from sftmix.study.config import Fraction_
from sftmix.study.designs import DESIGNS, Design
from sftmix.study.executor import EXECUTORS, Executor, Outcome
from sftmix.study.kinds import KINDS, JobKind, Resources, add_kind, artefact
from sftmix.study.load import load_study
from sftmix.study.runner import StudyRun, run_study
from sftmix.study.specs import Spec
from sftmix.study.worker import run_job
from sftmix.train.strategies import STRATEGIES, DmtOptions, Step, Strategy, Take, specialists

pytestmark = pytest.mark.slow


# -- a strategy: the general ability first, then the specialists with a fraction of it replayed ---

def general_first(abilities: Sequence[str], general: str | None, options: DmtOptions) -> list[Step]:
    spec = specialists(abilities, general, "general_first")
    assert general is not None
    return [Step("general", (Take((general,)),)), Step("specialists", (Take(spec),), replay=options.k)]


# -- a job kind: a stage's parameter count, as an artefact of its own ----------------------------

class ProbeSpec(Spec):
    model: str  # the stage folder, relative to the study directory


def probe(spec: ProbeSpec, out: Path, label: str) -> None:
    from safetensors import safe_open

    with safe_open(str(Path(spec.model) / "model.safetensors"), "pt") as f:
        count = sum(_numel(f.get_slice(name).get_shape()) for name in f.keys())  # noqa: SIM118
    with building(out, {"kind": "probe"}) as tmp:
        (tmp / "parameters.json").write_text(json.dumps({"model": spec.model, "parameters": count}))


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


# -- a design: every pair of abilities mixed, each pair's model probed -----------------------------

class PairsDesign(StrictModel):
    fractions: list[Fraction_] = Field(min_length=1)


def expand_pairs(pl: Any, d: PairsDesign, model: Any, seed: int, suffix: str) -> None:
    from sftmix.study.plan import Part, Recipe, fmt_amount

    abilities = list(pl.study.abilities)
    for i, a in enumerate(abilities):
        for b in abilities[i + 1:]:
            for f in d.fractions:
                stages = pl.chain(model, seed, [Recipe.of([Part(a, f), Part(b, f)], seed)])
                pl.run(f"pairs/{a}+{b}/{fmt_amount(f)}/{suffix}", "pairs", model, seed, stages,
                       {"pair": f"{a}+{b}", "fraction": f})
                pl.job("probe", ProbeSpec(model=artefact(stages[-1])), (stages[-1],), f"probe {a}+{b}")


def check_pairs(study: Any, d: PairsDesign, add: Any) -> None:
    if len(study.abilities) < 2:
        add((), "needs at least two abilities")


def pairs_sections(res: StudyResults, paper: bool) -> list[Section]:
    runs = sorted(set(res.design("pairs")["run"]))
    return [Section("pairs", "Pairs of abilities", text=f"{len(runs)} pairs: {', '.join(runs)}",
                    figures=[FigureOut("pairs", "Pairs", note="no figure")])]


# -- an executor: every job in this process, in order ------------------------------------------

class SerialExecutor(Executor):
    def run(self, run: StudyRun) -> Outcome:
        jobs = run.prepare()
        store = run.open_store(jobs)
        outcome = Outcome(skipped=[k for k, j in jobs.items() if j.complete])
        try:
            for key, job in jobs.items():
                if job.complete:
                    continue
                if any(d in outcome.failed or d in outcome.blocked for d in job.deps):
                    outcome.blocked.append(key)
                elif run_job(run.job_file(key)) == 0 and job.complete:
                    outcome.done.append(key)
                    store.record_job(job)
                else:
                    outcome.failed.append(key)
        finally:
            store.close()
        return outcome


# -- a benchmark: does the model answer at all, and how long is its reply ------------------------

class ReplyLength(Task):
    name = "reply_length"
    ability = "chat"
    metrics = (Metric("answered"),)

    def __init__(self, max_new_tokens: int = 8) -> None:
        self.max_new_tokens = max_new_tokens

    def items(self, limit: int | None = None) -> list[EvalItem]:
        prompts = ["Say hello.", "Name a colour.", "Count to three.", "What is tea?"]
        return [EvalItem(f"q{i}", p) for i, p in enumerate(prompts[:limit])]

    def generation(self) -> GenerationSpec:
        return GenerationSpec(max_new_tokens=self.max_new_tokens)

    def score(self, items: Sequence[EvalItem], completions: Sequence[list[str]]) -> list[ItemResult]:
        return [ItemResult(item.id, str(item.prompt), c, [len(c[0])], [bool(c[0].strip())],
                           {"answered": float(bool(c[0].strip()))}) for item, c in zip(items, completions, strict=True)]


@pytest.fixture
def extended() -> Iterator[None]:
    """Everything above, registered for one test and taken out again."""
    STRATEGIES.add("general_first", Strategy(DmtOptions, general_first, coords=("k",)))
    DESIGNS.add("pairs", Design("pairs", PairsDesign, expand_pairs, check_pairs,
                                report="tests.test_extensions:pairs_sections", rank=50))
    add_kind(JobKind(name="probe", prefix="p-", folder="probes", spec=ProbeSpec,
                     function="tests.test_extensions:probe", resources=Resources(cpus=1)))
    EXECUTORS.add("serial", SerialExecutor)
    TASKS.add("reply_length", ReplyLength)
    try:
        yield
    finally:
        STRATEGIES.remove("general_first")
        DESIGNS.remove("pairs")
        KINDS.pop("probe")
        EXECUTORS.remove("serial")
        TASKS.remove("reply_length")


STUDY = """\
name: extended
abilities:
  reasoning: {{data: {{path: {data}/gsm8k/train.jsonl, format: gsm8k}}, evals: [gsm8k]}}
  coding: {{data: {{path: {data}/code/code_alpaca_2k.json, format: alpaca, on_error: skip}}, evals: [humaneval]}}
  chat: {{data: {{path: {data}/general/sharegpt_dpo_chosen.json, format: sharegpt}}, evals: [reply_length]}}
general: chat
models: [{{name: tiny, tiny: {{vocab_size: 400, hidden: 32, layers: 2, heads: 2}}}}]
training: {{max_length: 128, max_steps: 2, save_steps: 2, global_batch_size: 4, per_device_batch_size: 4,
           precision: fp32, learning_rate: 1.0e-3,
           template: {{user: "Q: {{content}}\\n", assistant: "A: {{content}}{{eos}}\\n"}}}}
evaluation:
  gsm8k: {{path: {data}/gsm8k/test.jsonl, limit: 2, max_new_tokens: 6}}
  humaneval: {{limit: 1, max_new_tokens: 6}}
  reply_length: {{limit: 2, max_new_tokens: 4}}
designs:
  pairs: {{fractions: [1/512]}}
  strategies: {{baselines: false, multi_task: false, sequential: false, mixed_sequential: false,
               general_first: {{k: 1/4}}}}
executor: {{name: serial}}
"""


def test_a_study_runs_on_extensions_added_in_one_file(extended: None, tmp_path: Path, shared_data: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(STUDY.format(data=shared_data))
    study = load_study(path)
    assert study.general == "chat" and study.specialist == ["reasoning", "coding"]
    out = tmp_path / "out"
    outcome = run_study(study, out, progress=False)  # the study's own executor: serial
    assert outcome.ok and not outcome.failed, outcome
    # The new kind's artefacts: one probe per pair, each counting the same tiny model.
    probes = sorted((out / "probes").glob("p-*/parameters.json"))
    assert len(probes) == 3
    counts = {json.loads(p.read_text())["parameters"] for p in probes}
    assert len(counts) == 1 and counts.pop() > 10_000
    # The new strategy's run: general first, then the specialists with a quarter of it replayed.
    res = load_results(out)
    runs = set(res.primary["run"])
    assert "strategies/general-first/1/4/tiny" in runs and len([r for r in runs if r.startswith("pairs/")]) == 3
    (chain,) = [c for r, c in res.chains().items() if r.startswith("strategies/general-first")]
    assert set(chain[0]) == {"chat"} and set(chain[1]) == {"reasoning", "coding", "chat"}
    assert chain[1]["chat"] == chain[0]["chat"] // 4 or chain[1]["chat"] == -(-chain[0]["chat"] // 4)
    # The new benchmark was scored for the chat ability.
    lengths = res.primary[res.primary["suite"] == "reply_length"]
    assert len(lengths) == 4 and set(lengths["ability"]) == {"chat"}
    # The report draws the new design's section; the recommendation has DMT candidates over
    # the study's own general ability.
    report = build_report(res, tsne_queries=0)
    assert any(s.key == "pairs" and "3 pairs" in s.text for s in report.sections)
    assert main(["suggest", str(out), "--replicates", "5", "--next", "1"]) == 0
    suggestion = json.loads((out / "suggest.json").read_text())
    printed = capsys.readouterr().out
    assert "recommended:" in printed
    from sftmix.suggest.search import Space

    candidates = Space(res.abilities, general=res.general).candidates()
    assert any(c.strategy == "dmt" and c.general == "chat" for c in candidates)
    assert suggestion["recommended"]["composition"]["strategy"] in {"multi_task", "dmt"}
