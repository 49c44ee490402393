"""What the SLURM executor would submit, written out without submitting anything.

Each job's script is submitit's own text (``_make_sbatch_string``, what
``SlurmExecutor.submit`` writes before it calls ``sbatch``), built from the same
options (:meth:`SlurmExecutor.sbatch_options`), followed by the command the job runs
on its node as a comment -- submitit runs it from a pickle. A dependency on a job
not yet submitted has no SLURM id: the script names it by key, ``afterok:<m-...>``.

``sftmix plan`` shows one header per kind; ``sftmix run --executor slurm --dry-run``
writes every script into ``STUDY_DIR/slurm/dry-run/`` with an index, and contacts no
SLURM controller.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from sftmix.artifacts import write_text_atomic
from sftmix.study.jobs import Job
from sftmix.study.runner import StudyRun
from sftmix.study.slurm import SlurmExecutor, submission_order
from sftmix.study.slurm_queue import is_active, read_records, slurm_dir

DRY_RUN = "dry-run"


def sbatch_script(executor: SlurmExecutor, job: Job, run: StudyRun, deps: list[str]) -> str:
    """The script ``sbatch`` would get for ``job``; ``deps`` stand where the SLURM ids would."""
    from submitit.slurm.slurm import _make_sbatch_string

    folder = slurm_dir(run.study_dir) / "logs" / "%j"
    python = executor.config.python or sys.executable
    submit = f"{python} -u -m submitit.core._submit {shlex.quote(str(folder))}"
    params = executor.sbatch_options(job, run.study, deps)
    script = _make_sbatch_string(command=submit, folder=folder, **params)
    node = executor.command(job, run.study_dir)
    where = "on its node"
    if node.nodes > 1:  # its launcher needs srun's variables; show those of the first node
        env = {"SLURM_NNODES": str(node.nodes), "SLURM_NODEID": "0", "SLURM_JOB_NODELIST": "<nodes>",
               "MASTER_ADDR": "<first node>", "MASTER_PORT": "<20000 + job id mod 20000>"}
        command = node.command(env)
        where = "on node 0 (node k: --machine_rank k)"
    else:
        command = node.command()
    return script + f"# {where}, submitit runs:\n#   {shlex.join(command)}\n"


def header(script: str) -> list[str]:
    """The ``#SBATCH`` lines of a script, but the per-job file names."""
    return [line for line in script.splitlines()
            if line.startswith("#SBATCH") and not line.startswith(("#SBATCH --output", "#SBATCH --error"))]


def kind_headers(executor: SlurmExecutor, run: StudyRun, jobs: dict[str, Job]) -> dict[str, list[str]]:
    """Kind -> the ``#SBATCH`` lines of its first job (the rest of a kind differ by name and
    dependencies only)."""
    shown: dict[str, list[str]] = {}
    for job in jobs.values():
        if job.kind not in shown:
            lines = header(sbatch_script(executor, job, run, []))
            shown[job.kind] = [line for line in lines if not line.startswith("#SBATCH --job-name")]
    return shown


def write_dry_run(executor: SlurmExecutor, run: StudyRun) -> tuple[Path, list[str], list[str]]:
    """Write the study directory's job files and every script the executor would submit now
    (neither complete nor, as last recorded, queued or running); returns the folder, the keys
    written and the keys left out."""
    jobs = run.prepare(clean=False)  # jobs may be running: nothing half-built is removed
    active = {k for k, r in read_records(run.study_dir).items() if is_active(r)}
    folder = slurm_dir(run.study_dir) / DRY_RUN
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.sbatch"):
        old.unlink()
    written, complete, index = [], [], []
    for key in submission_order(jobs, run.priority(jobs)):
        job = jobs[key]
        if job.complete or key in active:
            complete.append(key)
            continue
        deps = [f"<{d}>" for d in job.deps if d in jobs and not jobs[d].complete]
        write_text_atomic(folder / f"{key}.sbatch", sbatch_script(executor, job, run, deps))
        index.append(f"{key}.sbatch\t{job.kind}\t{job.label}\tafter: {' '.join(deps) or '-'}")
        written.append(key)
    write_text_atomic(folder / "index.tsv", "script\tkind\tlabel\tdependencies\n"
                      + "".join(line + "\n" for line in index))
    return folder, written, complete


