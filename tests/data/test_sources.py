"""A source of several files: each read with its format, one source to everything downstream."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sftmix.data.sources import BadRecordError, load_source
from sftmix.data.spec import SourceSpec, load_mixture_spec
from sftmix.errors import ConfigError


def general_files(shared: Path) -> SourceSpec:
    return SourceSpec.model_validate({
        "name": "general", "format": "alpaca", "ability": "general",
        "path": [str(shared / "general" / "alpaca_en_demo.json"),
                 {"path": str(shared / "general" / "sharegpt_dpo_chosen.json"), "format": "sharegpt"},
                 {"path": str(shared / "general" / "messages_kto_positive.jsonl"), "format": "messages"}]})


def test_files_are_read_in_order_each_with_its_format(shared_data: Path) -> None:
    spec = general_files(shared_data)
    loaded = load_source(spec)
    alone = [load_source(SourceSpec(name="general", path=path, format=fmt, ability="general"))
             for path, fmt in spec.files()]
    assert [len(x.examples) for x in alone] == [999, 300, 150]
    examples = list(loaded.examples)
    assert loaded.records_read == len(examples) == 999 + 300 + 150
    # The same messages, file after file; the ids numbered on, so that none repeats.
    assert [e.messages for e in examples] == [e.messages for x in alone for e in x.examples]
    assert len({e.id for e in examples}) == len(examples)
    assert examples[999].id == "general:999" and examples[999].metadata["orig_id"]
    assert {e.ability for e in examples} == {"general"}
    # The hash follows each file and its format, in order.
    report = loaded.report()
    json.dumps(report)
    assert report["path"][1] == {"path": str(shared_data / "general" / "sharegpt_dpo_chosen.json"),
                                 "format": "sharegpt"}
    swapped = spec.model_copy(update={"path": [spec.path[0], spec.path[2], spec.path[1]]})
    assert load_source(swapped).sha256 != loaded.sha256
    assert loaded.sha256 == load_source(general_files(shared_data)).sha256


def test_a_bad_record_names_its_own_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"instruction": "Say hi.", "output": "Hi."}\n')
    (tmp_path / "b.jsonl").write_text('{"instruction": "Say hi.", "output": "Hi."}\n'
                                      '{"instruction": "Say bye."}\n')
    spec = SourceSpec(name="chat", format="alpaca", path=[str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")])
    with pytest.raises(BadRecordError, match=r"b\.jsonl, line 2, field 'output'"):
        load_source(spec)
    skipped = load_source(spec.model_copy(update={"on_error": "skip"}))
    assert (len(skipped.examples), skipped.skipped) == (2, 1)
    assert "b.jsonl, line 2" in skipped.skip_reasons[0]


MIXTURE = """\
sources:
  - name: chat
    format: alpaca
    path:
      - data/a.jsonl
      - {path: data/b.jsonl, format: messages}
entries: [{source: chat}]
"""


@pytest.mark.parametrize(("old", "new", "message"), [
    ("format: messages", "format: mesages",
     r"line 6, field 'sources\[0\].path\[1\].format': unknown data format 'mesages'"),
    ("- data/a.jsonl", "- data/z.jsonl", r"line 5, field 'sources\[0\].path\[0\]': data file not found: data/z.jsonl"),
    ("    path:\n      - data/a.jsonl\n      - {path: data/b.jsonl, format: messages}\n", "    path: []\n",
     r"'path' is an empty list"),
])
def test_mistakes_in_a_list_of_files_name_the_file_line_and_field(tmp_path: Path, old: str, new: str,
                                                                   message: str) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.jsonl").write_text('{"instruction": "Say hi.", "output": "Hi."}\n')
    (tmp_path / "data" / "b.jsonl").write_text(
        '{"messages": [{"role": "user", "content": "Bye?"}, {"role": "assistant", "content": "Bye."}]}\n')
    path = tmp_path / "mix.yaml"
    path.write_text(MIXTURE)
    assert len(load_source(load_mixture_spec(path).sources[0], base_dir=tmp_path).examples) == 2
    assert old in MIXTURE
    path.write_text(MIXTURE.replace(old, new))
    with pytest.raises(ConfigError, match=message):
        load_mixture_spec(path)
