"""``sftmix train | plan | run | status | cancel``: a study (or a schedule, a study of one run)
from one file to a results store."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from sftmix.cli import at_least
from sftmix.errors import ConfigError, SftmixError

if TYPE_CHECKING:
    from sftmix.config import Override
    from sftmix.study.config import StudyConfig
    from sftmix.study.executor import Executor
    from sftmix.study.jobs import Job
    from sftmix.study.plan import Plan


def register(sub: argparse._SubParsersAction) -> None:
    _register_train(sub)
    p = sub.add_parser("plan", help="show a study's runs, distinct stages and evaluations, and the savings")
    p.add_argument("study", type=Path, help="study YAML file")
    p.add_argument("--runs", action="store_true", help="list every run with its stages")
    p.add_argument("--tokenizer", help="measure training tokens with this tokenizer (a model folder); "
                   "default: estimate from characters")
    p.add_argument("--no-cost", action="store_true", help="skip reading the data for the token count "
                   "(and the time estimate)")
    _estimate_options(p)
    p.add_argument("-o", "--out", type=Path, help="the study directory whose complete jobs count as done "
                   "and give their measured rates (default: studies/<name>, where it exists)")
    p.add_argument("--executor", help="estimate for this executor (default: the study's)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="set a field of the study file, as 'sftmix run --set' does, e.g. "
                        "executor.stage.gpus=8; repeatable")
    p.add_argument("--workers", type=at_least(1), help="local executor: jobs at a time (default: the study's)")
    p.set_defaults(func=_plan)

    p = sub.add_parser("run", help="run (or resume) a study: mixtures, training stages, evaluations")
    p.add_argument("study", type=Path, help="study YAML file")
    p.add_argument("-o", "--out", type=Path, help="study directory (default: studies/<name>)")
    p.add_argument("--workers", type=at_least(1), help="jobs at a time (default: the study's 'workers')")
    p.add_argument("--executor", help="where jobs run: local or slurm (default: the study's "
                   "'executor: name', else local)")
    p.add_argument("--wait", action="store_true",
                   help="slurm: follow the queued jobs to the end (default: return once they are queued)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="set a field of the study file, spelled as in the YAML, e.g. "
                        "training.max_steps=2 or evaluation.gsm8k.limit=10; repeatable")
    p.add_argument("--limit", type=at_least(1), help="evaluate the first N items of every suite "
                   "(the study's evaluation.<suite>.limit)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a study directory that holds another study")
    _estimate_options(p)
    p.add_argument("--yes", action="store_true", help="run without asking, whatever the estimate")
    p.add_argument("--ask-over", metavar="DURATION", help="ask for --yes when the estimate is over this "
                   "(30m, 2h, 1d; the wall time here, the total job time on SLURM; default: "
                   "$SFTMIX_ASK_OVER, else 1h)")
    p.add_argument("--dry-run", action="store_true", help="slurm: write every job's sbatch script into "
                   "STUDY_DIR/slurm/dry-run/ and submit nothing")
    p.set_defaults(func=_run)

    p = sub.add_parser("status", help="done / running / failed / pending work of a study directory")
    p.add_argument("study_dir", type=Path)
    p.set_defaults(func=_status)

    p = sub.add_parser("cancel", help="cancel a study's queued and running SLURM jobs")
    p.add_argument("study_dir", type=Path)
    p.set_defaults(func=_cancel)



def _estimate_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--throughput", action="append", default=[], metavar="WHAT=RATE",
                   help="a rate for the time estimate, per job: train=TOKENS_PER_S (one stage), "
                        "eval=TOKENS_PER_S (generated, one evaluation) or SUITE=RATE, e.g. "
                        "gsm8k=2items/s; repeatable (default: the study's own finished jobs, else "
                        "measured CPU rates or assumed GPU rates)")


def _plan(args: argparse.Namespace) -> int:
    from sftmix.config import parse_overrides
    from sftmix.study.cost import plan_cost
    from sftmix.study.estimate import estimate_study
    from sftmix.study.load import load_study
    from sftmix.study.plan import build_plan
    from sftmix.study.summary import estimate_summary, plan_summary

    study = load_study(args.study, parse_overrides(args.settings))
    if args.workers:
        study.workers = args.workers
    plan = build_plan(study)
    plan.cost = None if args.no_cost else plan_cost(plan, args.tokenizer)
    print(plan_summary(plan, list_runs=args.runs, cost=plan.cost))
    if plan.cost is not None:
        name = args.executor or study.executor.name
        out = args.out or Path("studies") / study.name
        est, jobs = estimate_study(plan, out, name, args.throughput)
        print(estimate_summary(est, _headers(study, plan, out, jobs) if name == "slurm" else None))
    return 0


def _headers(study: StudyConfig, plan: Plan, out: Path, jobs: dict[str, Job]) -> dict[str, list[str]]:
    from sftmix.study.runner import StudyRun
    from sftmix.study.slurm import SlurmExecutor
    from sftmix.study.slurm_preview import kind_headers

    run = StudyRun(study, out.resolve(), plan)
    return kind_headers(SlurmExecutor(study), run, jobs)


def _run(args: argparse.Namespace) -> int:
    from sftmix.artifacts import check_output_dir
    from sftmix.config import read_yaml
    from sftmix.study.executor import EXECUTORS, make_executor
    from sftmix.study.load import check_prerequisites, load_study
    from sftmix.study.runner import run_study

    overrides = _overrides(args)
    study = load_study(args.study, overrides)
    if args.workers:
        study.workers = args.workers
    name = args.executor or study.executor.name
    if name not in EXECUTORS:
        raise ConfigError(f"--executor {name!r}: unknown executor; available: {', '.join(EXECUTORS.names())}")
    processes = EXECUTORS.get(name).stage_processes(study)
    check_prerequisites(study, processes, read_yaml(args.study, overrides)[1])
    out = args.out or Path("studies") / study.name
    check_output_dir(out, "-o/--out")
    _check_other_study(out, study.name, args.overwrite)
    if args.wait and EXECUTORS.get(name).waits:
        raise SftmixError(f"--wait applies to executors that queue jobs (slurm); the {name} "
                          "executor always waits")
    if args.dry_run and name != "slurm":
        raise SftmixError(f"--dry-run writes the sbatch scripts of the slurm executor; this study runs on "
                          f"{name} (give --executor slurm, or see the estimate with 'sftmix plan')")
    executor = make_executor(name, study, wait=args.wait)
    plan = _estimated_plan(args, study, out, name)
    if plan is None:
        return 1
    if args.dry_run:
        return _dry_run(executor, study, out, plan)
    outcome = run_study(study, out, executor, plan=plan)
    print(f"study directory: {out}")
    if outcome.queued:
        print(f"jobs: {len(outcome.queued)} queued or running on SLURM, {len(outcome.done)} done now, "
              f"{len(outcome.skipped)} already complete, {len(outcome.failed)} failed, "
              f"{len(outcome.blocked)} cancelled by a failed dependency")
        print(f"watch: sftmix status {out}    cancel: sftmix cancel {out}")
        return 130 if outcome.interrupted else 0
    print(f"jobs: {len(outcome.done)} done now, {len(outcome.skipped)} already complete, "
          f"{len(outcome.failed)} failed, {len(outcome.blocked)} blocked by a failure")
    for key in outcome.failed:
        print(f"  failed: {key} (log: {out / 'logs' / (key + '.log')})")
    if outcome.interrupted:
        print("interrupted: completed work is kept; run the same command again to resume")
        return 130
    print(f"results: sftmix results {out}")
    return 0 if outcome.ok else 1


def _estimated_plan(args: argparse.Namespace, study: StudyConfig, out: Path, name: str) -> Plan | None:
    """The checked plan, once its estimate is printed and, over the threshold, accepted;
    None when the user said no."""
    from sftmix.settings import current
    from sftmix.study.confirm import confirm, threshold
    from sftmix.study.estimate import estimate_study
    from sftmix.study.runner import checked_plan
    from sftmix.study.summary import estimate_summary

    limit, set_by = threshold(args.ask_over, current().ask_over)
    plan = checked_plan(study)
    est, _ = estimate_study(plan, out, name, args.throughput)
    print(estimate_summary(est, brief=True), flush=True)
    if args.dry_run or confirm(est, limit, set_by, args.yes):
        return plan
    print("nothing was run")
    return None


def _dry_run(executor: Executor, study: StudyConfig, out: Path, plan: Plan) -> int:
    from sftmix.study.runner import StudyRun
    from sftmix.study.slurm import SlurmExecutor
    from sftmix.study.slurm_preview import write_dry_run

    assert isinstance(executor, SlurmExecutor)
    folder, written, left = write_dry_run(executor, StudyRun(study, out.resolve(), plan))
    print(f"dry run: {len(written)} sbatch scripts written to {folder} (index: {folder / 'index.tsv'}); "
          f"{len(left)} jobs complete or already queued; nothing was submitted")
    return 0


def _overrides(args: argparse.Namespace) -> list[Override]:
    """``--set`` as given, and ``--limit N`` as ``evaluation.<suite>.limit=N`` for every suite."""
    from sftmix.config import Override, parse_overrides, read_yaml

    overrides = parse_overrides(args.settings)
    if args.limit is None:
        return overrides
    data, _ = read_yaml(args.study, overrides)
    data = data if isinstance(data, dict) else {}
    suites = dict.fromkeys(data.get("evaluation") or {})
    for ability in (data.get("abilities") or {}).values():
        suites.update(dict.fromkeys(ability.get("evals") or [] if isinstance(ability, dict) else []))
    return overrides + [Override(("evaluation", str(s), "limit"), args.limit,
                                 f"{args.limit} (evaluation.{s}.limit)", "--limit") for s in suites]


def _check_other_study(out: Path, name: str, overwrite: bool, what: str = "study") -> None:
    """A study directory holds one study; another one's is kept unless --overwrite."""
    from sftmix.config import read_yaml

    existing = out / "study.yaml"
    if not existing.is_file():
        return
    found = (read_yaml(existing)[0] or {}).get("name")
    if found == name:
        return
    if not overwrite:
        raise ConfigError(f"{out} holds the {what} {found!r}, not {name!r}; give another directory "
                          "with -o, or --overwrite to delete it and start afresh")
    print(f"removing {out}, which held the {what} {found!r}")
    shutil.rmtree(out)


