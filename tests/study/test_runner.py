"""The scheduler: dependencies first, a failure stops only its dependents, complete work is skipped.

Jobs run in this process through the real worker (``run_job``) on real data and
a tiny model folder, behind an executor that does each job when it is submitted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from sftmix.errors import DataError
from sftmix.study.executor import State
from sftmix.study.jobs import Job
from sftmix.study.load import load_study
from sftmix.study.local import LocalExecutor
from sftmix.study.pool import Handle
from sftmix.study.runner import run_study
from sftmix.study.store import STORE_NAME, ResultsStore
from sftmix.study.worker import run_job
from tests.study.pools import SettledAtSubmit

pytestmark = pytest.mark.slow


class InlinePool(SettledAtSubmit):
    """Runs each job to the end inside ``submit``; records the order."""

    def __init__(self, before: Callable[[Job], None] | None = None) -> None:
        self.order: list[str] = []
        self.before = before

    def submit(self, job: Job, job_file: Path, log_file: Path) -> Handle:
        self.order.append(job.key)
        if self.before is not None:
            self.before(job)
        return Handle(job, State.DONE if run_job(job_file) == 0 else State.FAILED)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sftmix.train.models import build_tiny_llama

    texts = [f"question {i} answer {i * 7}" for i in range(200)]
    return build_tiny_llama(texts, tmp_path_factory.mktemp("model") / "tiny", vocab_size=300,
                            hidden=32, layers=1, heads=2)


def test_a_failed_mixture_blocks_only_what_needs_it(tmp_path: Path, shared_data: Path, model_dir: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    # The data is valid when the study starts (a malformed record would stop it before any
    # write) and breaks just before its mixture is built, as a file changed on a shared disk.
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"question": "1 + 1?", "answer": "#### 2"}\n' * 4)

    def break_maths(job: Job) -> None:
        if job.kind == "mixture" and "maths" in job.label:
            broken.write_text('{"question": "no answer field"}\n')
    study_file = tmp_path / "study.yaml"
    study_file.write_text(f"""
name: sched
abilities:
  maths: {{data: {{path: {broken}, format: gsm8k}}, evals: [gsm8k]}}
  general: {{data: {{path: {shared_data}/general/messages_kto_positive.jsonl, format: messages}}, evals: [gsm8k]}}
models: [{{name: m, path: {model_dir}}}]
training: {{max_length: 96, max_steps: 1, global_batch_size: 2, per_device_batch_size: 2, precision: fp32,
           template: {{user: "Q: {{content}}\\n", assistant: "A: {{content}}{{eos}}\\n"}}}}
evaluation:
  gsm8k: {{path: {shared_data}/gsm8k/test.jsonl, limit: 1, max_new_tokens: 2}}
runs:
  - {{name: bad, stages: [{{name: s, data: [{{ability: maths, count: 4}}]}}]}}
  - {{name: good, stages: [{{name: s, data: [{{ability: general, count: 4}}]}}]}}
""")
    study = load_study(study_file)
    out = tmp_path / "out"
    executor = InlinePool(before=break_maths)
    outcome = run_study(study, out, LocalExecutor(study, pool=executor, poll_seconds=0), progress=False)
    jobs = {p.stem: json.loads(p.read_text()) for p in (out / "jobs").glob("*.json")
            if not p.name.endswith(".failed.json")}
    kind = {k: j["kind"] for k, j in jobs.items()}
    # Every job ran after the jobs it depends on.
    for i, key in enumerate(executor.order):
        assert set(jobs[key]["deps"]) <= set(executor.order[:i])
    (failed,) = outcome.failed
    assert kind[failed] == "mixture" and "no answer field" not in failed
    assert "line 1" in json.loads((out / "jobs" / f"{failed}.failed.json").read_text())["error"]
    assert sorted(kind[k] for k in outcome.blocked) == ["eval", "stage"]
    assert sorted(kind[k] for k in outcome.done) == ["eval", "mixture", "stage"]
    assert not outcome.ok
    store = ResultsStore(out / STORE_NAME)
    try:
        assert {r["run"] for r in store.results()} == {"runs/good/m/s0"}
        assert store.counts()["stages"] == {"done": 1, "pending": 1}
    finally:
        store.close()

    # Run again while the data is still broken: stopped before any job, naming the record.
    again = InlinePool()
    inline = LocalExecutor(study, pool=again, poll_seconds=0)
    with pytest.raises(DataError, match=r"broken\.jsonl, line 1, field 'answer'"):
        run_study(study, out, inline, progress=False)
    assert again.order == []

    # Mended (the same bytes as planned): the complete work is skipped, only the failed branch runs.
    broken.write_text('{"question": "1 + 1?", "answer": "#### 2"}\n' * 4)
    with caplog.at_level(logging.INFO, logger="sftmix.study.local"):
        second = run_study(study, out, inline, progress=True)
    assert sorted(second.skipped) == sorted(outcome.done)
    # Not on a terminal: one plain line per finished job instead of a bar.
    lines = [r.getMessage() for r in caplog.records if " jobs, " in r.getMessage()]
    total = len(outcome.done) + len(outcome.failed) + len(outcome.blocked)
    assert len(lines) == 1 + len(outcome.blocked)
    assert lines[-1].startswith(f"sched: {total}/{total} jobs, done ")
    assert again.order[0] == failed and sorted(again.order) == sorted([failed, *outcome.blocked])
    assert second.ok
