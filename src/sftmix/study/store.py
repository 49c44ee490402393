"""The results store: one SQLite file per study, rebuilt at will from the artefacts.

Tables: ``study`` (config), ``runs`` (with their design coordinates),
``run_stages`` and ``run_evals`` (which work each run consists of), ``stages``,
``evaluations`` and ``metrics`` (value with its 95% interval); and what the plan
said when the study ran: ``sources`` (each ability's examples and mean tokens)
and ``stage_data`` (each stage's examples per ability and estimated training
tokens), so that a report or a recommendation never plans the study or reads its
data again. Every write is
one transaction, so a crash leaves the store as it was before or after a write;
and since every artefact directory holds what produced it, the store can always
be rebuilt from them alone (``sftmix results --rebuild``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sftmix.artifacts import is_complete
from sftmix.faults import crashpoint
from sftmix.hashing import canonical_json

SCHEMA = """
CREATE TABLE IF NOT EXISTS study (name TEXT PRIMARY KEY, config TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    name TEXT PRIMARY KEY, design TEXT NOT NULL, model TEXT NOT NULL, seed INTEGER NOT NULL,
    coords TEXT NOT NULL, final_stage TEXT);
CREATE TABLE IF NOT EXISTS run_stages (
    run TEXT NOT NULL, position INTEGER NOT NULL, stage TEXT NOT NULL, PRIMARY KEY (run, position));
CREATE TABLE IF NOT EXISTS run_evals (run TEXT NOT NULL, eval TEXT NOT NULL, PRIMARY KEY (run, eval));
CREATE TABLE IF NOT EXISTS stages (
    key TEXT PRIMARY KEY, parent TEXT, model TEXT NOT NULL, label TEXT NOT NULL,
    training TEXT NOT NULL, status TEXT NOT NULL, info TEXT);
