"""The lab's findings, checked on a finished lab study (``sftmix demo -o DIR``).

Reads the study's results (``sftmix results DIR --csv``, or a CSV written that
way), takes each run's primary metric per ability, averages each run over its
seeds, and checks the findings the lab rests on:

* the study has at least ``--min-seeds`` seeds (default 3) of every run checked;
* maths and code trained alone: all their data scores at least 0.3 above their
  smallest amount (RQ1, the scaling design);
* sequential training leaves maths and code at or below 0.15 (RQ4);
* DMT at its smallest k > 0 keeps each specialist at least at half its
  trained-alone score and at least 0.3, and general within 0.1 of general
  trained alone (RQ4).

Prints each check with its numbers (the mean and every seed's value) and exits
1 when a check fails, 2 when the study lacks a run a check needs.

    python bench/lab_checks.py STUDY_DIR
    python bench/lab_checks.py --csv results.csv
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

SPECIALISTS = ("maths", "code")
GENERAL = "general"
MIN_GAIN = 0.3  # all the data above the smallest amount, trained alone
MAX_FORGOTTEN = 0.15  # a specialist after sequential training
MIN_KEPT = 0.3  # a specialist after DMT at the smallest k, at least
KEPT_SHARE = 0.5  # ... and at least this share of its trained-alone score
MAX_GENERAL_DROP = 0.1  # general after DMT, below general alone


def dmt_coords(k: float) -> dict[str, object]:
    return {"strategy": "dmt", "k": k}


class MissingRun(Exception):
    """The study lacks a run (or an ability's score in it) that a check needs."""


@dataclass
class Score:
    """One ability's primary metric in one run, over seeds."""

    values: dict[int, float]  # seed -> value

    @property
    def mean(self) -> float:
        return sum(self.values.values()) / len(self.values)

    def __str__(self) -> str:
        seeds = ", ".join(f"s{s} {v:.2f}" for s, v in sorted(self.values.items()))
        return f"{self.mean:.3f} ({seeds})"


def read_results(study: Path | None, csv: Path | None) -> pd.DataFrame:
    if csv is None:
        assert study is not None
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "results.csv"
            proc = subprocess.run([sys.executable, "-m", "sftmix", "results", str(study), "--csv", str(out)],
                                  capture_output=True, text=True)
            if proc.returncode != 0 or not out.is_file():
                raise SystemExit(f"lab_checks: 'sftmix results {study}' failed (exit {proc.returncode}):\n"
                                 f"{proc.stderr.strip()}")
            return pd.read_csv(out)
    return pd.read_csv(csv)


class Results:
    """Primary metrics of one model's runs, looked up by design and coordinates."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame[frame["primary"].astype(bool)]

    def score(self, ability: str, what: str, design: str | None = None,
              coords: dict[str, object] | None = None) -> Score:
        """``ability``'s score in the runs of ``design`` (any if None) at ``coords``."""
        rows = self.frame[self.frame["ability"] == ability]
        if design is not None:
            rows = rows[rows["design"] == design]
        for key, value in (coords or {}).items():
            column = f"coord_{key}"
            if column not in rows:
                raise MissingRun(f"no run of {what} (the results have no '{key}' coordinate)")
            if isinstance(value, float):
                rows = rows[pd.to_numeric(rows[column], errors="coerce").sub(value).abs() < 1e-9]
            else:
                rows = rows[rows[column].astype(str) == str(value)]
        rows = rows.dropna(subset=["value"])
        if rows.empty:
            raise MissingRun(f"no {ability} score for {what}")
        return Score({int(s): float(v) for s, v in zip(rows["seed"], rows["value"], strict=True)})

    def alone(self, ability: str) -> Score:
        """The ability trained alone on all its data: the scaling design's run, else the baseline."""
        try:
            return self.score(ability, f"{ability} alone, all its data", "scaling",
                              {"ability": ability, "fraction": 1.0})
        except MissingRun:
            return self.score(ability, f"{ability} alone (strategies baseline)", "strategies",
                              {"strategy": f"{ability}-only"})

    def smallest_fraction(self, ability: str) -> float:
        if "coord_ability" not in self.frame:
            raise MissingRun(f"no scaling run of {ability}")
        rows = self.frame[(self.frame["design"] == "scaling") & (self.frame["coord_ability"] == ability)]
        if rows.empty:
            raise MissingRun(f"no scaling run of {ability}")
        return float(pd.to_numeric(rows["coord_fraction"]).min())

    def smallest_dmt_k(self) -> float:
        if "coord_k" not in self.frame or "coord_strategy" not in self.frame:
            raise MissingRun("no DMT run")
        ks = pd.to_numeric(self.frame.loc[self.frame["coord_strategy"] == "dmt", "coord_k"])
        ks = ks[ks > 0]
        if ks.empty:
            raise MissingRun("no DMT run with k > 0")
        return float(ks.min())


class Checks:
    def __init__(self, results: Results, min_seeds: int) -> None:
        self.results = results
        self.min_seeds = min_seeds
        self.failed = 0

    def report(self, ok: bool, text: str) -> None:
        self.failed += not ok
        print(f"{'PASS' if ok else 'FAIL'}  {text}")

    def seeds(self, *scores: Score) -> None:
        fewest = min(len(s.values) for s in scores)
        self.report(fewest >= self.min_seeds,
                    f"seeds: every checked run has at least {self.min_seeds} seeds (fewest: {fewest})")

    def run(self) -> None:
        r = self.results
        used: list[Score] = []
        for ability in SPECIALISTS:
            small = r.smallest_fraction(ability)
            full, low = r.alone(ability), r.score(ability, f"{ability} alone at {small:g}",
                                                   "scaling", {"ability": ability, "fraction": small})
            used += [full, low]
            self.report(full.mean - low.mean >= MIN_GAIN,
                        f"RQ1 {ability} alone: all data {full} - smallest amount ({small:g}) {low} "
                        f"= {full.mean - low.mean:+.3f}, needs >= {MIN_GAIN}")
        for ability in SPECIALISTS:
            seq = r.score(ability, "sequential training", "strategies", {"strategy": "sequential"})
            used.append(seq)
            self.report(seq.mean <= MAX_FORGOTTEN,
                        f"RQ4 sequential: {ability} {seq}, needs <= {MAX_FORGOTTEN}")
        k = r.smallest_dmt_k()
        for ability in SPECIALISTS:
            dmt, alone = r.score(ability, f"DMT k = {k:g}", "strategies", dmt_coords(k)), r.alone(ability)
            used.append(dmt)
            need = max(KEPT_SHARE * alone.mean, MIN_KEPT)
            self.report(dmt.mean >= need,
                        f"RQ4 DMT k = {k:g}: {ability} {dmt}, needs >= {need:.3f} "
                        f"(half of alone {alone.mean:.3f}, and >= {MIN_KEPT})")
        dmt, alone = r.score(GENERAL, f"DMT k = {k:g}", "strategies", dmt_coords(k)), r.alone(GENERAL)
        used += [dmt, alone]
        self.report(alone.mean - dmt.mean <= MAX_GENERAL_DROP,
                    f"RQ4 DMT k = {k:g}: general {dmt} against general alone {alone}, "
                    f"drop {alone.mean - dmt.mean:+.3f}, needs <= {MAX_GENERAL_DROP}")
        self.seeds(*used)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path, nargs="?", help="the lab study directory")
    parser.add_argument("--csv", type=Path, help="results written by 'sftmix results DIR --csv' instead")
    parser.add_argument("--min-seeds", type=int, default=3)
    args = parser.parse_args(argv)
    if (args.study is None) == (args.csv is None):
        parser.error("give the study directory or --csv FILE (one of them)")
    frame = read_results(args.study, args.csv)
    if frame.empty:
        print("lab_checks: the study has no results yet", file=sys.stderr)
        return 2
    failed = 0
    for model, part in frame.groupby("model", sort=False):
        print(f"== {model}: each run's primary metric, mean over seeds (per-seed values)")
        checks = Checks(Results(part), args.min_seeds)
        try:
            checks.run()
        except MissingRun as exc:
            print(f"lab_checks: {exc}: is this a lab study with the scaling and strategies designs?",
                  file=sys.stderr)
            return 2
        failed += checks.failed
    print(f"{'all checks pass' if not failed else f'{failed} check(s) failed'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
