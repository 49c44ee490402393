"""What the executor block turns into: the sbatch script submitit writes, the command on the node;
and what it may not hold: values that would add lines to that script or that sbatch misreads.

These need no cluster (a stand-in ``sbatch`` on ``PATH`` records what it is given);
``test_slurm.py`` runs the same jobs on a real one.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from submitit.slurm.slurm import _make_sbatch_string

from sftmix.config import validate
from sftmix.errors import ConfigError
from sftmix.study.config import StudyConfig
from sftmix.study.executor_config import ExecutorConfig
from sftmix.study.jobs import Job
from sftmix.study.slurm import SlurmExecutor
from sftmix.study.time_limits import check_time, time_seconds
from tests.conftest import shared_data_dir

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


# -- values that reach the sbatch script, checked when the study is loaded --------------------

@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 5400), ("45:30", 2730), ("1:30:00", 5400), ("48:00:00", 172800), ("2-00", 172800),
    ("2-12:30", 217800), ("1-23:59:59", 172799), ("10:00", 600)])
def test_slurm_time_limits_are_read_as_sbatch_reads_them(text: str, seconds: int) -> None:
    assert check_time(text) == text and time_seconds(text) == seconds


@pytest.mark.parametrize("value", ["99:99:99", "1:60:00", "00:60", "1-24", "1-1:60", 0, "0", "0:00", "0-00",
                                   "-1", "UNLIMITED", "1.5", 1.5, "1:2:3:4", "", True, "ninety"])
def test_slurm_time_limits_sbatch_would_misread_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="SLURM time limit"):
        check_time(value)  # type: ignore[arg-type]


def _executor_error(block: dict[str, Any]) -> str:
    data = {"name": "s", "abilities": {"maths": {"data": {"path": "x", "format": "gsm8k"}}},
            "models": [{"name": "m", "path": "smollm2"}], "executor": {"name": "slurm", **block}}
    with pytest.raises(ConfigError) as caught:
        validate(StudyConfig, data, "study.yaml")
    return str(caught.value)


@pytest.mark.parametrize(("block", "message"), [
    ({"partition": "gpu\n#SBATCH --wrap=id"},
     r"field 'executor\.partition': found 'gpu\\n#SBATCH --wrap=id', expected: text without control "
     r"characters \(found '\\n'\)"),
    ({"account": "a\rb"}, r"field 'executor\.account': .*control characters \(found '\\r'\)"),
    ({"qos": "x\x00"}, r"field 'executor\.qos': .*control characters"),
    ({"python": "/usr/bin/python3\n#SBATCH --wrap=id"}, r"field 'executor\.python': .*control characters"),
    ({"sbatch": {"constraint\n#SBATCH --wrap=id": "a100"}},
     r"field 'executor\.sbatch\.'constraint\\n#SBATCH --wrap=id'': .*expected: an sbatch option's name"),
    ({"sbatch": {"constraint": "a100\n#SBATCH --wrap=id"}}, r"field 'executor\.sbatch\.constraint': .*control"),
    ({"sbatch": {"exclusive": False}}, r"field 'executor\.sbatch\.exclusive': found False, expected: true"),
    ({"stage": {"sbatch": {"x=y": 1}}}, r"field 'executor\.stage\.sbatch\.x=y': .*an sbatch option's name"),
    ({"setup": ["module load cuda\n#SBATCH --wrap=id"]}, r"field 'executor\.setup\[0\]': .*control characters"),
    ({"setup": ["source x", "  #SBATCH --wrap=id"]},
     r"field 'executor\.setup\[1\]': .*sbatch would read this one as an option"),
    ({"time": "99:99:99"}, r"field 'executor\.time': found '99:99:99', expected: a SLURM time limit"),
    ({"time": 0}, r"field 'executor\.time': found 0, expected: a positive SLURM time limit"),
    ({"eval": {"time": "1:99"}}, r"field 'executor\.eval\.time': found '1:99'"),
    ({"time": "10:00", "warning_seconds": 900},
     r"field 'executor\.warning_seconds': found 900, expected: fewer seconds than a stage's time limit, "
     r"'10:00' \(600 s\)"),
    ({"stage": {"time": "5"}}, r"field 'executor\.warning_seconds': found 300, .*'5' \(300 s\)"),
    ({"stage": {"mem_gb": float("inf")}}, r"field 'executor\.stage\.mem_gb': found inf, expected: .*finite"),
])
def test_what_would_reach_an_sbatch_script_is_checked_at_load(block: dict[str, Any], message: str) -> None:
    assert re.search(message, _executor_error(block)), _executor_error(block)


def test_a_tab_in_a_setup_line_is_shell_and_kept() -> None:
    config = ExecutorConfig.model_validate({"setup": ["export A=1\t# tab"], "time": "10:00",
                                            "warning_seconds": 0})
    assert config.setup == ["export A=1\t# tab"]


# -- a stand-in sbatch: what a rejected study would have submitted never reaches it -----------

STAND_IN = """#!/bin/sh
# Stands in for {name}: keeps what it is given, answers as the real one does.
for arg in "$@"; do [ -f "$arg" ] && cat "$arg" >> "{record}"; done
echo "$0 $*" >> "{record}.calls"
{answer}
"""
STUDY = """\
name: standin
abilities:
  maths: {{data: {{path: {data}/gsm8k/train.jsonl, format: gsm8k}}, evals: [gsm8k]}}