# -- sftmix train: a schedule of stages, as a study of one run --------------------------------

def _register_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="fine-tune a model through a schedule of stages (a strategy or explicit stages)",
        description="Run a training schedule: each stage starts from the previous stage's weights. "
                    "Completed stages are reused; an interrupted stage resumes from its last checkpoint. "
                    "For several processes or GPUs, run it under `accelerate launch -m sftmix train ...`.",
    )
    p.add_argument("config", type=Path, help="schedule YAML (see configs/train/)")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="output folder (default: the config's output_dir, else runs/<config name>)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="set a field of the config file, spelled as in the YAML, e.g. "
                        "training.max_steps=2 or stages[0].data[0].fraction=1/4 (values are read "
                        "as YAML); repeatable")
    p.add_argument("--overwrite", action="store_true",
                   help="delete what the output folder holds (this schedule's stages included) and "
                        "train every stage afresh")
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    from sftmix.artifacts import check_output_dir
    from sftmix.config import Source, parse_overrides, read_yaml, validate
    from sftmix.study import spellings
    from sftmix.study.load import check_prerequisites, check_study
    from sftmix.study.schedule import ScheduleConfig, check_files, run_schedule, to_study
    from sftmix.train.stage import process_state

    data, source = read_yaml(args.config, parse_overrides(args.settings))
    translated, origins = spellings.schedule_with_origins(data)
    config = validate(ScheduleConfig, translated, source)
    base_dir = args.config.resolve().parent
    study = to_study(config, args.config.stem, base_dir, source)  # the settings' problems first
    check_files(config, base_dir, source, origins)
    # Every stage's settings and every file, before any work (no line numbers: the fields
    # checked are the study's, which the schedule file does not spell out).
    check_study(study, Source(source.name, None, source.overrides))
    check_prerequisites(study, process_state().num_processes, Source(source.name, None, source.overrides))
    if args.output is not None:
        out = args.output
    elif config.output_dir is not None:
        out = Path(config.output_dir) if Path(config.output_dir).is_absolute() else base_dir / config.output_dir
    else:
        out = Path("runs") / args.config.stem
    check_output_dir(out, "-o/--output" if args.output is not None else f"{source.name}: output_dir")
    state = process_state()
    if state.is_main_process:
        if args.overwrite and out.is_dir():
            print(f"removing {out}: every stage is trained afresh (--overwrite)")
            shutil.rmtree(out)
        _check_other_study(out, study.name, False, "schedule")
        names = ", ".join(f"{i:02d}-{s.name}" for i, s in enumerate(study.runs[0].stages, start=1))
        print(f"training {len(study.runs[0].stages)} stage(s) into {out}: {names}", flush=True)
    state.wait_for_everyone()
    _, outputs = run_schedule(study, out)
    if state.is_main_process:
        for path in outputs:
            print(f"stage: {out / path.name}")
        print(f"final model: {out / outputs[-1].name}")
    return 0


def _check_study_dir(path: Path) -> None:
    if not (path / "study.yaml").is_file():
        raise SftmixError(f"{path}: not a study directory (expected the study.yaml that 'sftmix run' writes)")


def _status(args: argparse.Namespace) -> int:
    from sftmix.study.status import job_states, status_table

    _check_study_dir(args.study_dir)
    print(status_table(job_states(args.study_dir)))
    return 0


def _cancel(args: argparse.Namespace) -> int:
    from sftmix.study.slurm_queue import cancel_study

    _check_study_dir(args.study_dir)
    cancelled = cancel_study(args.study_dir)
    for key, job_id in cancelled:
        print(f"cancelled SLURM job {job_id} ({key})")
    print(f"{len(cancelled)} jobs cancelled; completed work is kept, 'sftmix run' resubmits the rest")
    return 0
