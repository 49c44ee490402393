"""Mixture YAML: typed fields, fractions as text, cross-field checks -- all with file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from sftmix.data.spec import load_mixture_spec
from sftmix.errors import ConfigError

GOOD = """\
name: dmt_k256
seed: 1
sources:
  - {name: gsm8k, path: data/train.jsonl, format: gsm8k}
  - {name: chat, hub: org/chat, format: sharegpt, filters: [no_code_math], on_error: skip}
mixtures:
  specialist:
    entries: [{source: gsm8k}]
entries:
  - {source: chat}
  - {mixture: specialist, fraction: "1/256"}
"""


def write_data(folder: Path) -> None:
    (folder / "data").mkdir()
    (folder / "data" / "train.jsonl").write_text('{"question": "1+1?", "answer": "#### 2"}\n')


def test_good_file_parses_fractions(tmp_path: Path) -> None:
    write_data(tmp_path)
    path = tmp_path / "mix.yaml"
    path.write_text(GOOD)
    spec = load_mixture_spec(path)
    assert spec.entries[1].fraction == 1 / 256
    assert spec.entries[0].amount() == ("fraction", 1.0)
    assert spec.source("chat").filters == ["no_code_math"]


@pytest.mark.parametrize(("old", "new", "message"), [
    ('fraction: "1/256"', 'fraction: "a lot"', r"line 11, field 'entries\[1\].fraction': found 'a lot', "
                                               r"expected: .*fraction such as '1/64'"),
    ("format: gsm8k}", "format: gsm8kk}", r"line 4, field 'sources\[0\].format': unknown data format 'gsm8kk'; "
                                          r"available: alpaca, gsm8k"),
    ("filters: [no_code_math]", "filters: [no_maths]", r"line 5, field 'sources\[1\].filters\[0\]': unknown filter"),
    ("{source: chat}", "{source: chat, count: 3, fraction: 1}", r"line 10, field 'entries\[0\]'.*at most one of"),
    ("{mixture: specialist,", "{mixture: specilist,", r"line 11, field 'entries\[1\].mixture': unknown mixture "
                                                      r"'specilist'; defined under 'mixtures': specialist"),
    ("seed: 1", "seed: 1\nsede: 2", r"line 3, field 'sede': unknown field"),
    ("hub: org/chat, ", "", r"line 5, field 'sources\[1\]'.*exactly one of 'path'"),
    ("path: data/train.jsonl", "path: data/tran.jsonl",
     r"line 4, field 'sources\[0\].path': data file not found: data/tran.jsonl"),
])
def test_mistakes_name_file_line_and_field(tmp_path: Path, old: str, new: str, message: str) -> None:
    write_data(tmp_path)
    path = tmp_path / "mix.yaml"
    assert old in GOOD
    path.write_text(GOOD.replace(old, new))
    with pytest.raises(ConfigError, match=message) as info:
        load_mixture_spec(path)
    assert str(path) in str(info.value)
