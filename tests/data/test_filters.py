"""no_code_math on the real general files: hand-checked records on both sides of the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from sftmix.data.filters import FILTERS, apply_filters, no_code_math
from sftmix.data.records import Example
from sftmix.data.sources import load_source
from sftmix.data.spec import SourceSpec


def _load(shared_data: Path, rel: str, fmt: str) -> dict[str, Example]:
    loaded = load_source(SourceSpec(name="g", path=str(shared_data / rel), format=fmt))
    return {ex.id: ex for ex in loaded.examples}


@pytest.fixture(scope="module")
def sharegpt(shared_data: Path) -> dict[str, Example]:
    return _load(shared_data, "general/sharegpt_dpo_chosen.json", "sharegpt")


# Read by hand: each of these is a code or maths conversation, and the reason names the cue.
POSITIVES = {
    "g:7": "code: fenced code block",                 # asks for and gets a code block
    "g:30": "code: 7 lines of source code",           # Python e-mail script without fences
    "g:13": "maths: equation",                        # "355909190063 - 746 = 355909189317"
    "g:233": "maths: equation",                       # "Solve -736*h + 742*h + 12 = 0 for h"
    "g:250": "maths: LaTeX",                          # Gaussian channel question, $P=2$
    "g:16": "maths: equation '2^n'",                  # number of subsets of a set
    "g:56": "maths: request 'calculate the area'",    # area of a trapezoid, step by step
}
# Read by hand: general conversations that merely look a little like code or maths.
NEGATIVES = [
    "g:3",   # preparing for a job interview
    "g:41",  # Hamlet soliloquy about technology
    "g:82",  # reading comprehension whose separator is "==="
    "g:1",   # a teacher explaining a task
]


@pytest.mark.parametrize(("rid", "reason"), sorted(POSITIVES.items()))
def test_drops_code_and_maths(sharegpt: dict[str, Example], rid: str, reason: str) -> None:
    got = no_code_math(sharegpt[rid])
    assert got is not None and got.startswith(reason), got


@pytest.mark.parametrize("rid", NEGATIVES)
def test_keeps_general_conversations(sharegpt: dict[str, Example], rid: str) -> None:
    assert no_code_math(sharegpt[rid]) is None


def test_money_is_not_maths(shared_data: Path) -> None:
    roleplay = _load(shared_data, "general/gpteacher_roleplay.json", "alpaca")
    # Financial advice with "$30,000) to ... 60% ... $" -- dollar amounts, not LaTeX.
    for rid in ("g:305", "g:436", "g:1800"):
        assert no_code_math(roleplay[rid]) is None
    # "find the root cause" is not maths either: nothing in the role-play file is dropped.
    assert sum(no_code_math(ex) is not None for ex in roleplay.values()) == 0


def test_report_counts_and_first_reasons(shared_data: Path) -> None:
    loaded = load_source(SourceSpec(name="g", path=str(shared_data / "general/sharegpt_dpo_chosen.json"),
                                    format="sharegpt", filters=["no_code_math"]))
    report = loaded.report()["filters"]["no_code_math"]
    assert report["dropped"] == 57
    assert len(loaded.examples) == 300 - 57
    assert report["examples"][0] == {"id": "g:7", "reason": "code: fenced code block in turn 1 (assistant)"}
    # The identity conversations hold neither code nor maths.
    identity = _load(shared_data, "general/fastchat_identity_sharegpt.json", "sharegpt")
    kept, rep = apply_filters(list(identity.values()), ["no_code_math"])
    assert len(kept) == 500 and rep["no_code_math"]["dropped"] == 0


def test_unknown_filter_lists_available() -> None:
    with pytest.raises(Exception, match="unknown filter 'no_code'; available: no_code_math"):
        FILTERS.get("no_code")
