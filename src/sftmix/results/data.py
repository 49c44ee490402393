"""A study directory's results: tidy frames with seeds pooled, and what the study recorded when it ran.

:func:`load_results` reads ``study.yaml`` and ``results.sqlite`` -- the metrics
of every run (pooled over seeds, :mod:`sftmix.results.pool`), its stages, and
the facts the plan held when the study ran: each ability's source size and mean
length, each stage's examples per ability and training tokens. The report and
``sftmix suggest`` read a study through this one object; neither plans the study
again nor reads its data.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sftmix.config import load_config
from sftmix.errors import SftmixError
from sftmix.results.pool import pool_seeds, run_group, tidy
from sftmix.study.config import StudyConfig
from sftmix.study.store import STORE_NAME, ResultsStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceSize:
    """An ability's source as the study read it: examples and mean tokens per example
    (``exact``: measured with a tokenizer, else estimated at four characters per token)."""

    examples: int
    tokens_per_example: float
    exact: bool = False


@dataclass
class StudyResults:
    """Everything the report reads from a study directory."""

    study_dir: Path
    study: StudyConfig
    rows: pd.DataFrame  # the store's rows, one per (run with seed, metric)
    metrics: pd.DataFrame  # pooled over seeds: one row per (run, metric)
    stages: pd.DataFrame = field(default_factory=pd.DataFrame)  # key, label, status, info (dict)
    run_stages: dict[str, list[str]] = field(default_factory=dict)  # seeded run name -> stage keys
    sources: dict[str, SourceSize] = field(default_factory=dict)  # ability -> its source's size
    # Stage key -> (examples of each ability in its data, estimated training tokens).
    stage_data: dict[str, tuple[dict[str, int], float]] = field(default_factory=dict)

    @property
    def abilities(self) -> list[str]:
        return list(self.study.abilities)

    @property
    def general(self) -> str | None:
        return self.study.general

    @property
    def specialist(self) -> list[str]:
        return self.study.specialist

    def run_tokens(self, run: str) -> float | None:
        """The training tokens of a run (without its seed) trained from its base model, every stage
        counted -- what the run would cost on its own -- or None where they were not recorded."""
        stages = next((s for r, s in self.run_stages.items() if run_group(r) == run), None)
        if stages is None or not all(k in self.stage_data for k in stages):
            return None
        return sum(self.stage_data[k][1] for k in stages)

    def chains(self, model: str | None = None) -> dict[str, list[dict[str, int]]]:
        """Run (without its seed) -> the examples of each ability in each of its stages, in order,
        as recorded when the study ran. Runs of ``model`` only, when given."""
        out: dict[str, list[dict[str, int]]] = {}
        for run, stages in self.run_stages.items():
            if model is not None and not run_group(run).endswith(f"/{model}"):
                continue
            if stages and all(k in self.stage_data for k in stages):
                out.setdefault(run_group(run), [self.stage_data[k][0] for k in stages])
        return out

    @property
    def primary(self) -> pd.DataFrame:
        """The headline metric of every suite, pooled over seeds."""
        # .loc with an explicit bool mask: an empty object column would select columns instead.
        return self.metrics.loc[self.metrics["primary"].astype(bool)].reset_index(drop=True)

    def design(self, name: str) -> pd.DataFrame:
        """Primary metrics of one design's runs (empty if the study has none)."""
        p = self.primary
        return p[p["design"] == name].reset_index(drop=True)

    def measures(self) -> list[tuple[str, str, str]]:
        """(ability, suite, metric) of every headline metric, in the study's ability order."""
        p = self.primary
        out: list[tuple[str, str, str]] = []
        for ability in self.abilities:
            for cfg_suite in self.study.abilities[ability].evals:
                hit = p[(p["ability"] == ability) & (p["suite"] == cfg_suite)]
                if not hit.empty:
                    out.append((ability, cfg_suite, str(hit["metric"].iloc[0])))
        return out


def _stages(conn: sqlite3.Connection) -> pd.DataFrame:
    rows = conn.execute("SELECT key, parent, model, label, status, info FROM stages").fetchall()
    frame = pd.DataFrame(rows, columns=["key", "parent", "model", "label", "status", "info"])
    # A stage still pending has no info (None, or NaN in pandas 3's string column).
    frame["info"] = [json.loads(x) if isinstance(x, str) and x else {} for x in frame["info"]]
    return frame


def _run_stages(conn: sqlite3.Connection) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for run, stage in conn.execute("SELECT run, stage FROM run_stages ORDER BY run, position"):
        out.setdefault(run, []).append(stage)
    return out


def _sources(conn: sqlite3.Connection) -> dict[str, SourceSize]:
    rows = conn.execute("SELECT ability, examples, tokens_per_example, exact FROM sources").fetchall()
    return {a: SourceSize(int(n), float(t), bool(e)) for a, n, t, e in rows}


def _stage_data(conn: sqlite3.Connection) -> dict[str, tuple[dict[str, int], float]]:
    rows = conn.execute("SELECT key, examples, tokens FROM stage_data").fetchall()
    return {k: ({a: int(c) for a, c in json.loads(e).items()}, float(t)) for k, e, t in rows}


def load_results(study_dir: str | Path) -> StudyResults:
    """Read ``study.yaml`` and ``results.sqlite`` of a study directory."""
    study_dir = Path(study_dir)
    if not (study_dir / "study.yaml").is_file():
        raise SftmixError(f"{study_dir}: not a study directory (expected the study.yaml that "
                          "'sftmix run' writes)")
    if not (study_dir / STORE_NAME).is_file():
        raise SftmixError(f"{study_dir}: no results store ({STORE_NAME}); run the study first, or "
                          f"rebuild the store with 'sftmix results {study_dir} --rebuild'")
    study = load_config(study_dir / "study.yaml", StudyConfig)
    store = ResultsStore(study_dir / STORE_NAME)
    try:
        rows = store.results()
        stages = _stages(store.conn)
        run_stages = _run_stages(store.conn)
        sources = _sources(store.conn)
        stage_data = _stage_data(store.conn)
    finally:
        store.close()
    frame = tidy(rows)
    log.debug("read %d metric rows of %d runs from %s", len(frame), frame["run"].nunique(), study_dir)
    return StudyResults(study_dir, study, frame, pool_seeds(frame), stages, run_stages, sources, stage_data)
