"""Seeded, unbounded generators of lab data with held-out test splits.

Each ability's module has ``generate(n, seed, split="train"|"test", difficulty=...)``
yielding ordinary source records (``n=None``: without end) and ``problems(...)``
yielding the same items with their content key and template family:

* :mod:`~sftmix.lab.generators.maths` -- word problems, GSM8K records for both splits;
* :mod:`~sftmix.lab.generators.code` -- Alpaca records to train, HumanEval records to test;
* :mod:`~sftmix.lab.generators.general` -- ShareGPT conversations to train, IFEval
  prompts to test.

:func:`write_lab_corpus` writes all six files as one artefact directory and
:func:`text_corpus` yields the texts the lab tokenizer is trained on.
"""

from sftmix.lab.generators.code import CodeDifficulty
from sftmix.lab.generators.corpus import (
    DEFAULT_SIZES,
    GENERATORS,
    LabGenerator,
    text_corpus,
    write_lab_corpus,
)
from sftmix.lab.generators.general import GeneralDifficulty
from sftmix.lab.generators.maths import MathsDifficulty

__all__ = [
    "DEFAULT_SIZES",
    "GENERATORS",
    "CodeDifficulty",
    "GeneralDifficulty",
    "LabGenerator",
    "MathsDifficulty",
    "text_corpus",
    "write_lab_corpus",
]
