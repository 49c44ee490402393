"""The evaluation runner: per-item JSONL, summaries with intervals, atomic and resumable output."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import pytest

from sftmix.artifacts import is_complete
from sftmix.data.records import Message
from sftmix.errors import ConfigError, DataError, IncompleteError, SftmixError
from sftmix.eval.base import GenerationSpec
from sftmix.eval.runner import build_suite, default_out_dir, evaluate_model, public_options
from sftmix.strict_json import dumps
from tests.eval.fake_openai import FakeOpenAI, server_error
from tests.eval.models import one_torch_thread, tiny_model_dir


class Scripted:
    """Answers the first GSM8K question right (18), everything else wrong; counts calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, prompts: Sequence[list[Message] | str], spec: GenerationSpec) -> list[list[str]]:
        self.calls += 1
        out = []
        for p in prompts:
            text = p if isinstance(p, str) else p[-1].content
            out.append(["She makes 9 * 2 = 18 dollars.\n#### 18" if "Janet" in text else "#### 1"] * spec.n)
        return out


def refuse(prompts, spec):
    raise AssertionError("nothing should be generated")


@pytest.fixture
def suites(shared_data: Path) -> dict[str, dict]:
    return {"gsm8k": {"path": shared_data / "gsm8k" / "test.jsonl"}}


def test_layout_items_and_summary(tmp_path: Path, suites: dict, shared_data: Path) -> None:
    out = tmp_path / "eval"
    with FakeOpenAI(lambda req: "Rating: [[7]]", api_key="sk-secret") as srv:
        suites["mtbench"] = {"path": shared_data / "eval" / "mt_bench", "repetitions": 1,
                             "judge": {"base_url": srv.url, "api_key": "sk-secret",
                                       "cache_path": str(tmp_path / "judge.sqlite")}}
        summaries = evaluate_model(tmp_path / "model", suites, out, limit=4, generate=Scripted())
    assert set(summaries) == {"gsm8k", "mtbench"}
    # On disk a missing value (a category without items, say) is null rather than NaN.
    assert strict_json((out / "summary.json").read_text()) == json.loads(dumps(summaries))
    for suite in ("gsm8k", "mtbench"):
        assert is_complete(out / suite)
        lines = (out / suite / "items.jsonl").read_text().splitlines()
        assert len(lines) == 4
        for line in lines:
            row = json.loads(line)
            assert {"id", "prompt", "completions", "extracted", "verdicts", "reason",
                    "metrics"} <= set(row)
    g = summaries["gsm8k"]
    assert g["primary"] == "exact_match_flexible" and g["n_items"] == 4 and g["limit"] == 4
    m = g["metrics"]["exact_match_flexible"]
    assert m["mean"] == 0.25 and m["n"] == 4 and 0.0 <= m["ci_low"] <= 0.25 <= m["ci_high"] <= 1.0
    assert summaries["mtbench"]["metrics"]["score"]["mean"] == 7.0
    assert summaries["mtbench"]["metrics"]["score"]["high"] == 10.0
    # The judge's key is used but never written anywhere.
    for path in out.rglob("*"):
        if path.is_file():
            assert "sk-secret" not in path.read_text()


def test_rerun_reuses_complete_suites(tmp_path: Path, suites: dict) -> None:
    first = evaluate_model(tmp_path / "m", suites, tmp_path / "o", limit=3, generate=Scripted())
    again = evaluate_model(tmp_path / "m", suites, tmp_path / "o", limit=3, generate=refuse)
    assert again == first
    # Other settings make another evaluation, which replaces the old one.
    scripted = Scripted()
    other = evaluate_model(tmp_path / "m", suites, tmp_path / "o", limit=2, generate=scripted)
    assert scripted.calls == 1 and other["gsm8k"]["n_items"] == 2
    assert len((tmp_path / "o" / "gsm8k" / "items.jsonl").read_text().splitlines()) == 2


def test_failure_leaves_nothing_half_written(tmp_path: Path, suites: dict) -> None:
    def broken(prompts, spec):
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError):
        evaluate_model(tmp_path / "m", suites, tmp_path / "o", limit=2, generate=broken)
    assert not (tmp_path / "o").exists() or list((tmp_path / "o").iterdir()) == []


def test_bad_inputs_are_user_errors(tmp_path: Path, suites: dict) -> None:
    with pytest.raises(SftmixError, match=r"unknown evaluation suite 'gsm9k'; available: .*gsm8k"):
        evaluate_model(tmp_path, {"gsm9k": {}}, tmp_path / "o", generate=refuse)
    with pytest.raises(SftmixError, match=r"no config\.json"):
        evaluate_model(tmp_path / "nothing", suites, tmp_path / "o")
    with pytest.raises(SftmixError, match=r"unknown option.*'shots'.*accepted"):
        evaluate_model(tmp_path, {"gsm8k": {"shots": 3}}, tmp_path / "o", generate=refuse)


