"""A chosen composition as ready configs for LLaMA-Factory, open-instruct and axolotl.

Each tool means something different by the number beside a dataset, so each
file says which unit it uses:

* **LLaMA-Factory** -- ``dataset_info.json`` entries with ``num_samples`` (a
  **count**: LLaMA-Factory draws that many records at random, repeating records
  when it exceeds the file) and, in the training arguments, ``mix_strategy:
  interleave_under`` with ``interleave_probs`` (**probabilities** of drawing the
  next example from each dataset; here each dataset's share of the examples).
* **open-instruct** -- ``dataset_mixer_list``: a flat list of path and amount,
  where an amount written with a decimal point is a **fraction** of the dataset
  and one without is a **count**; the export writes counts.
* **axolotl** -- ``datasets`` with ``weight`` in (0, 1]: the **fraction** of the
  dataset kept by subsampling before tokenisation (it cannot upsample).

The data are written once, in the chat-messages format all three read
(``{"messages": [{"role": ..., "content": ...}]}``), one file per ability with
every record of its source; the amounts select from them. A DMT composition
has two stages and each tool gets two configs (``stage1_specialist`` and
``stage2_general_replay``, after the strategy's steps): none of them chains stages in one run, so train the second
from the first's output. The replayed specialist data in stage 2 are drawn
from the whole source, which is stage 1's data when stage 1 used all of it.

The folder is checked before anything is fitted or written (:func:`check_export_dir`),
every amount is checked before the first file is written, and exporting again
into the same folder removes the stage configs of the composition exported there
before (a DMT export's two stages would otherwise sit beside a multi-task mix).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from sftmix.artifacts import check_output_dir, write_text_atomic
from sftmix.errors import SftmixError
from sftmix.study.config import StudyConfig
from sftmix.suggest.composition import Composition

TOOLS = ("llamafactory", "open-instruct", "axolotl")
# The stage configs an export writes (``mix.yaml``, ``stage<i>_<step>.yaml``): only these are
# removed when another composition is exported into the same folder.
STAGE_FILE = re.compile(r"^(mix|stage\d+_[A-Za-z0-9_]+)\.yaml$")


def check_export_dir(out: Path, flag: str = "--export") -> None:
    """``out`` can hold an export: a folder (or nothing yet) on a file system that takes new files.

    Checked by making and removing an empty folder in the nearest existing ancestor, so that
    ``/proc/x`` or ``/sys/x`` is refused before any work, and nothing is left behind.
    """
    check_output_dir(out, flag)
    existing = next(p for p in (out, *out.parents) if p.exists())
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".sftmix-check-", dir=existing))
    except OSError as exc:
        raise SftmixError(f"{flag} {out}: cannot write there ({existing}: {exc.strerror}); expected a folder "
                          "on a file system that takes new files") from None


def stages(comp: Composition, sizes: dict[str, int]) -> list[tuple[str, dict[str, int]]]:
    """(stage name, examples per ability) for each stage a tool trains: ``mix`` for one stage,
    ``stage<i>_<step>`` for each of several (the strategy's steps)."""
    steps = comp.steps()
    counts = [{a: c for a, c in recipe.counts(sizes).items() if c} for recipe in comp.recipes()]
    if len(steps) == 1:
        return [("mix", counts[0])]
    return [(f"stage{i}_{step.name}", c) for i, (step, c) in enumerate(zip(steps, counts, strict=True), start=1)]


def write_sources(study: StudyConfig, out: Path) -> dict[str, Path]:
    """Every ability's source as chat-messages JSON lines; returns ability -> file."""
    from sftmix.data.sources import load_source
    from sftmix.data.spec import SourceSpec

    files = {}
    for ability, cfg in study.abilities.items():
        spec = SourceSpec(name=ability, ability=ability, **cfg.data.model_dump(mode="json"))
        examples = load_source(spec).examples
        lines = [json.dumps({"messages": [m.to_dict() for m in ex.messages]}, ensure_ascii=False)
                 for ex in examples]
        path = out / "data" / f"{ability}.jsonl"
        write_text_atomic(path, "\n".join(lines) + "\n")
        files[ability] = path
    return files


def _header(lines: list[str]) -> str:
    return "".join(f"# {line}\n" for line in lines)


def llamafactory(comp: Composition, parts: list[tuple[str, dict[str, int]]], files: dict[str, Path],
                 out: Path) -> list[Path]:
    folder = out / "llamafactory"
    info: dict[str, Any] = {}
    written = []
    for stage, counts in parts:
        names = []
        for ability, count in counts.items():
            name = f"sftmix_{stage}_{ability}"
            info[name] = {
                "file_name": str(Path("..") / "data" / files[ability].name),
                "formatting": "sharegpt",
                "num_samples": count,
                "columns": {"messages": "messages"},
                "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                         "assistant_tag": "assistant", "system_tag": "system"},
            }
            names.append(name)
        total = sum(counts.values())
        probs = [counts[a] / total for a in counts]
        args = {"stage": "sft", "do_train": True, "dataset": ",".join(names),
                "dataset_dir": str(folder.resolve()), "mix_strategy": "interleave_under",
                "interleave_probs": ",".join(f"{p:.6g}" for p in probs)}
        text = _header([
            f"LLaMA-Factory training arguments for {comp.describe()} ({stage}); add your model,",
            "template and trainer settings. Units: num_samples in dataset_info.json is a COUNT of",
            "records; interleave_probs are PROBABILITIES of drawing the next example from each",
            "dataset (each dataset's share of the examples); interleave_under stops when the",
            "first dataset runs out.",
        ]) + yaml.safe_dump(args, sort_keys=False)
        path = folder / f"{stage}.yaml"
        write_text_atomic(path, text)
        written.append(path)
    path = folder / "dataset_info.json"
    write_text_atomic(path, json.dumps(info, indent=2) + "\n")
    return [path, *written]


def open_instruct(comp: Composition, parts: list[tuple[str, dict[str, int]]], files: dict[str, Path],
                  out: Path) -> list[Path]:
    written = []
    for stage, counts in parts:
        mixer: list[str] = []
        for ability, count in counts.items():
            mixer += [str(files[ability].resolve()), str(int(count))]
        text = _header([
            f"open-instruct dataset mixer for {comp.describe()} ({stage}).",
            "Unit: an amount without a decimal point is a COUNT of records (with one, a fraction).",
        ]) + yaml.safe_dump({"dataset_mixer_list": mixer, "dataset_mixer_list_splits": ["train"]},
                            sort_keys=False)
        path = out / "open-instruct" / f"{stage}.yaml"
        write_text_atomic(path, text)
        written.append(path)
    return written


def check_amounts(parts: list[tuple[str, dict[str, int]]], sizes: dict[str, int]) -> None:
    """Every amount can be written for every tool (before the first file is)."""
    for _, counts in parts:
        for ability, count in counts.items():
            if count > sizes[ability]:
                raise SftmixError(f"axolotl export: {ability} needs {count} of its {sizes[ability]} records "
                                  "(upsampling), which axolotl's weight (at most 1) cannot express")


def axolotl(comp: Composition, parts: list[tuple[str, dict[str, int]]], files: dict[str, Path],
            sizes: dict[str, int], out: Path) -> list[Path]:
    written = []
    for stage, counts in parts:
        datasets = []
        for ability, count in counts.items():
            weight = count / sizes[ability]
            datasets.append({"path": str(files[ability].resolve()), "ds_type": "json",
                             "type": "chat_template", "field_messages": "messages",
                             "weight": round(weight, 6)})
        text = _header([
            f"axolotl datasets for {comp.describe()} ({stage}); add base_model, chat_template and",
            "trainer settings. Unit: weight is the FRACTION of each dataset kept (subsampled, <= 1).",
        ]) + yaml.safe_dump({"datasets": datasets}, sort_keys=False)
        path = out / "axolotl" / f"{stage}.yaml"
        write_text_atomic(path, text)
        written.append(path)
    return written


def export(comp: Composition, study: StudyConfig, sizes: dict[str, int], out: Path) -> list[Path]:
    """Write the data and the three tools' configs for ``comp`` under ``out``; returns the files."""
    parts = stages(comp, sizes)
    check_amounts(parts, sizes)
    files = write_sources(study, out)
    written = list(files.values())
    written += llamafactory(comp, parts, files, out)
    written += open_instruct(comp, parts, files, out)
    written += axolotl(comp, parts, files, sizes, out)
    summary = {"composition": comp.to_json(), "describe": comp.describe(),
               "stages": [{"stage": s, "examples": c} for s, c in parts],
               "units": {"llamafactory": "num_samples: count; interleave_probs: probabilities",
                         "open-instruct": "integer amount: count (a decimal amount would be a fraction)",
                         "axolotl": "weight: fraction of the dataset kept (<= 1)"}}
    path = out / "composition.json"
    write_text_atomic(path, json.dumps(summary, indent=2) + "\n")
    remove_stale(out, set(written))
    return [*written, path]


def remove_stale(out: Path, written: set[Path]) -> list[Path]:
    """Stage configs of an earlier export into ``out`` that this one did not write."""
    removed = []
    for tool in TOOLS:
        for path in sorted((out / tool).glob("*.yaml")):
            if STAGE_FILE.match(path.name) and path not in written:
                path.unlink()
                removed.append(path)
    return removed
