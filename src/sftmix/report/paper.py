"""The reference study's published numbers, shipped with sftmix as data.

Dong et al., "How Abilities in Large Language Models are Affected by Supervised
Fine-tuning Data Composition" (arXiv 2310.05492, ACL 2024), transcribed from the
paper's tables (arXiv v1 main text and appendix). They are drawn beside a
study's results so that a reproduction can be judged at a glance; they are
facts to compare with, not targets.

Columns: ``gsm8k`` = GSM8K test accuracy in percent, ``humaneval`` = HumanEval
pass@1 in percent, ``mtbench`` = MT-Bench score (1-10, GPT-4 judge, mean of 3
judge runs). Models: LLaMA (v1) 7B / 13B / 33B, full fine-tuning, 3 epochs,
peak learning rate 2e-5, 3% warm-up, vicuna prompt template.

Tables (``resources/paper/<name>.csv``):

* ``rq1_single_source`` -- each ability trained alone on a fraction of its data;
* ``rq2_mixed_sources`` -- the same fraction of all three sources mixed;
* ``rq3_ratio`` -- 7B; setup a: full general + code&maths scaled by k; b: full
  code&maths + general scaled by k; c: 1/64 general + code&maths scaled by k;
* ``rq4_strategies`` -- Table 1: single-domain baselines, multi-task,
  sequential (code, maths, general), mixed sequential, DMT with k = 1/256;
* ``dmt_k_sweep`` -- DMT's replay fraction k; the k = 0 rows are mixed sequential;
* ``general_without_code_math`` -- mixed training after removing code and
  maths conversations from the general data (86K to 63K samples).

What the paper's abilities are -- each one's benchmark column, its label, the name
of its single-ability baseline, its data size, which one is the general ability --
is data too (``resources/paper/meta.json``): a study's ability is matched to the
paper's by the benchmark that measures it, and its general ability to the paper's.

Known inconsistencies inside the paper: 13B code-only HumanEval is 17.1 in
Table 1 but 18.4 in the appendix; 13B multi-task GSM8K is 50.94 vs 50.49; the
text of section 3.5 lists other k values than its tables, which report
k in {1, 1/4, 1/16, 1/64, 1/256}. Data sizes: GSM8K-RFT 110,142 samples, Code
Alpaca 20,022, ShareGPT 86,060 (at 1/256: 430 / 78 / 336 samples).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from fractions import Fraction
from functools import cache
from importlib import resources
from typing import Any

import pandas as pd

from sftmix.errors import SftmixError

CITATION = "Dong et al. 2023"
TABLES = ("rq1_single_source", "rq2_mixed_sources", "rq3_ratio", "rq4_strategies",
          "dmt_k_sweep", "general_without_code_math")


@cache
def _meta() -> dict[str, Any]:
    text = resources.files("sftmix").joinpath("resources/paper/meta.json").read_text(encoding="utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


# The paper's benchmark columns and how each is written.
COLUMN_LABEL: dict[str, str] = {c: b["label"] for c, b in _meta()["benchmarks"].items()}
# The column of the paper's general ability (MT-Bench).
GENERAL_COLUMN = next(c for c, b in _meta()["benchmarks"].items() if b.get("general"))


def model_label(model: str) -> str:
    """``llama-7b`` -> ``LLaMA-7B``."""
    family, _, size = model.partition("-")
    return ("LLaMA" if family == "llama" else family) + (f"-{size.upper()}" if size else "")


def series_label(model: str, column: str | None = None) -> str:
    """The legend label of a paper series, naming the source, the model and the scale."""
    text = f"{CITATION} ({model_label(model)})"
    return f"{text}, {COLUMN_LABEL[column]}" if column else text


def _amount(text: object) -> float:
    return float(Fraction(str(text).strip()))


@cache
def _load(name: str) -> pd.DataFrame:
    if name not in TABLES:
        raise SftmixError(f"unknown table of the reference study {name!r}; available: {', '.join(TABLES)}")
    text = resources.files("sftmix").joinpath(f"resources/paper/{name}.csv").read_text(encoding="utf-8")
    frame = pd.read_csv(io.StringIO(text), dtype={"fraction": str, "k": str})
    for col in ("fraction", "k"):
        if col in frame:
            frame[col] = frame[col].map(_amount)
    return frame


def paper_table(name: str) -> pd.DataFrame:
    """One of :data:`TABLES` as a frame; ``fraction`` and ``k`` are floats (``1/64`` -> 0.015625)."""
    return _load(name).copy()


def paper_column(suites: Iterable[str]) -> str | None:
    """The paper's benchmark column among the suites that measure an ability, or None: a
    published MT-Bench curve says nothing about IFEval."""
    return next((s for s in suites if s in COLUMN_LABEL), None)


def unmatched_note(panels: Iterable[tuple[str, Iterable[str]]], general: str | None) -> str:
    """A caption sentence for the general ability's panel when the paper measured its general
    ability with another benchmark."""
    out = []
    for ability, suites in panels:
        measured = sorted(set(suites))
        if ability == general and GENERAL_COLUMN not in measured:
            out.append(f"{ability} is measured here with {', '.join(measured)}, in the reference "
                       f"study with {COLUMN_LABEL[GENERAL_COLUMN]}")
    return (" No published curve is drawn where the benchmarks differ: " + "; ".join(out) + "."
            if out else "")


def paper_strategy(strategy: str, k: float | None = None, alone: dict[str, str] | None = None) -> str | None:
    """The paper's method name for an sftmix strategy (DMT only at the paper's k = 1/256).

    ``alone`` maps the study's abilities to the paper's benchmark columns, for the
    single-ability baselines (``maths-only`` -> ``math only`` when maths is measured by GSM8K).
    """
    if strategy == "dmt":
        return "dmt k=1/256" if k is not None and abs(k - 1 / 256) < 1e-12 else None
    if strategy.endswith("-only"):
        column = (alone or {}).get(strategy[: -len("-only")])
        return _meta()["benchmarks"][column]["alone"] if column else None
    return _meta()["strategies"].get(strategy)  # type: ignore[no-any-return]


def alone_columns(measures: Iterable[tuple[str, str]], general: str | None) -> dict[str, str]:
    """Each ability -> the paper column of its single-ability baseline: the benchmark that
    measures it, or the paper's general ability's for the study's general ability."""
    out: dict[str, str] = {}
    for ability, suite in measures:
        if suite in COLUMN_LABEL:
            out.setdefault(ability, suite)
    if general is not None:
        out.setdefault(general, GENERAL_COLUMN)
    return out