models: [{{name: tiny, tiny: {{vocab_size: 400, hidden: 32, layers: 2, heads: 2}}}}]
training: {{max_steps: 1}}
evaluation:
  gsm8k: {{path: {data}/gsm8k/test.jsonl, limit: 1}}
runs: [{{name: r, stages: [{{name: s, data: [{{ability: maths, count: 4}}]}}]}}]
executor:
  name: slurm
  time: 10:00
  warning_seconds: 60
{executor}
"""


def _stand_in_run(tmp_path: Path, executor: str, out_name: str = "out") -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "sbatch.record"
    for name, answer in (("sbatch", 'echo "Submitted batch job $$"'), ("squeue", "exit 0")):
        path = bin_dir / name
        path.write_text(STAND_IN.format(name=name, record=record if name == "sbatch" else tmp_path / "squeue",
                                        answer=answer))
        path.chmod(0o755)
    study = tmp_path / "study.yaml"
    study.write_text(STUDY.format(data=shared_data_dir(), executor=executor))
    out = tmp_path / out_name
    env = {k: v for k, v in os.environ.items() if not k.startswith("SFTMIX_")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", SFTMIX_PROGRESS="0")
    proc = subprocess.run([sys.executable, "-m", "sftmix", "run", str(study), "-o", str(out)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    return proc, record, out


def test_the_stand_in_sbatch_receives_a_valid_study(tmp_path: Path) -> None:
    proc, record, _ = _stand_in_run(tmp_path, '  partition: gpu\n  setup: ["export A=1"]')
    assert proc.returncode == 0, proc.stderr[-3000:]
    scripts = record.read_text()
    assert scripts.count("#!/bin/bash") == 4  # base model, mixture, stage, evaluation
    assert scripts.count("#SBATCH --partition=gpu\n") == 4 and "--wrap" not in scripts
    assert "\n# setup\nexport A=1\n" in scripts
    assert "4 queued or running on SLURM" in proc.stdout


@pytest.mark.parametrize(("executor", "field"), [
    ('  partition: "gpu\\n#SBATCH --wrap=id"', "executor.partition"),
    ('  sbatch: {"constraint\\n#SBATCH --wrap=id": a100}', r"executor.sbatch.'constraint\\n"),
    ('  setup: ["module load cuda\\n#SBATCH --wrap=id"]', r"executor.setup\[0\]"),
    ('  setup: ["#SBATCH --wrap=id"]', r"executor.setup\[0\]"),
    ('  account: "proj\\n#SBATCH --wrap=id"', "executor.account"),
])
def test_an_injected_option_never_reaches_sbatch(tmp_path: Path, executor: str, field: str) -> None:
    proc, record, out = _stand_in_run(tmp_path, executor)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert re.search(rf"study\.yaml, line \d+, field '{field}", proc.stderr), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not record.exists() and not Path(f"{record}.calls").exists() and not out.exists()


def test_a_study_directory_with_a_newline_never_reaches_sbatch(tmp_path: Path) -> None:
    proc, record, out = _stand_in_run(tmp_path, "", out_name="out\n#SBATCH --wrap=id")
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "-o/--out" in proc.stderr and "control characters" in proc.stderr
    assert not record.exists() and not out.exists()


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