def test_public_options_drop_secrets() -> None:
    opts = {"path": Path("/x"), "judge": {"api_key": "k", "model": "m"}}
    assert public_options(opts) == {"path": "/x", "judge": {"model": "m"}}


def test_real_tiny_model_end_to_end(tmp_path: Path, shared_data: Path, suites: dict,
                                    tmp_path_factory: pytest.TempPathFactory) -> None:
    model = tiny_model_dir(shared_data, tmp_path_factory)
    suites["gsm8k"]["max_new_tokens"] = 8
    with one_torch_thread():
        summaries = evaluate_model(model, suites, tmp_path / "o", limit=3,
                                   generator_options={"progress": False})
    rows = [json.loads(x) for x in (tmp_path / "o" / "gsm8k" / "items.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(len(r["completions"]) == 1 for r in rows)
    assert summaries["gsm8k"]["model"] == str(model)


def strict_json(text: str) -> object:
    """Parse as a strict parser would: NaN and Infinity are not JSON."""
    def refuse_constant(name: str) -> None:
        raise AssertionError(f"not strict JSON: {name}")

    return json.loads(text, parse_constant=refuse_constant)


def test_missing_scores_are_null_in_strict_json(tmp_path: Path, shared_data: Path) -> None:
    """A metric no item has a value for (a category the first items lack) is null on disk, not NaN."""
    out = tmp_path / "eval"
    suites = {"mtbench": {"path": shared_data / "eval" / "mt_bench", "repetitions": 1,
                          "judge": {"base_url": "", "api_key": "k", "backoff_base_s": 0.01,
                                    "cache_path": str(tmp_path / "judge.sqlite")}}}
    with FakeOpenAI(lambda req: "Rating: [[6]]") as srv:
        suites["mtbench"]["judge"]["base_url"] = srv.url
        summaries = evaluate_model(tmp_path / "model", suites, out, limit=2, generate=Scripted())
    metrics = summaries["mtbench"]["metrics"]
    assert metrics["score"]["mean"] == 6.0 and math.isnan(metrics["score_coding"]["mean"])
    written = [p for p in out.rglob("*") if p.suffix in (".json", ".jsonl")]
    assert {p.name for p in written} >= {"summary.json", "items.jsonl", "COMPLETE.json"}
    for path in written:
        for line in ([path.read_text()] if path.suffix == ".json" else path.read_text().splitlines()):
            strict_json(line)
    summary = strict_json((out / "mtbench" / "summary.json").read_text())
    assert summary["metrics"]["score_coding"]["mean"] is None  # type: ignore[index]
    assert summary["metrics"]["score_coding"]["n"] == 0  # type: ignore[index]


def test_a_judge_that_never_rates_leaves_nothing_complete(tmp_path: Path, shared_data: Path) -> None:
    """Every rating missing: the score could not be computed, so nothing is stored as complete."""
    out = tmp_path / "eval"
    with FakeOpenAI(lambda req: "I decline to rate this.") as srv:
        suites = {"mtbench": _mtbench(shared_data, srv.url, tmp_path)}
        with pytest.raises(IncompleteError, match=r"no item has a value for its metric 'score'"):
            evaluate_model(tmp_path / "model", suites, out, limit=2, generate=Scripted())
    assert not is_complete(out / "mtbench") and not (out / "summary.json").exists()


def test_repeated_benchmark_items_are_warned_about(tmp_path: Path, shared_data: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    first = (shared_data / "gsm8k" / "test.jsonl").read_text().splitlines()[0]
    bench = tmp_path / "test.jsonl"
    bench.write_text((first + "\n") * 3)
    with caplog.at_level(logging.WARNING, logger="sftmix.eval.runner"):
        summaries = evaluate_model(tmp_path / "m", {"gsm8k": {"path": bench}}, tmp_path / "o",
                                   generate=Scripted())
    assert summaries["gsm8k"]["n_items"] == 3
    assert "gsm8k: 2 item(s) repeat an earlier item" in caplog.text


@pytest.mark.parametrize(("suite", "name"), [("gsm8k", "test.jsonl"), ("humaneval", "HumanEval.jsonl"),
                                             ("mtbench", "question.jsonl")])
def test_a_benchmark_file_that_is_not_utf8_names_file_and_line(tmp_path: Path, suite: str,
                                                               name: str) -> None:
    bench = tmp_path / name
    bench.write_bytes(b'\n{"question": "caf\xe9"}\n')
    task = build_suite(suite, {"path": tmp_path if suite == "mtbench" else bench})
    with pytest.raises(DataError, match=rf"{name}, line 2: not UTF-8 text \(byte 0xe9 at column 18\)"):
        task.items()


def _mtbench(shared_data: Path, srv_url: str, tmp_path: Path, **judge) -> dict:
    return {"path": shared_data / "eval" / "mt_bench", "repetitions": 1,
            "judge": {"base_url": srv_url, "api_key": "k", "max_retries": 0,
                      "cache_path": str(tmp_path / "judge.sqlite"), **judge}}


def test_failed_judge_is_never_complete_and_a_rerun_asks_only_what_is_missing(
        tmp_path: Path, suites: dict, shared_data: Path) -> None:
    out = tmp_path / "o"
    with FakeOpenAI(lambda req: "Rating: [[6]]") as srv:
        suites["mtbench"] = _mtbench(shared_data, srv.url, tmp_path, concurrency=1)
        # 2 items x 2 turns = 4 judgements; the judge fails the first two and gives up.
        srv.inject(server_error(503), server_error(503))
        with pytest.raises(IncompleteError, match=r"did not answer 2 of 4 judgement\(s\) "
                           r"\(last error: HTTP 503\).*2 answered are cached.*SFTMIX_JUDGE_BASE_URL"):
            evaluate_model(tmp_path / "m", suites, out, limit=2, generate=Scripted())
        assert is_complete(out / "gsm8k") and not (out / "mtbench").exists()
        assert set(json.loads((out / "summary.json").read_text())) == {"gsm8k"}
        asked_first = len(srv.requests)
        again = evaluate_model(tmp_path / "m", suites, out, limit=2, generate=Scripted())
    assert asked_first == 4 and len(srv.requests) == 4 + 2  # only the two missing were asked again
    assert is_complete(out / "mtbench") and again["mtbench"]["metrics"]["score"]["mean"] == 6.0
    assert set(json.loads((out / "summary.json").read_text())) == {"gsm8k", "mtbench"}


def test_unreachable_judge_with_every_rating_missing(tmp_path: Path, shared_data: Path) -> None:
    closed = FakeOpenAI()  # a port nobody listens on once the server is closed
    url = closed.url
    closed._server.server_close()
    suites = {"mtbench": _mtbench(shared_data, url, tmp_path)}
    with pytest.raises(IncompleteError, match=r"did not answer 2 of 2 .*connection error"):
        evaluate_model(tmp_path / "m", suites, tmp_path / "o", limit=1, generate=Scripted())
    assert not is_complete(tmp_path / "o" / "mtbench")


def test_openai_judge_without_a_key_fails_before_generating(
        tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SFTMIX_JUDGE_BASE_URL", "SFTMIX_JUDGE_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    suites = {"mtbench": {"path": shared_data / "eval" / "mt_bench", "judge": {"cache_path": None}}}
    with pytest.raises(ConfigError, match=r"no API key is set.*SFTMIX_JUDGE_API_KEY.*"
                       r"--set mtbench\.judge\.base_url"):
        evaluate_model(tmp_path / "m", suites, tmp_path / "o", generate=refuse)


def test_a_folder_holding_another_models_evaluation_needs_overwrite(
        tmp_path: Path, suites: dict) -> None:
    lines: list[str] = []
    evaluate_model(tmp_path / "a", suites, tmp_path / "o", limit=1, generate=Scripted())
    with pytest.raises(ConfigError, match=r"holds the gsm8k evaluation of another model.*--overwrite"):
        evaluate_model(tmp_path / "b", suites, tmp_path / "o", limit=1, generate=refuse)
    evaluate_model(tmp_path / "b", suites, tmp_path / "o", limit=1, generate=Scripted(),
                   overwrite=True, say=lines.append)
    evaluate_model(tmp_path / "b", suites, tmp_path / "o", limit=1, generate=refuse, say=lines.append)
    assert lines[0].startswith("gsm8k: replacing the evaluation in")
    assert lines[1] == f"gsm8k: reused the complete evaluation in {tmp_path / 'o' / 'gsm8k'} " \
                       "(same model, options and limit)"


def test_default_folders_differ_for_models_with_the_same_folder_name(tmp_path: Path) -> None:
    a, b = default_out_dir(tmp_path / "a" / "01-maths"), default_out_dir(tmp_path / "b" / "01-maths")
    assert a != b and a.parent == b.parent == Path("evals")
    assert a.name.startswith("01-maths-") and b.name.startswith("01-maths-")
    assert default_out_dir(tmp_path / "a" / "." / "01-maths") == a
