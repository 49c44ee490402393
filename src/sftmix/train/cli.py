"""``sftmix train CONFIG.yaml [-o DIR]``: run one schedule of training stages.

The schedule runs as a study of one run (``sftmix.train.schedule.run_schedule``):
the output folder is a study directory, each stage published at ``stages/s-<key>`` and
shown as ``NN-<name>``, a link to it.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
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
                   help="replace stage folders that hold a stage trained from other inputs")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sftmix.artifacts import check_output_dir
    from sftmix.config import overriding, parse_overrides, read_yaml, validate
    from sftmix.train.config import ScheduleConfig
    from sftmix.train.schedule import check_files, plan_schedule, run_schedule
    from sftmix.train.stage import process_state

    source = str(args.config)
    with overriding(args.config, parse_overrides(args.settings)):
        data, node = read_yaml(args.config)
        config = validate(ScheduleConfig, data, source, node)
        stages = plan_schedule(config, source, node)  # every stage's settings are checked before any work
        base_dir = args.config.resolve().parent
        check_files(config, base_dir, source, node)
    if args.output is not None:
        out = args.output
    elif config.output_dir is not None:
        out = Path(config.output_dir) if Path(config.output_dir).is_absolute() else base_dir / config.output_dir
    else:
        out = Path("runs") / args.config.stem
    check_output_dir(out, "-o/--output" if args.output is not None else f"{source}: output_dir")
    state = process_state()
    if state.is_main_process:
        names = ", ".join(s.dirname for s in stages)
        print(f"training {len(stages)} stage(s) into {out}: {names}", flush=True)
    outputs = run_schedule(config, out, base_dir=base_dir, source=source, name=args.config.stem,
                           overwrite=args.overwrite)
    if state.is_main_process:
        for path in outputs:
            print(f"stage: {out / path.name}")
        print(f"final model: {out / outputs[-1].name}")
    return 0
