"""What the executor block turns into: the sbatch script submitit writes, the command on the node.

These need no cluster; ``test_slurm.py`` runs the same jobs on a real one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
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


def test_first_host_of_a_slurm_host_list() -> None:
    from sftmix.study.slurm_node import first_host

    assert first_host("node[0-1]") == "node0"
    assert first_host("gpu-[017-020,031],login1") == "gpu-017"
    assert first_host("a12,b[3-4]") == "a12"
    assert first_host("rack[2-3]-n1") == "rack2-n1"


def test_a_two_node_stage_starts_one_launcher_per_node_in_one_rendezvous(tmp_path: Path) -> None:
    """What srun's task on each node runs: the same world, its own machine rank."""
    from sftmix.study.slurm_node import NodeCommand

    block = {**BLOCK, "stage": {"cpus": 8, "gpus": 4, "nodes": 2}}
    study = StudyConfig.model_validate({**_study().model_dump(exclude={"executor"}), "executor": block})
    executor = SlurmExecutor(study)
    job = Job("s-abc", "stage", [], {}, tmp_path / "stages" / "s-abc", "dmt.general")  # type: ignore[arg-type]
    params = executor.sbatch_options(job, study, [])
    assert (params["nodes"], params["ntasks_per_node"], params["gpus_per_node"]) == (2, 1, 4)
    task = executor.command(job, tmp_path)
    assert isinstance(task, NodeCommand) and task.nodes == 2
    commands = []
    for node in ("0", "1"):
        env = {"SLURM_NNODES": "2", "SLURM_NODEID": node, "SLURM_JOB_NODELIST": "node[7-8]",
               "SLURM_JOB_ID": "123456", "MASTER_ADDR": "10.0.0.7"}
        commands.append(task.command(env))
    for rank, command in enumerate(commands):
        given = dict(zip(command[3::2], command[4::2], strict=False))
        assert given["--num_processes"] == "8" and given["--num_machines"] == "2"
        assert given["--machine_rank"] == str(rank)
        assert given["--main_process_ip"] == "10.0.0.7" and given["--main_process_port"] == str(20000 + 123456 % 20000)
    with pytest.raises(RuntimeError, match="asked for 2 nodes and runs on 3"):
        task.command({"SLURM_NNODES": "3", "SLURM_NODEID": "0", "SLURM_JOB_NODELIST": "n[1-3]",
                      "MASTER_ADDR": "n1"})


def test_only_a_stage_may_ask_for_several_nodes() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="only a training stage runs on several nodes"):
        ExecutorConfig.model_validate({"name": "slurm", "eval": {"nodes": 2}})
    assert ExecutorConfig.model_validate({"name": "slurm", "stage": {"nodes": 4}}).kind("stage").nodes == 4
