"""Malformed input through the real ``sftmix`` command: exit 2, one clear message, nothing written.

Every case runs ``python -m sftmix ...`` in a subprocess, in a fresh empty working
folder (where default outputs such as ``studies/<name>`` would go) with ``-o``
pointing into it. The message must name the file (or the flag) and the line or
field, and no traceback may show. The cases run a few at a time (each one pays
the interpreter's imports); every case is still its own test.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from sftmix.errors import DataError
from sftmix.study.store import STORE_NAME, ResultsStore
from sftmix.train.stage import read_examples
from tests.conftest import ROOT, paper_data_env, shared_data_dir

DATA = shared_data_dir()

STUDY = f"""\
name: hardening
abilities:
  maths: {{data: {{path: {DATA}/gsm8k/train.jsonl, format: gsm8k}}, evals: [gsm8k]}}
  general: {{data: {{path: {DATA}/general/alpaca_en_demo.json, format: alpaca}}, evals: [ifeval]}}
models: [{{name: tiny, tiny: {{vocab_size: 400, hidden: 32, layers: 2, heads: 2}}}}]
training: {{max_steps: 1, precision: fp32}}
evaluation:
  gsm8k: {{path: {DATA}/gsm8k/test.jsonl, limit: 2}}
  ifeval: {{path: {DATA}/eval/ifeval/input_data.jsonl, limit: 2}}
designs:
  scaling: {{fractions: [1/64]}}
"""

MIXTURE = f"""\
seed: 0
sources:
  - {{name: gsm8k, path: {DATA}/gsm8k/train.jsonl, format: gsm8k}}
  - {{name: chat, path: {DATA}/general/alpaca_en_demo.json, format: alpaca}}
entries:
  - {{source: gsm8k, count: 8}}
  - {{source: chat, fraction: 1/64}}
"""

SCHEDULE = f"""\
model:
  tiny: {{vocab_size: 400, hidden: 32, layers: 2, heads: 2}}
abilities:
  maths: {{data: {{path: {DATA}/gsm8k/train.jsonl, format: gsm8k}}}}
  general: {{data: {{path: {DATA}/general/alpaca_en_demo.json, format: alpaca}}}}
strategy: multi_task
training: {{max_steps: 1, precision: fp32}}
"""

STAGES = f"""\
model:
  tiny: {{vocab_size: 400, hidden: 32, layers: 2, heads: 2}}
stages:
  - name: maths
    data:
      - path: {{path: {DATA}/gsm8k/train.jsonl, format: gsm8k}}
        fraction: 0.01
