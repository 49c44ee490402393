"""Provenance tables: mixtures from their manifests, time and tokens from the stage markers."""

from __future__ import annotations

import json
from pathlib import Path

from sftmix.artifacts import building
from sftmix.data.spec import SourceSpec
from sftmix.report.provenance import cost_table, environment_table, manifests_table
from sftmix.results.data import load_results
from sftmix.study.specs import MixturePart, MixtureSpec
from sftmix.study.store import STORE_NAME, ResultsStore
from sftmix.study.work import make_mixture
from tests.report.conftest import make_study, study_dict


def test_manifests_and_cost(tmp_path: Path, shared_data: Path) -> None:
    study = make_study(tmp_path, study_dict(shared_data, {"mixed": {"fractions": [1, "1/4"]}}))
    def source(name: str, path: str, fmt: str) -> SourceSpec:
        return SourceSpec(name=name, ability=name, path=str(shared_data / path), format=fmt, on_error="skip")

    make_mixture(MixtureSpec(parts=[
        MixturePart(source=source("maths", "gsm8k/train.jsonl", "gsm8k"), kind="count", amount=20),
        MixturePart(source=source("code", "code/code_alpaca_2k.json", "alpaca"), amount=0.01)],
        seed=0), study.dir / "mixtures" / "m-abc")
    (study.dir / "jobs").mkdir()
    (study.dir / "jobs" / "m-abc.json").write_text(json.dumps({"label": "maths×20 samples + code×0.01"}))
    store = ResultsStore(study.dir / STORE_NAME)
    for i, key in enumerate(study.plan.stages):
        out = study.dir / "stages" / key
        with building(out, {"train_seconds": 10.5 + i, "device": "cpu"}) as tmp:
            (tmp / "train_log.jsonl").write_text(
                "".join(json.dumps({"step": s, "tokens": 500 * s * (i + 1)}) + "\n" for s in (1, 2)))
        store.record_stage(key, out)
    store.close()
    res = load_results(study.dir)

    manifests = manifests_table(res)
    assert manifests is not None
    ((name, label, summary),) = manifests.rows
    assert (name, label) == ("m-abc", "maths×20 samples + code×0.01")
    assert summary.startswith("total.by_ability.code=20; total.by_ability.maths=20; ")
    assert "total.count=40" in summary and "entries.maths.obtained=20" in summary
    assert "sha256" not in summary and str(shared_data) not in summary
    cost = cost_table(res)
    assert cost.row("training stages") == ["training stages", 2, 10.5 + 11.5, 1000 + 2000]
    assert cost.row("evaluations")[1] == 6
    assert cost.row("recorded hardware")[2] == "cpu"
    assert cost.row("wall clock, first to last completed step")[2] >= 0


def test_environment_names_the_software() -> None:
    table = environment_table()
    items = dict((r[0], r[1]) for r in table.rows)
    assert {"sftmix", "torch", "matplotlib", "python", "cpu cores", "gpus"} <= set(items)
