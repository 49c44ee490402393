"""``sftmix report`` as a user runs it: a real subprocess, its printed paths, its errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.report.conftest import make_study, study_dict


def _sftmix(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sftmix", *args], capture_output=True, text=True,
                          timeout=300, check=False)


@pytest.fixture(scope="module")
def small_study(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    designs = {"mixed": {"fractions": [1, "1/4"]}, "strategies": {"sequential": None}}
    return make_study(tmp_path_factory.mktemp("cli"), study_dict(shared_data, designs)).dir


@pytest.mark.slow
def test_report_writes_both_outputs_and_prints_their_paths(small_study: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = _sftmix("report", str(small_study), "-o", str(out), "--weights", "maths=1,code=1,general=2",
                   "--tsne-queries", "0")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(out / "report.html"), str(out / "report.md")]
    md = (out / "report.md").read_text()
    assert "Recommendation for the weighting maths=1, code=1, general=2" in md
    assert "![RQ2: all abilities mixed" in md and (out / "figures" / "rq2_mixed.png").is_file()
    assert "No results of the 'scaling' design (RQ1)" in md
    assert "<img alt=" in (out / "report.html").read_text()
    assert not list(out.rglob("*.partial*"))


@pytest.mark.slow
def test_default_output_folder_is_inside_the_study(small_study: Path) -> None:
    done = _sftmix("report", str(small_study), "--tsne-queries", "0", "--no-paper")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == str(small_study / "report" / "report.html")
    assert "Dong et al." not in (small_study / "report" / "report.md").read_text()


@pytest.mark.parametrize(("args", "message"), [
    (["--weights", "maths=1,law=1"], "one of the study's abilities (maths, code, general)"),
    (["--tsne-queries", "-1"], "--tsne-queries must be >= 0"),
    (["--tsne-run", "nope"], "--tsne-run: no run named 'nope'"),
])
def test_bad_arguments_are_explained(small_study: Path, args: list[str], message: str) -> None:
    done = _sftmix("report", str(small_study), *args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_not_a_study_directory(tmp_path: Path) -> None:
    done = _sftmix("report", str(tmp_path))
    assert done.returncode == 2 and "not a study directory" in done.stderr
