"""The local executor's count: jobs stopped by the last failure of a run are blocked, not lost.

The study is planned for real (real data, a tiny model's spec); the pool stands in for the
workers: it publishes every artefact but a stage's, whose job fails, as a stage that cannot
train would. Nothing is trained.
"""

from __future__ import annotations

from pathlib import Path

from sftmix.artifacts import building
from sftmix.study.executor import State
from sftmix.study.jobs import Job
from sftmix.study.load import load_study
from sftmix.study.local import LocalExecutor
from sftmix.study.pool import Handle
from sftmix.study.runner import run_study
from tests.study.pools import SettledAtSubmit


class StagesFail(SettledAtSubmit):

    def submit(self, job: Job, job_file: Path, log_file: Path) -> Handle:
        if job.kind == "stage":
            return Handle(job, State.FAILED)
        for out in job.outputs.values():
            with building(out):
                pass
        return Handle(job, State.DONE)


def test_evaluations_after_the_last_failed_stage_are_counted_blocked(tmp_path: Path, shared_data: Path) -> None:
    study_file = tmp_path / "study.yaml"
    study_file.write_text(f"""
name: blocked
abilities:
  maths: {{data: {{path: {shared_data}/gsm8k/train.jsonl, format: gsm8k}}, evals: [gsm8k, math]}}
models: [{{name: tiny, tiny: {{vocab_size: 400, hidden: 32, layers: 2, heads: 2}}}}]
runs: [{{name: r, stages: [{{name: s, data: [{{ability: maths, count: 4}}]}}]}}]
""")
    study = load_study(study_file)
    outcome = run_study(study, tmp_path / "out", LocalExecutor(study, pool=StagesFail(), poll_seconds=0),
                        progress=False)
    kinds = {key: key.split("-")[0] for key in outcome.done + outcome.failed + outcome.blocked}
    assert sorted(kinds[k] for k in outcome.done) == ["b", "m"]
    assert [kinds[k] for k in outcome.failed] == ["s"]
    assert [kinds[k] for k in outcome.blocked] == ["e", "e"]  # one job per suite
    assert not outcome.ok