CREATE TABLE IF NOT EXISTS evaluations (
    key TEXT PRIMARY KEY, stage TEXT, model TEXT NOT NULL, suite TEXT NOT NULL,
    ability TEXT NOT NULL, options TEXT NOT NULL, status TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    ability TEXT PRIMARY KEY, examples INTEGER NOT NULL, tokens_per_example REAL NOT NULL,
    exact INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS stage_data (
    key TEXT PRIMARY KEY, examples TEXT NOT NULL, tokens REAL NOT NULL);
CREATE TABLE IF NOT EXISTS metrics (
    eval TEXT NOT NULL, suite TEXT NOT NULL, metric TEXT NOT NULL, value REAL,
    ci_low REAL, ci_high REAL, n INTEGER, higher_is_better INTEGER, is_primary INTEGER NOT NULL,
    PRIMARY KEY (eval, metric));
"""

STORE_NAME = "results.sqlite"


class ResultsStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(SCHEMA)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
            crashpoint("store:commit")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- writes ------------------------------------------------------------------------
    def record_plan(self, plan: Any) -> None:
        """The study, its runs and the work each consists of (status pending unless known)."""
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO study VALUES (?, ?)",
                      (plan.study.name, canonical_json(plan.study.public_dump())))
            for run in plan.runs:
                c.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?)",
                          (run.name, run.design, run.model, run.seed, canonical_json(run.coords),
                           run.stages[-1] if run.stages else None))
                c.execute("DELETE FROM run_stages WHERE run = ?", (run.name,))
                for i, key in enumerate(run.stages):
                    c.execute("INSERT INTO run_stages VALUES (?, ?, ?)", (run.name, i, key))
                for key in run.evals:
                    c.execute("INSERT OR IGNORE INTO run_evals VALUES (?, ?)", (run.name, key))
            for key, node in plan.stages.items():
                c.execute("INSERT OR IGNORE INTO stages VALUES (?, ?, ?, ?, ?, 'pending', NULL)",
                          (key, node.parent, node.model, node.label, canonical_json(node.training)))
            for key, ev in plan.evals.items():
                c.execute("INSERT OR IGNORE INTO evaluations VALUES (?, ?, ?, ?, ?, ?, 'pending')",
                          (key, ev.stage, ev.model, ev.suite, ev.ability, canonical_json(ev.options)))
            if plan.cost is not None:
                self._record_cost(c, plan)

    @staticmethod
    def _record_cost(c: sqlite3.Connection, plan: Any) -> None:
        cost = plan.cost
        c.execute("DELETE FROM sources")
        for ability, stats in cost.sources.items():
            c.execute("INSERT INTO sources VALUES (?, ?, ?, ?)",
                      (ability, stats.examples, stats.tokens_per_example, int(cost.exact)))
        for key, node in plan.stages.items():
            c.execute("INSERT OR REPLACE INTO stage_data VALUES (?, ?, ?)",
                      (key, canonical_json(cost.stage_examples(node.recipe)), cost.stage_tokens[key]))

    def record_stage(self, key: str, out: Path) -> None:
        info = _read_json(out / "COMPLETE.json")
        with self.transaction() as c:
            c.execute("UPDATE stages SET status = 'done', info = ? WHERE key = ?",
                      (canonical_json(info), key))

    def record_eval(self, key: str, out: Path) -> None:
        summary = _read_json(out / "summary.json")
        with self.transaction() as c:
            c.execute("DELETE FROM metrics WHERE eval = ?", (key,))
            suite = summary.get("suite", "")
            primary = summary.get("primary")
            for name, m in summary.get("metrics", {}).items():
                c.execute("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          (key, suite, name, m.get("mean", m.get("value")), m.get("ci_low"),
                           m.get("ci_high"), m.get("n"), int(bool(m.get("higher_is_better", True))),
                           int(name == primary)))
            c.execute("UPDATE evaluations SET status = 'done' WHERE key = ?", (key,))

    def set_status(self, table: str, key: str, status: str) -> None:
        assert table in ("stages", "evaluations")
        with self.transaction() as c:
            c.execute(f"UPDATE {table} SET status = ? WHERE key = ?", (status, key))

    def record_job(self, job: Any, skip: set[str] | frozenset[str] = frozenset()) -> int:
        """Record the complete artefacts of a stage or evaluation job; returns how many.

        The store holds stages and evaluations; the artefacts of other kinds of job are
        read from their folders.
        """
        record = {"stage": self.record_stage, "eval": self.record_eval}.get(job.kind)
        if record is None:
            return 0
        added = 0
        for key, out in job.outputs.items():
            if key not in skip and is_complete(out):
                record(key, out)
                added += 1
        return added

    def record_failure(self, job: Any) -> None:
        """A stage or evaluation job that failed: each of its incomplete artefacts is 'failed'."""
        table = {"stage": "stages", "eval": "evaluations"}.get(job.kind)
        for key, out in job.outputs.items():
            if table is not None and not is_complete(out):
                self.set_status(table, key, "failed")

    def sync(self, jobs: dict[str, Any]) -> int:
        """Record every complete artefact the store does not know yet; returns how many."""
        done = {row[0] for row in self.conn.execute(
            "SELECT key FROM stages WHERE status = 'done' UNION SELECT key FROM evaluations WHERE status = 'done'")}
        return sum(self.record_job(job, done) for job in jobs.values())

    # -- reads -------------------------------------------------------------------------
    def results(self) -> list[dict[str, Any]]:
        """One row per (run, metric): the run's design coordinates and the metric with its interval.

        Keys: run, design, model, seed, coords (dict), ability, suite, metric, value, ci_low,
        ci_high, n, higher_is_better, primary (the suite's headline metric), eval (its key).
        """
        rows = self.conn.execute("""
            SELECT r.name, r.design, r.model, r.seed, r.coords, e.ability, e.suite, m.metric,
                   m.value, m.ci_low, m.ci_high, m.n, m.higher_is_better, m.is_primary, e.key
            FROM runs r JOIN run_evals re ON re.run = r.name
            JOIN evaluations e ON e.key = re.eval
            JOIN metrics m ON m.eval = e.key
            ORDER BY r.rowid, e.suite, m.metric""").fetchall()
        cols = ["run", "design", "model", "seed", "coords", "ability", "suite", "metric", "value",
                "ci_low", "ci_high", "n", "higher_is_better", "primary", "eval"]
        out = []
        for row in rows:
            d = dict(zip(cols, row, strict=True))
            d["coords"] = json.loads(d["coords"])
            d["higher_is_better"] = bool(d["higher_is_better"])
            d["primary"] = bool(d["primary"])
            out.append(d)
        return out

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for table in ("stages", "evaluations"):
            out[table] = dict(self.conn.execute(f"SELECT status, COUNT(*) FROM {table} GROUP BY status").fetchall())
        return out


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
