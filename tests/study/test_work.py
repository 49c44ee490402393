"""What each job kind does, on real data: mixtures (with replay) and the data layer's spec."""

from __future__ import annotations

import contextlib
from pathlib import Path

from sftmix.data.mixing import read_mixture
from sftmix.data.spec import SourceSpec
from sftmix.study import work
from sftmix.study.kinds import KINDS
from sftmix.study.specs import MixturePart, MixtureSpec, Replay


def _part(shared_data: Path, kind: str, amount: float) -> MixturePart:
    source = SourceSpec(name="maths", ability="maths", path=str(shared_data / "gsm8k" / "train.jsonl"),
                        format="gsm8k")
    return MixturePart(source=source, kind=kind, amount=amount)  # type: ignore[arg-type]


def test_mixture_spec_is_the_data_layers(shared_data: Path) -> None:
    spec = MixtureSpec(parts=[_part(shared_data, "count", 8)], seed=3,
                       replay=Replay(mixture="mixtures/m-1", fraction=0.25))
    data = work.mixture_spec(spec)
    assert data.seed == 3 and [s.name for s in data.sources] == ["maths"]
    assert [(e.source, e.amount()) for e in data.entries] == [("maths", ("count", 8)), (None, ("fraction", 0.25))]
    assert data.entries[1].mixture_dir == "mixtures/m-1"


def test_mixtures_with_replay_are_built_inside_the_study_directory(shared_data: Path, tmp_path: Path) -> None:
    first = MixtureSpec(parts=[_part(shared_data, "count", 8)], seed=0)
    second = MixtureSpec(parts=[_part(shared_data, "fraction", 1 / 1024)], seed=0,
                         replay=Replay(mixture="mixtures/m-a", fraction=0.5))
    with contextlib.chdir(tmp_path):  # as the worker runs jobs: paths relative to the study
        KINDS["mixture"].run(first, Path("mixtures/m-a"), "")
        KINDS["mixture"].run(second, Path("mixtures/m-b"), "")
    a, b = read_mixture(tmp_path / "mixtures" / "m-a"), read_mixture(tmp_path / "mixtures" / "m-b")
    assert len(a) == 8
    replayed = {e.id for e in a} & {e.id for e in b}
    assert len(b) == 7 + 4 and len(replayed) >= 4
