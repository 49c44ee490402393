"""Ready jobs start longest remaining path first, on both executors."""

from __future__ import annotations

from pathlib import Path

import pytest

from sftmix.errors import ConfigError
from sftmix.study.executor import State
from sftmix.study.jobs import Job
from sftmix.study.load import load_study
from sftmix.study.local import LocalExecutor
from sftmix.study.pool import Handle
from sftmix.study.priority import by_priority, remaining_path
from sftmix.study.runner import run_study
from sftmix.study.slurm import submission_order
from tests.study.pools import SettledAtSubmit
from tests.study.tiny_study import ABILITIES, MODELS

STUDY = "name: order\n" + ABILITIES + MODELS + """\
evaluation:
  gsm8k: {{path: {data}/gsm8k/test.jsonl}}
  ifeval: {{path: {data}/eval/ifeval/input_data.jsonl}}
designs:
  strategies: {{baselines: false, multi_task: false, sequential: null, mixed_sequential: false,
               dmt: {{ks: [0, 1/16, 1]}}}}
{extra}
"""


def _job(key: str, deps: list[str], kind: str = "stage") -> Job:
    return Job(key, kind, deps, {}, Path("/nonexistent") / key, key)


def test_the_longest_chain_comes_first_on_a_synthetic_graph() -> None:
    # Two chains from one mixture: a -> a2 (small), b -> b2 -> b3 (large); plus a lone evaluation.
    jobs = {k: _job(k, d) for k, d in [("m", []), ("a", ["m"]), ("a2", ["a"]), ("b", ["m"]),
                                       ("b2", ["b"]), ("b3", ["b2"]), ("e", [])]}
    weights = {"a": 10.0, "a2": 10.0, "b": 5.0, "b2": 40.0, "b3": 40.0}
    path = remaining_path(jobs, weights)
    assert path["b"] == 85.0 and path["a"] == 20.0 and path["m"] == 86.0 and path["e"] == 1.0
    assert by_priority(["a", "e", "b"], path) == ["b", "a", "e"]
    # Equal paths keep plan order.
    assert by_priority(["x", "y"], {"x": 1.0, "y": 1.0}) == ["x", "y"]
    # SLURM submission: dependencies first, then the longest chain.
    order = submission_order(jobs, path)
    assert order == ["m", "b", "b2", "b3", "a", "a2", "e"]


class _Instant(SettledAtSubmit):
    """Completes each job the moment it starts (writes the markers) and records the order."""

    def __init__(self) -> None:
        self.started: list[Job] = []

    def submit(self, job: Job, job_file: Path, log_file: Path) -> Handle:
        self.started.append(job)
        for out in job.outputs.values():
            out.mkdir(parents=True, exist_ok=True)
            (out / "COMPLETE.json").write_text("{}")
        return Handle(job, State.DONE)


def test_the_local_scheduler_starts_the_largest_dmt_chain_first(shared_data: Path, tmp_path: Path) -> None:
    """DMT's stage 2 with k = 1 replays all the specialist data: the largest stage of the
    three. In plan order it would start last (ks: 0, 1/16, 1); it starts first."""
    path = tmp_path / "study.yaml"
    path.write_text(STUDY.format(data=shared_data, extra=""))
    executor = _Instant()
    study = load_study(path)
    outcome = run_study(study, tmp_path / "out", LocalExecutor(study, pool=executor), progress=False)
    assert outcome.ok
    second_stages = [j.label.rsplit(" (", 1)[0] for j in executor.started
                     if j.kind == "stage" and j.label.startswith("general")]  # the data, not the purpose
    assert second_stages == ["general×1 + replay 1 of (code×1 + maths×1)",
                             "general×1 + replay 1/16 of (code×1 + maths×1)", "general×1"]
    kinds = [j.kind for j in executor.started]
    assert kinds.index("stage") < max(i for i, k in enumerate(kinds) if k == "mixture"), \
        "the first stage waited for every mixture instead of starting its chain"


def test_a_wrong_executor_block_names_the_field(shared_data: Path, tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(STUDY.format(data=shared_data, extra="executor: {name: slurm, time: soon, stage: {gpus: -1}}"))
    with pytest.raises(ConfigError) as err:
        load_study(path)
    text = str(err.value)
    assert "executor.time" in text and "'1:30:00'" in text and "executor.stage.gpus" in text
