"""The columnar path gives what the per-record path gives: records, errors, skips, duplicates, mixtures."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import sftmix.data.sources as sources
from sftmix.data.arrow_jsonl import read_table
from sftmix.data.columnar import EDGE, ColumnarPool, Conversations
from sftmix.data.duplicates import fingerprint_of
from sftmix.data.formats import _SHAREGPT_ROLES
from sftmix.data.mixing import build_mixture, write_mixture
from sftmix.data.records import Example, Message
from sftmix.data.sources import LoadedSource, load_source
from sftmix.data.spec import MixtureSpec, SourceSpec
from sftmix.errors import DataError
from sftmix.hashing import file_sha256


def _per_record(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "read_table", lambda path: None)


def _load_both(spec: SourceSpec, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """(columnar, per-record) results: a LoadedSource or the DataError message."""
    out = []
    for columnar in (True, False):
        with monkeypatch.context() as m:
            if not columnar:
                _per_record(m)
            try:
                out.append(load_source(spec))
            except DataError as exc:
                out.append(str(exc))
    return out[0], out[1]


def _same(a: LoadedSource, b: LoadedSource) -> None:
    assert [ex.to_dict() for ex in a.examples] == [ex.to_dict() for ex in b.examples]
    assert a.report() == b.report()


def _write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def chats(shared_data: Path) -> list[dict[str, Any]]:
    return json.loads((shared_data / "general/sharegpt_dpo_chosen.json").read_text(encoding="utf-8"))[:120]


def test_real_sharegpt_agrees_and_is_columnar(tmp_path: Path, chats: list[dict[str, Any]],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write_jsonl(tmp_path / "chat.jsonl", chats)
    fast, slow = _load_both(SourceSpec(name="chat", path=str(path), format="sharegpt"), monkeypatch)
    assert isinstance(fast.examples, ColumnarPool)
    assert not isinstance(slow.examples, ColumnarPool)
    _same(fast, slow)
    assert any(ex.messages[0].role == "system" for ex in fast.examples)


def test_real_messages_file_agrees(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = SourceSpec(name="m", path=str(shared_data / "general/messages_kto_positive.jsonl"), format="messages",
                      on_error="skip")
    fast, slow = _load_both(spec, monkeypatch)
    _same(fast, slow)


GOOD = {"id": "g", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello."}]}


def _turns(*pairs: tuple[Any, Any]) -> dict[str, Any]:
    return {"conversations": [{"from": r, "value": v} for r, v in pairs]}


BAD = {
    "empty": _turns(("human", "Hi"), ("gpt", "")),
    "whitespace": _turns(("human", "Hi"), ("gpt", " \n\t\u3000\xa0")),
    "number": _turns(("human", "Hi"), ("gpt", 7)),
    "null_content": _turns(("human", "Hi"), ("gpt", None)),
    "unknown_role": _turns(("human", "Hi"), ("bot", "Hello.")),
    "null_role": _turns((None, "Hi"), ("gpt", "Hello.")),
    "two_users": _turns(("human", "Hi"), ("human", "Anyone?"), ("gpt", "Yes.")),
    "ends_with_user": _turns(("human", "Hi"), ("gpt", "Hello."), ("human", "Bye")),
    "late_system": _turns(("human", "Hi"), ("system", "Be brief."), ("gpt", "Hello.")),
    "starts_with_assistant": _turns(("gpt", "Hello."), ("human", "Hi"), ("gpt", "Hello.")),
    "only_system": _turns(("system", "Be brief.")),
    "empty_list": {"conversations": []},
    "null_list": {"conversations": None},
    "missing_list": {"id": "x"},
    "missing_value": {"conversations": [{"from": "human"}, {"from": "gpt", "value": "Hello."}]},
    "null_turn": {"conversations": [None, {"from": "gpt", "value": "Hello."}]},
    "string_turn": {"conversations": ["Hi", {"from": "gpt", "value": "Hello."}]},
    "not_an_object": ["Hi"],
}


@pytest.mark.parametrize("kind", list(BAD))
@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_malformed_record_same_error_both_ways(kind: str, on_error: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write_jsonl(tmp_path / "bad.jsonl", [GOOD, GOOD, BAD[kind], GOOD, BAD[kind]])
    fast, slow = _load_both(SourceSpec(name="b", path=str(path), format="sharegpt", on_error=on_error),
                            monkeypatch)
    if on_error == "raise":
        assert isinstance(fast, str) and fast == slow
        assert "bad.jsonl, line 3" in fast
    else:
        _same(fast, slow)
        assert fast.skipped == 2 and fast.report()["skipped"]["first_reasons"][1].startswith(
            f"{path}, line 5")


def test_messages_format_errors_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}
    bad = {"messages": [{"role": "user", "content": "Hi"}, {"role": "human", "content": "Hello."}]}
    path = _write_jsonl(tmp_path / "m.jsonl", [good, bad])
    fast, slow = _load_both(SourceSpec(name="m", path=str(path), format="messages"), monkeypatch)
    assert fast == slow and "line 2, field 'messages[1].role': unknown role 'human'" in fast


def test_duplicates_agree_whatever_the_whitespace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = [("human", "What is the capital of France?"), ("gpt", "Paris is the capital of France.")]
    variants = [
        base,
        [("human", "  What is the capital\n\nof France?"), ("gpt", "Paris is the capital of France.\n")],
        [("human", "What\tis the capital of France?"), ("gpt", "Paris is\xa0the capital of France.")],
        [("human", "What is the capital of France?" + " " * 200), ("gpt", "Paris " + "\n" * 100 + "is the "
                                                                   "capital of France.")],
        [("human", "What is the capital of Spain?"), ("gpt", "Paris is the capital of France.")],  # not a dup
        [("human", "Hi"), ("gpt", "Hello.")],
        [("human", "Hi"), ("gpt", "Hello.")],
    ]
    path = _write_jsonl(tmp_path / "d.jsonl", [_turns(*v) for v in variants])
    for drop in (False, True):
        spec = SourceSpec(name="d", path=str(path), format="sharegpt", drop_duplicates=drop)
        fast, slow = _load_both(spec, monkeypatch)
        _same(fast, slow)
        assert fast.duplicates == 4
        assert fast.duplicate_examples[0] == {"id": "d:1", "duplicate_of": "d:0"}
        assert len(fast.examples) == (3 if drop else 7)


_TEXT = st.text(alphabet=st.sampled_from(list("ab ,.é\n\t\xa0\u3000\u2028\x1c中😀xyz")), max_size=6 * EDGE)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["human", "gpt"]), _TEXT), min_size=1, max_size=4))
def test_arrow_fingerprint_equals_python_fingerprint(turns: list[tuple[str, str]]) -> None:
    column = pa.chunked_array([pa.array([[{"from": r, "value": v} for r, v in turns]])])
    conv = Conversations(column, "from", "value", _SHAREGPT_ROLES)
    ex = Example("x:0", "general", "x", tuple(Message(_SHAREGPT_ROLES[r], v) for r, v in turns))
    assert conv.fingerprint_array().to_pylist() == [fingerprint_of(ex)]


@settings(max_examples=150, deadline=None)
@given(_TEXT, _TEXT)
@example(" " * 100, "a").via("all spaces, longer than the window")
@example("\u3000" * 40, "b").via("multi-byte whitespace only")
@example("x" + " \n" * 40, "\t" * 50 + "y")
def test_arrow_text_check_equals_strip(user: str, assistant: str) -> None:
    column = pa.chunked_array([pa.array([[{"from": "human", "value": user}, {"from": "gpt", "value": assistant}]])])
    conv = Conversations(column, "from", "value", _SHAREGPT_ROLES)
    assert conv.valid().tolist() == [bool(user.strip()) and bool(assistant.strip())]


def test_fallback_when_the_schema_is_not_the_plain_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Mixed id types and a blank line: the per-record path reads these files, with the same result.
    mixed = _write_jsonl(tmp_path / "mixed.jsonl", [{**GOOD, "id": 1}, {**GOOD, "id": "two"}])
    blank = tmp_path / "blank.jsonl"
    blank.write_text(json.dumps(GOOD) + "\n\n" + json.dumps(GOOD) + "\n")
    for path in (mixed, blank):
        fast, slow = _load_both(SourceSpec(name="s", path=str(path), format="sharegpt"), monkeypatch)
        assert not isinstance(fast.examples, ColumnarPool)
        _same(fast, slow)


def test_read_table_hashes_the_file_as_stored(tmp_path: Path, chats: list[dict[str, Any]]) -> None:
    plain = _write_jsonl(tmp_path / "c.jsonl", chats[:10])
    packed = tmp_path / "c.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    for path in (plain, packed):
        read = read_table(path)
        assert read is not None and read.table.num_rows == 10
        assert read.sha256() == file_sha256(path)


@pytest.mark.parametrize("text", [
    json.dumps(GOOD) + " " + json.dumps(GOOD) + "\n",  # two records on one line: the row count tells
    json.dumps(GOOD) + "\n \n" + json.dumps(GOOD) + "\n",  # a blank line: the line check tells
    json.dumps(GOOD) + "\r\n" + json.dumps(GOOD) + "\r\n",
    "[" + json.dumps(GOOD) + "]\n",
])
def test_read_table_declines_what_would_move_line_numbers(text: str, tmp_path: Path) -> None:
    path = tmp_path / "odd.jsonl"
    path.write_text(text, encoding="utf-8")
    assert read_table(path) is None


def _mixture_files(folder: Path, chats: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
                   columnar: bool) -> dict[str, bytes]:
    """The written mixture of two overlapping real sources, read one way or the other."""
    a = _write_jsonl(folder / "a.jsonl", chats[:80])
    b = _write_jsonl(folder / "b.jsonl", chats[60:] + chats[:5])  # overlaps a: cross-source duplicates
    spec = MixtureSpec.model_validate({
        "seed": 3,
        "sources": [{"name": "a", "path": str(a), "format": "sharegpt"},
                    {"name": "b", "path": str(b), "format": "sharegpt", "drop_duplicates": True}],
        "mixtures": {"spec": {"entries": [{"source": "a", "fraction": 0.5}]}},
        "entries": [{"source": "a", "fraction": "1/4"}, {"source": "b", "fraction": 1.5},
                    {"mixture": "spec", "fraction": 0.5}],
    })
    with monkeypatch.context() as m:
        if not columnar:
            _per_record(m)
        out = write_mixture(build_mixture(spec), folder / ("fast" if columnar else "slow"))
    return {name: (out / name).read_bytes() for name in ("data.jsonl", "manifest.json")}


def test_mixture_bytes_identical_both_ways(tmp_path: Path, chats: list[dict[str, Any]],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _mixture_files(tmp_path, chats, monkeypatch, columnar=True)
    slow = _mixture_files(tmp_path, chats, monkeypatch, columnar=False)
    manifest = json.loads(fast["manifest.json"])
    assert manifest["total"]["cross_source_duplicates"] > 0
    assert fast["data.jsonl"] == slow["data.jsonl"]
    assert fast["manifest.json"] == slow["manifest.json"]


def test_mixture_reports_the_first_used_sources_error(tmp_path: Path) -> None:
    first = _write_jsonl(tmp_path / "first.jsonl", [GOOD, BAD["two_users"]])
    second = _write_jsonl(tmp_path / "second.jsonl", [BAD["empty"]])
    spec = MixtureSpec.model_validate({
        "sources": [{"name": "s2", "path": str(second), "format": "sharegpt"},
                    {"name": "s1", "path": str(first), "format": "sharegpt"}],
        "entries": [{"source": "s1"}, {"source": "s2"}],
    })
    with pytest.raises(DataError, match=r"first.jsonl, line 2, field 'conversations\[1\]'"):
        build_mixture(spec)


@pytest.mark.parametrize("ids", [[7, 8], [True, False], None, ["a\"b", "ç\u2028"]])
def test_json_lines_equal_example_to_json(ids: list[Any] | None, tmp_path: Path) -> None:
    texts = ["Quote \" and \\ backslash\n\ttab", "Ünïcödé 中文 😀 \u2028 \x01 control"]
    records = [_turns(("system", "Be kind."), ("human", texts[0]), ("gpt", texts[1])),
               _turns(("human", texts[1]), ("gpt", texts[0]))]
    if ids is not None:
        records = [{"id": i, **r} for i, r in zip(ids, records, strict=True)]
    path = _write_jsonl(tmp_path / "j.jsonl", records)
    pool = load_source(SourceSpec(name="j", path=str(path), format="sharegpt")).examples
    assert isinstance(pool, ColumnarPool)
    assert [pool.json_line(p) for p in pool.rows.tolist()] == [ex.to_json() for ex in pool]
    assert [Example.from_dict(json.loads(pool.json_line(p))) for p in pool.rows.tolist()] == list(pool)
