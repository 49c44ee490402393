"""Invalid study files: each kind of mistake is reported with the field path and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from sftmix.errors import ConfigError
from sftmix.study.config import StudyConfig
from sftmix.study.load import load_study

BASE = """\
name: s
abilities:
  maths: {{data: {{path: {data}/gsm8k/train.jsonl, format: gsm8k}}, evals: [gsm8k]}}
  code: {{data: {{path: {data}/code/code_alpaca_2k.json, format: alpaca}}, evals: [humaneval]}}
  general: {{data: {{path: {data}/general/sharegpt_dpo_chosen.json, format: sharegpt}}, evals: [ifeval]}}
models: [{{name: m, gguf: smollm2}}]
evaluation:
  gsm8k: {{path: {data}/gsm8k/test.jsonl}}
  ifeval: {{path: {data}/eval/ifeval/input_data.jsonl}}
"""

CASES = {
    "unknown ability": ("designs: {scaling: {fractions: [1], abilities: [maths, poetry]}}",
                        "designs.scaling.abilities[1]", "unknown ability 'poetry'"),
    "fraction zero": ("designs: {scaling: {fractions: [1, 0]}}", "designs.scaling.fractions[1]", "greater than 0"),
    "fraction negative": ("designs: {mixed: {fractions: [-0.5]}}", "designs.mixed.fractions[0]", "greater than 0"),
    "fraction not a number": ("designs: {mixed: {fractions: [half]}}", "designs.mixed.fractions[0]", "'half'"),
    "fraction divides by zero": ("designs: {mixed: {fractions: ['1/0']}}", "designs.mixed.fractions[0]", "'1/0'"),
    "k above one": ("designs: {strategies: {dmt: {ks: [0, 1.5]}}}", "designs.strategies.dmt.ks[1]", "less than or equal to 1"),
    "k negative": ("designs: {strategies: {dmt: {ks: [-1/4]}}}", "designs.strategies.dmt.ks[0]", "greater than or equal to 0"),
    "ratio k zero": ("designs: {ratio: {ks: [0]}}", "designs.ratio.ks[0]", "greater than 0"),
    "unknown ratio setup": ("designs: {ratio: {setups: [a, d], ks: [1]}}", "designs.ratio.setups[1]", "'d'"),
    "sequential unknown ability": ("designs: {strategies: {sequential: {order: [code, art]}}}",
                                   "designs.strategies.sequential.order[1]", "unknown ability 'art'"),
    "sequential repeats": ("designs: {strategies: {sequential: {order: [code, code]}}}",
                           "designs.strategies.sequential.order", "appears twice"),
    "wrong type": ("seeds: zero", "seeds", "'zero'"),
    "duplicate seeds": ("seeds: [1, 1]", "seeds", "duplicate seeds"),
    "unknown field": ("desings: {}", "desings", "unknown field"),
    "duplicate run names": ("runs:\n  - {name: r, stages: [{name: a, data: [{ability: maths}]}]}\n"
                            "  - {name: r, stages: [{name: a, data: [{ability: code}]}]}",
                            "runs[1].name", "duplicate run name 'r'"),
    "duplicate stage names": ("runs:\n  - {name: r, stages: [{name: a, data: [{ability: maths}]}, {name: a, data: [{ability: code}]}]}",
                              "runs[0].stages[1].name", "duplicate stage name 'a'"),
    "unknown stage reference": ("runs:\n  - {name: r, stages: [{name: a, after: nowhere.x, data: [{ability: maths}]}]}",
                                "runs[0].stages[0].after", "unknown stage 'nowhere.x'"),
    "unknown replay reference": ("runs:\n  - {name: r, stages: [{name: a, data: [{ability: maths}], replay: {stage: zz, fraction: 0.5}}]}",
                                 "runs[0].stages[0].replay.stage", "unknown stage 'zz'"),
    "cyclic stage reference": ("runs:\n  - {name: r1, stages: [{name: a, after: r2.b, data: [{ability: maths}]}]}\n"
                               "  - {name: r2, stages: [{name: b, after: r1.a, data: [{ability: code}]}]}",
                               "runs[0].name", "cycle"),
    "stage data unknown ability": ("runs:\n  - {name: r, stages: [{name: a, data: [{ability: chess}]}]}",
                                   "runs[0].stages[0].data[0].ability", "unknown ability 'chess'"),
    "fraction and count": ("runs:\n  - {name: r, stages: [{name: a, data: [{ability: maths, fraction: 1, count: 5}]}]}",
                           "runs[0].stages[0].data[0]", "either 'fraction' or 'count'"),
    "training setting wrong": ("training: {learning_rate: -1}", "training.learning_rate", "greater than 0"),
    "training setting unknown": ("training: {epoch: 3}", "training.epoch", "unknown field"),
    "evaluation option unknown": ("evaluation: {gsm8k: {path: study.yaml, shots: 5}}", "evaluation.gsm8k", "unknown option(s) 'shots'"),
    "benchmark file missing": ("evaluation: {gsm8k: {path: nowhere/test.jsonl}}", "evaluation.gsm8k.path",
                               "not found: nowhere/test.jsonl (that is, "),
    "tiny model setting": ("models: [{name: t, tiny: {hidden: 30, heads: 4}}]", "models[0].tiny", "multiple of heads"),
    "count zero": ("runs:\n  - {name: r, stages: [{name: a, data: [{ability: maths, count: 0}]}]}",
                   "runs[0].stages[0].data[0].count", "greater than 0"),
}


def _write(tmp_path: Path, shared_data: Path, extra: str, base: str = BASE) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(base.format(data=shared_data) + extra + "\n")
    return path


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_study_is_reported_with_field_path(case: str, tmp_path: Path, shared_data: Path) -> None:
    extra, field, message = CASES[case]
    path = _write(tmp_path, shared_data, extra)
    with pytest.raises(ConfigError) as info:
        load_study(path)
    text = str(info.value)
    assert f"field '{field}'" in text, text
    assert message in text, text
    assert str(path) in text and ", line " in text, text


def test_missing_data_file(tmp_path: Path, shared_data: Path) -> None:
    base = BASE.replace("gsm8k/train.jsonl", "gsm8k/nope.jsonl")
    path = _write(tmp_path, shared_data, "", base)
    with pytest.raises(ConfigError, match=r"line 3, field 'abilities.maths.data.path': data file not found"):
        load_study(path)


def test_model_needs_exactly_one_kind(tmp_path: Path, shared_data: Path) -> None:
    base = BASE.replace("{name: m, gguf: smollm2}", "{name: m}")
    with pytest.raises(ConfigError, match=r"field 'models\[0\]'.*exactly one of 'path'"):
        load_study(_write(tmp_path, shared_data, "", base))


def test_model_path_must_be_a_model(tmp_path: Path, shared_data: Path) -> None:
    base = BASE.replace("gguf: smollm2", f"path: {tmp_path}")
    with pytest.raises(ConfigError, match=r"models\[0\].path': expected a Hugging Face model folder"):
        load_study(_write(tmp_path, shared_data, "", base))


def test_strategies_need_general(tmp_path: Path, shared_data: Path) -> None:
    base = "\n".join(line for line in BASE.splitlines() if not line.startswith("  general:")) + "\n"
    with pytest.raises(ConfigError, match=r"field 'designs.strategies.mixed_sequential': strategy "
                                          r"'mixed_sequential' needs a general ability"):
        load_study(_write(tmp_path, shared_data, "designs: {strategies: {sequential: null}}", base))


def test_source_needs_exactly_one_location(tmp_path: Path, shared_data: Path) -> None:
    base = BASE.replace("{path: " + "{data}/gsm8k/train.jsonl, format: gsm8k}", "{format: gsm8k}")
    with pytest.raises(ConfigError, match=r"abilities.maths.data'.*exactly one of 'path'"):
        load_study(_write(tmp_path, shared_data, "", base))


def test_env_variables_expand_and_missing_ones_are_named(tmp_path: Path, shared_data: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SFTMIX_TEST_DATA", str(shared_data))
    base = BASE.replace("{data}", "${{SFTMIX_TEST_DATA}}")
    study = load_study(_write(tmp_path, shared_data, "", base))
    assert study.abilities["maths"].data.path == str(shared_data / "gsm8k" / "train.jsonl")
    monkeypatch.delenv("SFTMIX_TEST_DATA")
    with pytest.raises(ConfigError, match=r"line 3: environment variable SFTMIX_TEST_DATA is not set"):
        load_study(_write(tmp_path, shared_data, "", base))


def test_valid_study_loads(tmp_path: Path, shared_data: Path) -> None:
    study = load_study(_write(tmp_path, shared_data, "designs: {scaling: {fractions: [1, '1/4']}}"))
    assert study.designs["scaling"].fractions == [1.0, 0.25]
    assert study.specialist == ["maths", "code"]


def test_old_model_spelling_is_read_with_a_warning(tmp_path: Path, shared_data: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    base = BASE.replace("gguf: smollm2", "path: smollm2")
    study = load_study(_write(tmp_path, shared_data, "", base))
    assert study.models[0].gguf == "smollm2" and study.models[0].path is None
    assert "old spelling of 'gguf: smollm2'" in caplog.text


def test_a_single_dmt_k_is_written_as_in_a_schedule_file(tmp_path: Path, shared_data: Path) -> None:
    from sftmix.study.plan import build_plan

    one = load_study(_write(tmp_path, shared_data, "designs: {strategies: {dmt: {k: 1/8}}}"))
    many = load_study(_write(tmp_path, shared_data, "designs: {strategies: {dmt: {ks: ['1/8']}}}"))
    assert [o.k for _, o in one.designs["strategies"].runs() if _ == "dmt"] == [0.125]
    assert build_plan(one, hash_files=False).stages == build_plan(many, hash_files=False).stages


def test_an_ability_may_read_several_files(tmp_path: Path, shared_data: Path) -> None:
    from sftmix.study.cost import source_stats
    from sftmix.study.plan import build_plan

    (tmp_path / "data").symlink_to(shared_data)
    design = "designs: {scaling: {fractions: [1]}}"
    one_file = BASE.format(data=shared_data) + design + "\n"
    single = f"{{data: {{path: {shared_data}/code/code_alpaca_2k.json, format: alpaca}}"
    several = ("{data: {format: alpaca, on_error: skip, path: [data/code/code_alpaca_2k.json, "
               "{path: data/code/gpteacher_codegen.json, format: alpaca}]}")
    text = one_file.replace(single, several)
    path = tmp_path / "study.yaml"

    def load(text: str) -> StudyConfig:
        path.write_text(text)
        return load_study(path)

    study = load(text)
    # Relative paths start at the study file's folder, each file's own.
    code = study.abilities["code"].data.path
    assert Path(code[0]).resolve() == (shared_data / "code" / "code_alpaca_2k.json").resolve()
    assert Path(code[1].path).resolve() == (shared_data / "code" / "gpteacher_codegen.json").resolve()
    plan = build_plan(study)
    assert source_stats(study)["code"].examples == 2015 + 4535  # code_alpaca_2k's 2 blank records skipped
    # The other abilities' stages are the same work as with one code file; code's is not.
    assert len(set(plan.stages) & set(build_plan(load(one_file)).stages)) == 2

    missing = text.replace("gpteacher_codegen.json", "gpteacher.json")
    with pytest.raises(ConfigError, match=r"line 4, field 'abilities.code.data.path\[1\]': data file not "
                                          r"found: .*gpteacher.json"):
        load(missing)
    wrong = text.replace("gpteacher_codegen.json, format: alpaca", "gpteacher_codegen.json, format: alpacca")
    with pytest.raises(ConfigError, match=r"field 'abilities.code.data.path\[1\].format': unknown data "
                                          r"format 'alpacca'"):
        load(wrong)


def test_files_missing_where_data_get_writes_say_how_to_get_them_once(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text("name: s\nabilities:\n"
                    "  maths: {data: {path: data/paper/gsm8k/train.jsonl, format: gsm8k}}\n"
                    "  code: {data: {path: data/paper/code/code_alpaca.jsonl, format: alpaca}}\n"
                    "models: [{name: m, tiny: {vocab_size: 400, hidden: 32, layers: 2, heads: 2}}]\n")
    with pytest.raises(ConfigError) as caught:
        load_study(path)
    message = str(caught.value)
    assert "line 3, field 'abilities.maths.data.path': data file not found" in message
    assert "line 4, field 'abilities.code.data.path': data file not found" in message
    assert message.count("'sftmix data get'") == 1
    assert message.endswith("writes the reference study's data to data/paper (docs/data.md); or point the "
                            "config at your own files")
    path.write_text(path.read_text().replace("data/paper/", "mine/"))
    with pytest.raises(ConfigError) as caught:
        load_study(path)
    assert "data get" not in str(caught.value)