"""

GSM8K_LINE = '{"question": "What is 2 + 3?", "answer": "2 + 3 = 5\\n#### 5"}\n'

# Input files, written once into the inputs folder: name -> text or bytes.
FILES: dict[str, str | bytes] = {
    "study.yaml": STUDY,
    "mix.yaml": MIXTURE,
    "train.yaml": SCHEDULE,
    "binary.yaml": bytes(range(256)) * 4,
    "latin1.yaml": STUDY.replace("name: hardening", "# caf\xe9\nname: hardening").encode("latin-1"),
    "a_file": "not a folder\n",
    # Missing data paths: the YAML line and field, not only the data file's name.
    "mix_missing.yaml": MIXTURE.replace("gsm8k/train.jsonl", "gsm8k/trian.jsonl"),
    "train_missing.yaml": SCHEDULE.replace("gsm8k/train.jsonl", "gsm8k/trian.jsonl"),
    "stages_missing.yaml": STAGES.replace("gsm8k/train.jsonl", "gsm8k/trian.jsonl"),
    "study_missing.yaml": STUDY.replace("gsm8k/train.jsonl", "gsm8k/trian.jsonl"),
    # A malformed record in a study's data (relative paths are read from the study's folder).
    "study_bad_record.yaml": STUDY.replace(f"{DATA}/gsm8k/train.jsonl", "missing_field.jsonl"),
    "train_model_missing.yaml": SCHEDULE.replace(
        "tiny: {vocab_size: 400, hidden: 32, layers: 2, heads: 2}", "path: no/such/model"),
    "train_output_file.yaml": SCHEDULE + "output_dir: a_file\n",
    # Data files.
    "unterminated.jsonl": GSM8K_LINE + '{"question": "What is 2 + 2?", "answer": "4}\n',
    "missing_field.jsonl": GSM8K_LINE + '{"question": "What is 1 + 1?", "solution": "2"}\n',
    "binary.jsonl": b"\xff\xfe\x00garbage\n",
    # Study files.
    "bad_yaml.yaml": STUDY.replace("designs:", "designs: [unclosed"),
    "unknown_field.yaml": STUDY.replace("training:", "trainng:"),
    "wrong_type.yaml": STUDY.replace("fractions: [1/64]", "fractions: [lots]"),
    "negative_fraction.yaml": STUDY.replace("fractions: [1/64]", "fractions: [-0.5]"),
    "unset_env.yaml": STUDY.replace(f"{DATA}/gsm8k/test.jsonl", "${SFTMIX_NO_SUCH_VARIABLE}/test.jsonl"),
    "unknown_ability.yaml": STUDY.replace("fractions: [1/64]", "fractions: [1/64], abilities: [maths, cooking]"),
    "unknown_suite.yaml": STUDY.replace("evals: [gsm8k]", "evals: [gsm9k]"),
    "duplicate_models.yaml": STUDY.replace("models: [{name: tiny,", "models: [{name: tiny, tiny: {}}, {name: tiny,"),
    "bad_training.yaml": STUDY.replace("max_steps: 1", "max_steps: 1, learning_rate: fast"),
    "top_level_list.yaml": "- just\n- a list\n",
    "eval_zero_tokens.yaml": STUDY.replace("limit: 2}", "limit: 2, max_new_tokens: 0}", 1),
    # Mixture files.
    "mix_unknown_source.yaml": MIXTURE.replace("{source: gsm8k, count: 8}", "{source: gsm9k, count: 8}"),
    "mix_bad_fraction.yaml": MIXTURE.replace("fraction: 1/64", "fraction: a lot"),
    "mix_unknown_format.yaml": MIXTURE.replace("format: alpaca", "format: alpacca"),
    # Schedule files.
    "train_both.yaml": SCHEDULE + "stages: [{name: x, data: [{path: a_file}]}]\n",
    "train_unknown_strategy.yaml": SCHEDULE.replace("strategy: multi_task", "strategy: multi_tusk"),
    "train_bad_option.yaml": SCHEDULE.replace("strategy: multi_task", "strategy: {dmt: {k: -1}}"),
    "train_bad_setting.yaml": SCHEDULE.replace("max_steps: 1", "max_steps: 1, epochs: many"),
    # Executor blocks: what would reach an sbatch script, or that sbatch would misread.
    "slurm_partition.yaml": STUDY + 'executor: {name: slurm, partition: "gpu\\n#SBATCH --wrap=id"}\n',
    "slurm_key.yaml": STUDY + 'executor: {name: slurm, sbatch: {"constraint\\n#SBATCH --wrap=id": a100}}\n',
    "slurm_setup.yaml": STUDY + 'executor: {name: slurm, setup: ["module load cuda\\n#SBATCH --wrap=id"]}\n',
    "slurm_setup_directive.yaml": STUDY + 'executor: {name: slurm, setup: ["#SBATCH --partition=other"]}\n',
    "slurm_time_99.yaml": STUDY + "executor: {name: slurm, time: '99:99:99'}\n",
    "slurm_time_0.yaml": STUDY + "executor: {name: slurm, time: 0}\n",
    "slurm_warning.yaml": STUDY + "executor: {name: slurm, time: 1:00:00, warning_seconds: 7200}\n",
    "slurm_mem_inf.yaml": STUDY + "executor: {name: slurm, stage: {mem_gb: .inf}}\n",
    "slurm_python.yaml": STUDY + "executor: {name: slurm, python: /no/such/python}\n",
    "slurm_accelerate.yaml": STUDY + "executor: {name: slurm, stage: {gpus: 2, accelerate_config: no_fsdp.yaml}}\n",
    # Evaluation prerequisites: a judge with no key (the general ability on MT-Bench).
    "judge.yaml": STUDY.replace("evals: [ifeval]", "evals: [mtbench]"),
    "judge_url.yaml": STUDY.replace("evals: [ifeval]", "evals: [mtbench]").replace(
        "designs:", "  mtbench: {judge: {base_url: 'localhost:8000/v1', api_key: planted}}\ndesigns:"),
}


@dataclass(frozen=True)
class Case:
    """A command line (``{in}``: the inputs folder, ``{out}``: an output folder in the working
    folder, ``{repo}``: the checkout) and a regular expression the message must match;
    ``env``: variables set for it."""

    argv: str
    message: str
    env: tuple[tuple[str, str], ...] = ()


PAPER_ENV = tuple(paper_data_env(DATA).items())


CASES: dict[str, Case] = {
    # Configuration files that are not UTF-8.
    "plan_binary": Case("plan {in}/binary.yaml", r"binary\.yaml, line \d+ \(byte 128\): not UTF-8"),
    "run_binary": Case("run {in}/binary.yaml -o {out}", r"binary\.yaml, line \d+ \(byte 128\): not UTF-8"),
    "train_binary": Case("train {in}/binary.yaml -o {out}", r"binary\.yaml, line \d+ \(byte 128\): not UTF-8"),
    "mix_binary": Case("data mix {in}/binary.yaml -o {out}", r"binary\.yaml, line \d+ \(byte 128\): not UTF-8"),
    "plan_latin1": Case("plan {in}/latin1.yaml", r"latin1\.yaml, line 1 \(byte 5\): not UTF-8 .*0xe9"),
    "corpus_binary": Case("lab corpus {out} --config {in}/binary.yaml", r"binary\.yaml, line \d+ .*not UTF-8"),
    # Output paths that exist and are not folders: refused before any work.
    "run_out_file": Case("run {in}/study.yaml -o {in}/a_file", r"-o/--out .*a_file: not a folder"),
    "run_out_under_file": Case("run {in}/study.yaml -o {in}/a_file/sub", r"a_file/sub: not a folder \(.*a_file is a file\)"),
    "train_out_file": Case("train {in}/train.yaml -o {in}/a_file", r"-o/--output .*a_file: not a folder"),
    "train_output_dir_file": Case("train {in}/train_output_file.yaml", r"train_output_file\.yaml: output_dir .*a_file: not a folder"),
    "eval_out_file": Case("eval {in} --suite gsm8k --data-dir " + str(DATA) + " -o {in}/a_file",
                          r"-o/--out .*a_file: not a folder"),
    "mix_out_file": Case("data mix {in}/mix.yaml -o {in}/a_file", r"-o/--output .*a_file: not a folder"),
    # Numbers out of range.
    "run_workers_0": Case("run {in}/study.yaml -o {out} --workers 0", r"argument --workers: found '0', expected a whole number >= 1"),
    "demo_workers_0": Case("demo -o {out} --workers 0", r"argument --workers: found '0'"),
    "demo_out_file": Case("demo -o {in}/a_file", r"-o/--out .*a_file: not a folder"),
    "corpus_out_file": Case("lab corpus {in}/a_file", r"a_file: not a folder"),
    "report_out_file": Case("report {in} -o {in}/a_file", r"-o/--out .*a_file: not a folder"),
    "eval_max_new_tokens_0": Case("eval {in} --suite gsm8k -o {out} --max-new-tokens 0", r"argument --max-new-tokens: found '0'"),
    "eval_batch_size_0": Case("eval {in} --suite gsm8k -o {out} --batch-size 0", r"argument --batch-size: found '0'"),
    "eval_limit_0": Case("eval {in} --suite gsm8k -o {out} --limit 0", r"--limit 0: expected a positive number"),
    "inspect_show_negative": Case("data inspect {in}/missing_field.jsonl --show -3", r"argument --show: found '-3', expected a whole number >= 0"),
    "workers_not_a_number": Case("run {in}/study.yaml -o {out} --workers two", r"argument --workers: found 'two'"),
    "plan_eval_max_new_tokens_0": Case("plan {in}/eval_zero_tokens.yaml",
                                       r"eval_zero_tokens\.yaml, line 8, field 'evaluation\.gsm8k': gsm8k option 'max_new_tokens' is 0; expected a whole number >= 1"),
    "eval_set_max_new_tokens_0": Case("eval {in} --suite gsm8k -o {out} --set gsm8k.max_new_tokens=0",
                                      r"gsm8k option 'max_new_tokens' is 0; expected a whole number >= 1"),
    "report_tsne_negative": Case("report {in} --tsne-queries -1", r"--tsne-queries must be >= 0"),
    # A missing data path: the YAML line and field.
    "mix_missing_path": Case("data mix {in}/mix_missing.yaml -o {out}",
                             r"mix_missing\.yaml, line 3, field 'sources\[0\]\.path': data file not found: .*trian\.jsonl"),
    "train_missing_path": Case("train {in}/train_missing.yaml -o {out}",
                               r"train_missing\.yaml, line 4, field 'abilities\.maths\.data\.path': data file not found"),
    "stages_missing_path": Case("train {in}/stages_missing.yaml -o {out}",
                                r"stages_missing\.yaml, line 6, field 'stages\[0\]\.data\[0\]\.path\.path': data file not found"),
    "train_missing_model": Case("train {in}/train_model_missing.yaml -o {out}",
                                r"train_model_missing\.yaml, line 2, field 'model\.path': model folder not found"),
    "study_missing_path": Case("plan {in}/study_missing.yaml",
                               r"study_missing\.yaml, line 3, field 'abilities\.maths\.data\.path': data file not found"),
    "plan_study_bad_record": Case("plan {in}/study_bad_record.yaml", r"missing_field\.jsonl, line 2, field 'answer'"),
    "run_study_bad_record": Case("run {in}/study_bad_record.yaml -o {out}", r"missing_field\.jsonl, line 2, field 'answer'"),
    "run_study_missing_path": Case("run {in}/study_missing.yaml -o {out}", r"study_missing\.yaml, line 3, field 'abilities\.maths\.data\.path'"),
    # Invalid records: data inspect guards a pipeline; JSON errors say where, once.
    "inspect_invalid_record": Case("data inspect {in}/missing_field.jsonl --format gsm8k",
                                   r"1 invalid record\(s\) in .*missing_field\.jsonl; the first: .*line 2, field 'answer'"),
    "inspect_unterminated": Case("data inspect {in}/unterminated.jsonl --format gsm8k",
                                 r"unterminated\.jsonl, line 2: not valid JSON \(Unterminated string starting at column \d+\)"),
    "inspect_unterminated_raise": Case("data inspect {in}/unterminated.jsonl --format gsm8k --on-error raise",
                                       r"unterminated\.jsonl, line 2: not valid JSON \(Unterminated string starting at column \d+\)"),
    "inspect_binary": Case("data inspect {in}/binary.jsonl --format gsm8k", r"binary\.jsonl, line 1: the file is not UTF-8"),
    "inspect_missing_file": Case("data inspect {in}/nothing.jsonl", r"nothing\.jsonl: data file not found"),
    "inspect_unknown_format": Case("data inspect {in}/missing_field.jsonl --format gsm9k", r"unknown .*'gsm9k'.*available"),
    # Study files.
    "plan_missing_file": Case("plan {in}/nothing.yaml", r"nothing\.yaml: config file not found"),
    "plan_bad_yaml": Case("plan {in}/bad_yaml.yaml", r"bad_yaml\.yaml, line \d+, column \d+: not valid YAML"),
    "plan_unknown_field": Case("plan {in}/unknown_field.yaml", r"unknown_field\.yaml, line 6, field 'trainng': unknown field"),
    "plan_wrong_type": Case("plan {in}/wrong_type.yaml", r"wrong_type\.yaml, line 11, field 'designs\.scaling\.fractions\[0\]'"),
    "plan_negative_fraction": Case("plan {in}/negative_fraction.yaml", r"negative_fraction\.yaml, line 11, field 'designs\.scaling\.fractions\[0\]'"),
    "plan_unset_env": Case("plan {in}/unset_env.yaml", r"unset_env\.yaml, line 8: environment variable SFTMIX_NO_SUCH_VARIABLE is not set"),
    "plan_unknown_ability": Case("plan {in}/unknown_ability.yaml", r"unknown_ability\.yaml, line 11, field 'designs\.scaling\.abilities\[1\]': unknown ability 'cooking'"),
    "plan_unknown_suite": Case("plan {in}/unknown_suite.yaml", r"unknown_suite\.yaml, line 3, field 'abilities\.maths\.evals\[0\]': unknown evaluation suite 'gsm9k'"),
    "plan_duplicate_models": Case("plan {in}/duplicate_models.yaml", r"duplicate_models\.yaml, line 5, field 'models\[1\]\.name': duplicate model name"),
    "plan_bad_training": Case("plan {in}/bad_training.yaml", r"bad_training\.yaml, line 6, field 'training\.learning_rate'"),
    "plan_top_level_list": Case("plan {in}/top_level_list.yaml", r"top_level_list\.yaml, line 1, field '\(top level\)'"),
    "status_not_a_study": Case("status {out}", r"out: not a study directory"),
    "results_not_a_study": Case("results {out}", r"out: not a study directory"),
    # Mixture files.
    "mix_unknown_source": Case("data mix {in}/mix_unknown_source.yaml -o {out}", r"mix_unknown_source\.yaml, line 6, field 'entries\[0\]\.source': unknown source 'gsm9k'"),
    "mix_bad_fraction": Case("data mix {in}/mix_bad_fraction.yaml -o {out}", r"mix_bad_fraction\.yaml, line 7, field 'entries\[1\]\.fraction'"),
    "mix_unknown_format": Case("data mix {in}/mix_unknown_format.yaml -o {out}", r"mix_unknown_format\.yaml, line 4, field 'sources\[1\]\.format': unknown data format 'alpacca'"),
    # Schedule files.
    "train_both": Case("train {in}/train_both.yaml -o {out}", r"train_both\.yaml, line 1, field '\(top level\)'.*exactly one of 'strategy'"),
    "train_unknown_strategy": Case("train {in}/train_unknown_strategy.yaml -o {out}", r"unknown .*'multi_tusk'.*available"),
    "train_bad_option": Case("train {in}/train_bad_option.yaml -o {out}", r"train_bad_option\.yaml, line 6, field 'strategy\.dmt\.k'"),
    "train_bad_setting": Case("train {in}/train_bad_setting.yaml -o {out}", r"train_bad_setting\.yaml, line 7, field 'training\.epochs'"),
    # Evaluation options.
    "eval_unknown_suite": Case("eval {in} --suite gsm9k -o {out}", r"--suite 'gsm9k': unknown suite\(s\) gsm9k; available"),
    "eval_bad_set": Case("eval {in} --suite gsm8k -o {out} --set gsm8k", r"--set 'gsm8k': expected SUITE\.KEY=VALUE"),
    "eval_missing_data_dir": Case("eval {in} --suite gsm8k -o {out} --data-dir {in}/nowhere", r"--data-dir .*nowhere: no such folder"),
    # Values that would reach an sbatch script: refused when the study is loaded.
    "slurm_partition_newline": Case("run {in}/slurm_partition.yaml -o {out}",
                                    r"slurm_partition\.yaml, line 12, field 'executor\.partition': found 'gpu\\n#SBATCH --wrap=id', expected: text without control characters"),
    "slurm_key_newline": Case("run {in}/slurm_key.yaml -o {out}",
                              r"slurm_key\.yaml, line 12, field 'executor\.sbatch\.'constraint\\n#SBATCH --wrap=id'': .*expected: an sbatch option's name"),
    "slurm_setup_newline": Case("run {in}/slurm_setup.yaml -o {out}",
                                r"slurm_setup\.yaml, line 12, field 'executor\.setup\[0\]': .*expected: text without control characters"),
    "slurm_setup_directive": Case("run {in}/slurm_setup_directive.yaml -o {out}",
                                  r"slurm_setup_directive\.yaml, line 12, field 'executor\.setup\[0\]': found '#SBATCH --partition=other', expected: a shell line; sbatch would read this one as an option"),
    "slurm_time_99": Case("run {in}/slurm_time_99.yaml -o {out}",
                          r"slurm_time_99\.yaml, line 12, field 'executor\.time': found '99:99:99', expected: a SLURM time limit such as"),
    "slurm_time_0": Case("run {in}/slurm_time_0.yaml -o {out}",
                         r"slurm_time_0\.yaml, line 12, field 'executor\.time': found 0, expected: a positive SLURM time limit .*0 is no limit"),
    "slurm_time_set": Case("run {in}/study.yaml -o {out} --executor slurm --set executor.time=1:99:00",
                           r"study\.yaml as set by --set executor\.time=1:99:00, field 'executor\.time': found '1:99:00'"),
    "slurm_warning": Case("run {in}/slurm_warning.yaml -o {out}",
                          r"slurm_warning\.yaml, line 12, field 'executor\.warning_seconds': found 7200, expected: fewer seconds than a stage's time limit, '1:00:00' \(3600 s\)"),
    "slurm_mem_inf": Case("run {in}/slurm_mem_inf.yaml -o {out}",
                          r"slurm_mem_inf\.yaml, line 12, field 'executor\.stage\.mem_gb': found inf, expected: Input should be a finite number"),
    "slurm_python": Case("run {in}/slurm_python.yaml -o {out}",
                         r"slurm_python\.yaml, line 12, field 'executor\.python': not found: /no/such/python"),
    "slurm_accelerate": Case("run {in}/slurm_accelerate.yaml -o {out}",
                             r"slurm_accelerate\.yaml, line 12, field 'executor\.stage\.accelerate_config': accelerate config file not found: no_fsdp\.yaml \(that is, .*inputs/no_fsdp\.yaml\)"),
    # Prerequisites of a run, before its first job: a judge's key and endpoint, batch arithmetic.
    "run_judge_without_key": Case("run {in}/judge.yaml -o {out}",
                                  r"judge\.yaml, line 8, field 'evaluation\.mtbench': mtbench: the judge is https://api\.openai\.com/v1 but no API key is set"),
    "run_judge_bad_url": Case("run {in}/judge_url.yaml -o {out}",
                              r"judge_url\.yaml, line 10, field 'evaluation\.mtbench': mtbench: the judge's base_url is 'localhost:8000/v1'"),
    "run_paper_without_key": Case("run {repo}/configs/paper/all.yaml -o {out}",
                                  r"all\.yaml, line \d+, field 'evaluation\.mtbench': mtbench: the judge is https://api\.openai\.com/v1 but no API key is set",
                                  PAPER_ENV),
    "run_batch_arithmetic": Case("run {in}/study.yaml -o {out} --set training.global_batch_size=3",
                                 r"study\.yaml as set by --set training\.global_batch_size=3, field 'training\.global_batch_size': global_batch_size 3 is not a multiple of per_device_batch_size 2 x 1 process\(es\)"),
    "run_batch_arithmetic_slurm": Case("run {in}/study.yaml -o {out} --set executor.name=slurm --set executor.stage.gpus=3",
                                       r"study\.yaml, line 6, field 'training\.global_batch_size': global_batch_size 128 is not a multiple of per_device_batch_size 2 x 3 process\(es\)"),
    # Numbers: a limit of no items, infinite settings.
    "run_limit_0": Case("run {in}/study.yaml -o {out} --limit 0", r"argument --limit: found '0', expected a whole number >= 1"),
    "run_set_limit_0": Case("run {in}/study.yaml -o {out} --set evaluation.gsm8k.limit=0",
                            r"study\.yaml as set by --set evaluation\.gsm8k\.limit=0, field 'evaluation\.gsm8k\.limit': found 0, expected a whole number of items >= 1"),
    "run_set_limit_negative": Case("run {in}/study.yaml -o {out} --set evaluation.gsm8k.limit=-3",
                                   r"study\.yaml as set by --set evaluation\.gsm8k\.limit=-3, field 'evaluation\.gsm8k\.limit': found -3"),
    "run_learning_rate_inf": Case("run {in}/study.yaml -o {out} --set training.learning_rate=.inf",
                                  r"study\.yaml as set by --set training\.learning_rate=\.inf, field 'training\.learning_rate': found inf, expected: Input should be a finite number"),
    "run_epochs_nan": Case("run {in}/study.yaml -o {out} --set training.epochs=.nan",
                           r"as set by --set training\.epochs=\.nan, field 'training\.epochs': found nan, expected: Input should be a finite number"),
    "train_learning_rate_inf": Case("train {in}/train.yaml -o {out} --set training.learning_rate=-.inf",
                                    r"train\.yaml as set by --set training\.learning_rate=-\.inf, field 'training\.learning_rate'"),
    # --set errors name the flag, not a line of the file.
    "set_new_ability": Case("run {in}/study.yaml -o {out} --set abilities.mathz.data.path=x",
                            r"study\.yaml as set by --set abilities\.mathz\.data\.path=x, field 'abilities\.mathz\.data\.format': required field is missing"),
    "set_data_path": Case("run {in}/study.yaml -o {out} --set abilities.maths.data.path=nowhere.jsonl",
                          r"study\.yaml as set by --set abilities\.maths\.data\.path=nowhere\.jsonl, field 'abilities\.maths\.data\.path': data file not found"),
    "set_evals": Case("run {in}/study.yaml -o {out} --set abilities.maths.evals=[gsm9k]",
                      r"study\.yaml as set by --set abilities\.maths\.evals=\[gsm9k\], field 'abilities\.maths\.evals\[0\]': unknown evaluation suite 'gsm9k'"),
    "set_top_level_evals": Case("run {in}/study.yaml -o {out} --set evals=3",
                                r"study\.yaml as set by --set evals=3, field 'evals': unknown field"),
    "set_eval_option": Case("run {in}/study.yaml -o {out} --set evaluation.gsm8k.mode=banana",
                            r"study\.yaml as set by --set evaluation\.gsm8k\.mode=banana, field 'evaluation\.gsm8k': gsm8k option 'mode' is 'banana'"),
    "set_executor_name": Case("run {in}/study.yaml -o {out} --set executor.name=pbs",
                              r"study\.yaml as set by --set executor\.name=pbs, field 'executor\.name': found 'pbs', expected: an executor's name; available: inline, local, slurm"),
    "run_executor_flag": Case("run {in}/study.yaml -o {out} --executor pbs", r"--executor 'pbs': unknown executor; available"),
    # Output files and folders that cannot be written: refused before any work.
    "results_csv_proc": Case("results {in} --csv /proc/x.csv", r"--csv /proc/x\.csv: cannot write in /proc"),
    "results_parquet_sys": Case("results {in} --parquet /sys/x.parquet", r"--parquet /sys/x\.parquet: cannot write in /sys"),
    "results_csv_folder": Case("results {in} --csv {in}", r"--csv .*inputs: a folder; expected the name of a file"),
    "results_csv_under_file": Case("results {in} --csv {in}/a_file/x.csv",
                                   r"--csv .*a_file/x\.csv: cannot be written \(.*a_file is a file, not a folder\)"),
    "report_out_proc": Case("report {in} -o /proc/rep", r"-o/--out /proc/rep: cannot write in /proc"),
}


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stderr: str
    written: list[str]  # what the command left in its working folder
    seconds: float


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>"
            for p in sorted(folder.rglob("*"))}


def _run(case: Case, inputs: Path, work: Path) -> Outcome:
    work.mkdir()
    argv = (case.argv.replace("{in}", str(inputs)).replace("{out}", str(work / "out"))
            .replace("{repo}", str(ROOT)).split())
    # No judge key from the environment either: a case that needs one must say so.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SFTMIX_") and k != "OPENAI_API_KEY"}
    env.update(SFTMIX_PROGRESS="0", SFTMIX_DATA_DIR=str(DATA), **dict(case.env))
    before = _tree(inputs)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "sftmix", *argv], cwd=work, env=env,
                          capture_output=True, text=True, timeout=300)
    changed = [f"{inputs.name}/{k}" for k, v in _tree(inputs).items() if before.get(k) != v]
    return Outcome(proc.returncode, proc.stderr, sorted(_tree(work)) + changed, time.monotonic() - started)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Outcome]]:
    root = tmp_path_factory.mktemp("cli-errors")
    inputs = root / "inputs"
    inputs.mkdir()
    for name, content in FILES.items():
        target = inputs / name
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    with ThreadPoolExecutor(max(2, min(4, os.cpu_count() or 1))) as pool:
        futures = {name: pool.submit(_run, case, inputs, root / name) for name, case in CASES.items()}
        yield {name: future.result() for name, future in futures.items()}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_input_is_a_clear_error(name: str, outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes[name]
    assert outcome.returncode == 2, outcome.stderr[-2000:]
    assert "Traceback" not in outcome.stderr, outcome.stderr[-2000:]
    assert re.search(CASES[name].message, outcome.stderr), outcome.stderr[-2000:]
    assert outcome.written == [], f"written despite the error: {outcome.written}"


@pytest.mark.slow
def test_the_papers_study_without_a_judge_key_stops_within_seconds(outcomes: dict[str, Outcome]) -> None:
    # Its first job would build a model and its stages train for hours: the message comes first.
    # (Tens of seconds at most, on a loaded machine: the CLI's imports and the file's checks.)
    assert outcomes["run_paper_without_key"].seconds < 60


def test_inspect_report_only_reports_and_exits_0(tmp_path: Path) -> None:
    data = tmp_path / "two.jsonl"
    data.write_text(GSM8K_LINE + '{"question": "What is 1 + 1?", "solution": "2"}\n')
    proc = subprocess.run([sys.executable, "-m", "sftmix", "data", "inspect", str(data), "--format",
                           "gsm8k", "--report-only"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "skipped 1" in proc.stdout and "line 2, field 'answer'" in proc.stdout


def test_a_file_of_examples_that_is_not_json_says_where(tmp_path: Path) -> None:
    path = tmp_path / "examples.jsonl"
    path.write_text('{"id": "a", "messages": "unterminated}')  # no newline: it would be in the string
    with pytest.raises(DataError, match=r"examples\.jsonl, line 1: not an example record "
                                        r"\(Unterminated string starting at column 25\)"):
        read_examples(path)


def test_a_file_of_examples_that_is_not_utf8_says_where(tmp_path: Path) -> None:
    path = tmp_path / "examples.jsonl"
    path.write_bytes(b'\n{"id": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"examples\.jsonl, line 2: not UTF-8 text \(byte 0xe9 at column 12\)"):
        read_examples(path)


def _into_closed_pipe(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``sftmix ARGS | head`` where head has already gone: every write to stdout fails."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([sys.executable, "-m", "sftmix", *args], stdout=write, stderr=subprocess.PIPE,
                              text=True, cwd=cwd, env={**os.environ, "SFTMIX_PROGRESS": "0"}, timeout=300)
    finally:
        os.close(write)


@pytest.fixture(scope="module")
def known_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.report.conftest import make_study, study_dict

    return make_study(tmp_path_factory.mktemp("known"), study_dict(DATA, {"scaling": {"fractions": [1, "1/4"]}})).dir


def test_a_reader_that_stops_ends_status_quietly(known_study: Path, tmp_path: Path) -> None:
    proc = _into_closed_pipe("status", str(known_study), cwd=tmp_path)
    assert proc.returncode == 1 and proc.stderr == ""


def test_a_reader_that_stops_costs_no_export(known_study: Path, tmp_path: Path) -> None:
    proc = _into_closed_pipe("results", str(known_study), "--csv", "x.csv", "--parquet", "x.parquet",
                             cwd=tmp_path)
    assert proc.returncode == 1 and proc.stderr == ""
    with (tmp_path / "x.csv").open() as f:
        rows = list(csv.DictReader(f))
    store = ResultsStore(known_study / STORE_NAME)
    try:
        assert len(rows) == len(store.results()) > 0
    finally:
        store.close()
    assert len({r["run"] for r in rows}) == 6 and {r["suite"] for r in rows} == {"gsm8k", "humaneval", "mtbench"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.csv", "x.parquet"]  # no partial file left
