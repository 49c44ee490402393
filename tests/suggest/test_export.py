"""Exports load in each tool's documented format, with the amounts in each tool's own unit.

The tools are not installed (each pulls a large stack); their documented schemas
are written down here from their sources:

* LLaMA-Factory ``src/llamafactory/hparams/data_args.py`` (``DataArguments``:
  ``dataset`` comma-separated, ``mix_strategy`` one of concat / interleave_under /
  interleave_over, ``interleave_probs`` comma-separated floats, one per dataset,
  invalid with concat) and ``src/llamafactory/data/parser.py`` (``DatasetAttr``:
  the keys a ``dataset_info.json`` entry may have, ``columns`` and ``tags``);
* open-instruct ``open_instruct/dataset_transformation.py`` (``dataset_mixer_list``:
  pairs of name and amount, an amount with a "." is a float fraction, else an int count);
* axolotl ``src/axolotl/utils/schemas/datasets.py`` (``SFTDataset`` fields) and
  its merged ``weight`` field (0 < weight <= 1, the fraction kept).

The data files are read with ``datasets.load_dataset("json", ...)``, as all three do.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from datasets import load_dataset

from sftmix.data.sampling import amount_count
from sftmix.errors import SftmixError
from sftmix.study.config import StudyConfig
from sftmix.study.cost import source_stats
from sftmix.suggest.composition import Composition
from sftmix.suggest.export import export

LF_MIX = {"concat", "interleave_under", "interleave_over"}
LF_ENTRY = {"hf_hub_url", "ms_hub_url", "script_url", "file_name", "formatting", "ranking", "subset",
            "split", "folder", "num_samples", "columns", "tags"}
LF_SHAREGPT_COLUMNS = {"system", "tools", "images", "chosen", "rejected", "kto_tag", "messages"}
LF_TAGS = {"role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag", "function_tag",
           "system_tag"}
AXOLOTL_SFT = {"path", "split", "type", "input_transform", "shards", "shards_idx", "preprocess_shards",
               "conversation", "chat_template", "chat_template_jinja", "data_files", "input_format", "name",
               "ds_type", "field", "field_human", "field_model", "field_messages", "message_field_role",
               "message_field_content", "message_property_mappings", "message_field_training",
               "message_field_training_detail", "logprobs_field", "temperature", "roles_to_train",
               "train_on_eos", "roles", "drop_system_message", "trust_remote_code", "revision", "weight"}


@pytest.fixture(scope="module")
def study(shared_data: Path) -> StudyConfig:
    return StudyConfig.model_validate({
        "name": "export",
        "abilities": {
            "maths": {"data": {"path": str(shared_data / "gsm8k/train.jsonl"), "format": "gsm8k"}, "evals": ["gsm8k"]},
            "code": {"data": {"path": str(shared_data / "code/code_alpaca_2k.json"), "format": "alpaca",
                              "on_error": "skip"}, "evals": ["humaneval"]},
            "general": {"data": {"path": str(shared_data / "general/sharegpt_dpo_chosen.json"),
                                 "format": "sharegpt"}, "evals": ["ifeval"]},
        },
        "models": [{"name": "tiny", "tiny": {}}],
    })


def _yaml(path: Path) -> dict:
    text = path.read_text()
    assert text.startswith("#") and ("COUNT" in text or "FRACTION" in text), "the file does not state its unit"
    return yaml.safe_load(text)


def _messages_ok(path: Path, n: int) -> None:
    data = load_dataset("json", data_files=str(path), split="train")
    assert len(data) == n and "messages" in data.column_names
    roles = {m["role"] for m in data[0]["messages"]}
    assert "assistant" in roles and "user" in roles


def _check_llamafactory(out: Path, parts: dict[str, dict[str, int]], sizes: dict[str, int]) -> None:
    folder = out / "llamafactory"
    info = json.loads((folder / "dataset_info.json").read_text())
    for name, entry in info.items():
        assert set(entry) <= LF_ENTRY, set(entry) - LF_ENTRY
        assert entry["formatting"] in ("alpaca", "sharegpt") and isinstance(entry["num_samples"], int)
        assert set(entry["columns"]) <= LF_SHAREGPT_COLUMNS and set(entry["tags"]) <= LF_TAGS
        file = folder / entry["file_name"]
        assert file.is_file(), name
        first = json.loads(file.read_text().splitlines()[0])[entry["columns"]["messages"]][0]
        assert set(first) == {entry["tags"]["role_tag"], entry["tags"]["content_tag"]}
    for stage, counts in parts.items():
        args = _yaml(folder / f"{stage}.yaml")
        names = [x.strip() for x in args["dataset"].split(",")]
        probs = [float(x) for x in args["interleave_probs"].split(",")]
        assert args["mix_strategy"] in LF_MIX and args["mix_strategy"] != "concat"
        assert len(probs) == len(names) and sum(probs) == pytest.approx(1.0, abs=1e-5)
        assert Path(args["dataset_dir"]) == folder.resolve()
        got = {n.rsplit("_", 1)[1]: info[n]["num_samples"] for n in names}
        assert got == counts
        total = sum(counts.values())
        for n, p in zip(names, probs, strict=True):
            assert p == pytest.approx(info[n]["num_samples"] / total, abs=1e-5)


def _check_open_instruct(out: Path, parts: dict[str, dict[str, int]]) -> None:
    for stage, counts in parts.items():
        cfg = _yaml(out / "open-instruct" / f"{stage}.yaml")
        mixer = cfg["dataset_mixer_list"]
        assert len(mixer) % 2 == 0 and all(isinstance(x, str) for x in mixer)
        got = {}
        for path, amount in zip(mixer[::2], mixer[1::2], strict=True):
            assert "." not in amount, "a count must be written without a decimal point (else it is a fraction)"
            assert Path(path).is_file()
            got[Path(path).stem] = int(amount)
        assert got == counts
        assert cfg["dataset_mixer_list_splits"] == ["train"]


def _check_axolotl(out: Path, parts: dict[str, dict[str, int]], sizes: dict[str, int]) -> None:
    for stage, counts in parts.items():
        cfg = _yaml(out / "axolotl" / f"{stage}.yaml")
        got = {}
        for d in cfg["datasets"]:
            assert set(d) <= AXOLOTL_SFT, set(d) - AXOLOTL_SFT
            assert 0 < d["weight"] <= 1 and d["type"] == "chat_template" and d["ds_type"] == "json"
            ability = Path(d["path"]).stem
            got[ability] = round(d["weight"] * sizes[ability])
        assert got == counts


def test_multi_task_export_in_every_tool(study: StudyConfig, tmp_path: Path) -> None:
    sizes = {a: x.examples for a, x in source_stats(study).items()}
    comp = Composition.multi_task({"maths": 1 / 8, "code": 1 / 2, "general": 1.0})
    export(comp, study, sizes, tmp_path)
    counts = {a: amount_count(sizes[a], f) for a, f in comp.amounts.items()}
    parts = {"mix": counts}
    for ability, n in sizes.items():
        _messages_ok(tmp_path / "data" / f"{ability}.jsonl", n)
    _check_llamafactory(tmp_path, parts, sizes)
    _check_open_instruct(tmp_path, parts)
    _check_axolotl(tmp_path, parts, sizes)
    summary = json.loads((tmp_path / "composition.json").read_text())
    assert summary["stages"] == [{"stage": "mix", "examples": counts}]


def test_dmt_export_has_two_stages_with_the_replay(study: StudyConfig, tmp_path: Path) -> None:
    sizes = {a: x.examples for a, x in source_stats(study).items()}
    comp = Composition.dmt(dict.fromkeys(sizes, 1.0), 1 / 8, "general")
    export(comp, study, sizes, tmp_path)
    parts = {"stage1_specialist": {"maths": sizes["maths"], "code": sizes["code"]},
             "stage2_general_replay": {"general": sizes["general"], "maths": amount_count(sizes["maths"], 1 / 8),
                                "code": amount_count(sizes["code"], 1 / 8)}}
    _check_llamafactory(tmp_path, parts, sizes)
    _check_open_instruct(tmp_path, parts)
    _check_axolotl(tmp_path, parts, sizes)


def test_exporting_again_replaces_the_previous_compositions_stage_configs(study: StudyConfig,
                                                                          tmp_path: Path) -> None:
    sizes = {a: x.examples for a, x in source_stats(study).items()}
    export(Composition.dmt(dict.fromkeys(sizes, 1.0), 1 / 8, "general"), study, sizes, tmp_path)
    assert (tmp_path / "axolotl" / "stage2_general_replay.yaml").is_file()
    mine = tmp_path / "axolotl" / "my_notes.yaml"
    mine.write_text("kept: true\n")
    comp = Composition.multi_task({"maths": 1 / 4, "code": 1 / 4, "general": 1.0})
    export(comp, study, sizes, tmp_path)
    for tool in ("llamafactory", "open-instruct", "axolotl"):
        stage_files = sorted(p.name for p in (tmp_path / tool).glob("*.yaml") if p != mine)
        assert stage_files == ["mix.yaml"], (tool, stage_files)
    assert mine.read_text() == "kept: true\n"  # not a file an export writes
    info = json.loads((tmp_path / "llamafactory" / "dataset_info.json").read_text())
    assert all(name.startswith("sftmix_mix_") for name in info)
    counts = {a: amount_count(sizes[a], f) for a, f in comp.amounts.items()}
    _check_axolotl(tmp_path, {"mix": counts}, sizes)


def test_an_amount_no_tool_can_write_is_refused_before_any_file(study: StudyConfig, tmp_path: Path) -> None:
    sizes = {a: x.examples for a, x in source_stats(study).items()}
    comp = Composition.multi_task({"maths": 2.0, "code": 1.0, "general": 1.0})  # upsampling maths
    with pytest.raises(SftmixError, match="axolotl export: maths needs"):
        export(comp, study, sizes, tmp_path / "out")
    assert not (tmp_path / "out").exists()
