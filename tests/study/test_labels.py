"""Labels a person can read: every job of the lab study says what it is for, and no two agree;
the executor passes a running stage's heartbeat on."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from sftmix.lab.cli import configs_dir, write_corpus
from sftmix.study.load import load_study
from sftmix.study.runner import prepare


@pytest.fixture(scope="module")
def lab_jobs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """The full lab study's job files (four designs, one seed, on a small corpus), key -> its file."""
    folder = tmp_path_factory.mktemp("lab")
    config = folder / "corpus.yaml"
    config.write_text("sizes: {maths_train: 16, maths_test: 4, code_train: 16, code_test: 4,"
                      " general_train: 16, general_test: 4}\n")
    write_corpus(folder / "corpus", config)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SFTMIX_LAB_DIR", str(folder / "corpus"))
        prepare(load_study(configs_dir() / "full.yaml"), folder / "study")
    return {p.stem: json.loads(p.read_text()) for p in (folder / "study" / "jobs").glob("*.json")}


def test_no_two_jobs_of_the_lab_study_share_a_label(lab_jobs: dict[str, dict[str, str]]) -> None:
    labels = [job["label"] for job in lab_jobs.values()]
    assert len(lab_jobs) == 72
    assert len(set(labels)) == len(labels), sorted(label for label in labels if labels.count(label) > 1)
    # Unique by what they say, not by a key appended as a last resort.
    assert not any(key in job["label"] for key in lab_jobs for job in lab_jobs.values())


def test_a_stage_label_says_what_it_trains_and_what_for(lab_jobs: dict[str, dict[str, str]]) -> None:
    stages = {job["label"] for job in lab_jobs.values() if job["kind"] == "stage"}
    # The three stages that train general×1 from three different parents.
    assert {"general×1 (scaling; shared by 2 runs)", "general×1 (sequential, stage 3 of 3)",
            "general×1 (mixed-sequential, stage 2 of 2; shared by 2 runs)"} <= stages
    assert "code×1 + maths×1 (mixed-sequential, stage 1 of 2; shared by 4 runs)" in stages
    assert "general×1 + replay 1/8 of (code×1 + maths×1) (dmt k=1/8, stage 2 of 2)" in stages
    evals = {job["label"] for job in lab_jobs.values() if job["kind"] == "eval"}
    assert "gsm8k on general×1 (sequential, stage 3 of 3)" in evals



def test_the_executor_passes_on_a_running_stage_s_heartbeat(tmp_path: Path) -> None:
    from sftmix.study.local import PROGRESS_LOGGER, last_progress_line
    from sftmix.train import progress

    assert progress.log.name == PROGRESS_LOGGER
    log_file = tmp_path / "s-1.log"
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    progress.log.addHandler(handler)
    try:
        assert last_progress_line(log_file) is None
        progress.log.warning("stage maths: step 1/9  loss 2.0000  (1 s, about 8 s left)")
        logging.getLogger("sftmix.train.stage").addHandler(handler)
        logging.getLogger("sftmix.train.stage").warning("something else")
        progress.log.warning("stage maths: step 5/9  loss 1.0000  (5 s, about 4 s left)")
        logging.getLogger("sftmix.train.stage").warning("and more")
    finally:
        progress.log.removeHandler(handler)
        logging.getLogger("sftmix.train.stage").removeHandler(handler)
        handler.close()
    assert last_progress_line(log_file) == "stage maths: step 5/9  loss 1.0000  (5 s, about 4 s left)"
    assert last_progress_line(tmp_path / "missing.log") is None


def test_the_heartbeat_names_the_job_once(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Off a terminal, every 30 s: the stage's own line, which names it; another job's line
    with its kind and label in front; nothing again until the line changes."""
    from types import SimpleNamespace

    from sftmix.study import local
    from sftmix.study.jobs import Job

    monkeypatch.setattr("sys.stderr", open(tmp_path / "stderr", "w"))  # not a terminal  # noqa: SIM115
    label = "general×1 (sequential, stage 3 of 3)"
    logs = {"s-1": f"stage {label}: step 5/9  loss 1.0000  (5 s, about 4 s left)", "e-1": "generated 32 of 100"}
    for key, line in logs.items():
        (tmp_path / f"{key}.log").write_text(f"12:00:00 INFO {local.PROGRESS_LOGGER}: {line}\n")
    run = SimpleNamespace(progress=True, study=SimpleNamespace(name="lab"),
                          log_file=lambda key: tmp_path / f"{key}.log")
    jobs = {"s-1": Job("s-1", "stage", [], {}, tmp_path, label),  # type: ignore[arg-type]
            "e-1": Job("e-1", "eval", [], {}, tmp_path, "gsm8k on x")}  # type: ignore[arg-type]
    clock = [1000.0]
    monkeypatch.setattr(local.time, "monotonic", lambda: clock[0])
    shown = local._Progress(run, 2, 0)  # type: ignore[arg-type]
    caplog.set_level(logging.INFO, logger=local.log.name)
    for _ in range(2):
        clock[0] += local.HEARTBEAT_SECONDS
        shown.heartbeat(jobs, dict.fromkeys(jobs))  # type: ignore[arg-type]
    said = [r.getMessage() for r in caplog.records if r.name == local.log.name]
    assert said == [f"lab: stage {label}: step 5/9  loss 1.0000  (5 s, about 4 s left)",
                    "lab: eval gsm8k on x: generated 32 of 100"]
