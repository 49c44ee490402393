"""What the executor block turns into: the sbatch script submitit writes, the command on the node.

These need no cluster; ``test_slurm.py`` runs the same jobs on a real one.
"""

from __future__ import annotations

from pathlib import Path

from submitit.slurm.slurm import _make_sbatch_string

from sftmix.study.config import StudyConfig
from sftmix.study.executor_config import ExecutorConfig
from sftmix.study.jobs import Job
from sftmix.study.slurm import SlurmExecutor

BLOCK = {
    "name": "slurm", "partition": "gpu", "account": "proj", "qos": "high", "time": "2-00:00:00",
    "warning_seconds": 300, "sbatch": {"constraint": "a100"},
    "setup": ["module load cuda/12.4", "source /opt/venv/bin/activate"],
    "stage": {"cpus": 32, "gpus": 8, "mem_gb": 400, "accelerate_config": "/cfg/fsdp.yaml",
              "sbatch": {"exclusive": True}},
    "eval": {"cpus": 8, "gpus": 1, "time": "4:00:00"},
}


def _study() -> StudyConfig:
    return StudyConfig.model_validate({
        "name": "s", "abilities": {"maths": {"data": {"path": "x", "format": "gsm8k"}, "evals": ["gsm8k"]}},
        "models": [{"name": "m", "path": "smollm2"}], "executor": BLOCK})


def _script(kind: str, deps: list[str], tmp_path: Path) -> tuple[str, SlurmExecutor, Job]:
    study = _study()
    executor = SlurmExecutor(study)
    job = Job("s-abc", kind, ["m-1"], {}, tmp_path / "stages" / "s-abc", "dmt.general")
    params = executor.sbatch_options(job, study, deps)
    return _make_sbatch_string(command="python -m x", folder=tmp_path / "%j", **params), executor, job


def test_a_stage_asks_for_its_resources_dependencies_and_warning(tmp_path: Path) -> None:
    script, executor, job = _script("stage", ["41", "42"], tmp_path)
    for line in ("--partition=gpu", "--account=proj", "--qos=high", "--time=2-00:00:00",
                 "--cpus-per-task=32", "--gpus-per-node=8", "--mem=409600M", "--constraint=a100",
                 "--exclusive", "--requeue", "--signal=USR2@300", "--dependency=afterok:41:42",
                 "--kill-on-invalid-dep=yes", "--job-name=sftmix-s-s-abc"):
        assert f"#SBATCH {line}\n" in script, line
    assert "module load cuda/12.4\nsource /opt/venv/bin/activate\n" in script
    task = executor.command(job, tmp_path)
    assert task.checkpoint_on_warning and task.processes == 8 and task.max_requeues == 10
    command = task.command()
    assert command[1:3] == ["-m", "accelerate.commands.launch"]
    assert command[command.index("--num_processes") + 1] == "8"
    assert command[command.index("--config_file") + 1] == "/cfg/fsdp.yaml"
    assert command[-2:] == ["sftmix.study.worker", str(tmp_path / "jobs" / "s-abc.json")]


def test_an_evaluation_runs_one_process_and_ignores_the_warning(tmp_path: Path) -> None:
    script, executor, job = _script("eval", [], tmp_path)
    assert "#SBATCH --time=4:00:00\n" in script and "#SBATCH --gpus-per-node=1\n" in script
    assert "--dependency" not in script and "--requeue" not in script and "--exclusive" not in script
    task = executor.command(job, tmp_path)
    assert not task.checkpoint_on_warning and task.processes == 1
    assert task.command()[1:] == ["-m", "sftmix.study.worker", str(tmp_path / "jobs" / "s-abc.json")]


def test_the_defaults_ask_for_no_account_and_one_gpu_per_stage() -> None:
    config = ExecutorConfig()
    assert config.name == "local" and config.account is None
    assert (config.kind("stage").gpus, config.kind("eval").gpus, config.kind("mixture").gpus) == (1, 1, 0)
    assert config.kind("stage").launch_processes == 1
