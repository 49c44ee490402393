"""The map in docs/architecture.md holds: imports point down the layers, one key, one executor seam."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "sftmix"

# Each package and the packages it may not import (any module of it, at any depth or time).
FORBIDDEN = {
    "data": {"train", "eval", "study", "results", "suggest", "report", "lab"},
    "train": {"eval", "study", "results", "suggest", "report", "lab"},
    "eval": {"train", "study", "results", "suggest", "report", "lab"},
    "study": {"results", "suggest", "report", "lab"},
    "results": {"suggest", "report", "lab"},
    "suggest": {"report", "lab"},
    "report": {"lab"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _package_files(package: str) -> list[Path]:
    return sorted((PACKAGE / package).rglob("*.py"))


def test_imports_point_down_the_layers() -> None:
    wrong = []
    for package, forbidden in FORBIDDEN.items():
        for path in _package_files(package):
            for module in _imports(path):
                parts = module.split(".")
                if parts[0] == "sftmix" and len(parts) > 1 and parts[1] in forbidden:
                    wrong.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert not wrong, "\n".join(wrong)


ABILITIES = {"maths", "code", "general"}


def test_no_module_below_the_command_line_names_an_ability_in_code() -> None:
    # Abilities are the study's data: suggest, report and results speak of "the general
    # ability" and "the specialists", never of an ability by name -- no ability's name as a
    # value in code, nor compared with (docstrings aside; "general" as the name of the role
    # is a word of the code, an ability named so is not).
    wrong = []
    for package in ("suggest", "report", "results"):
        for path in _package_files(package):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                values = []
                if isinstance(node, ast.Compare):
                    values = [n.value for n in (node.left, *node.comparators) if isinstance(n, ast.Constant)]
                elif isinstance(node, ast.Constant) and node.value in ABILITIES - {"general"}:
                    values = [node.value]
                wrong += [f"{path.relative_to(PACKAGE)}:{node.lineno} {v!r}" for v in values if v in ABILITIES]
    assert not wrong, "\n".join(wrong)


def test_one_key_function_and_no_executor_told_apart_by_its_attributes() -> None:
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(PACKAGE).as_posix()
        assert "hasattr(executor" not in text and "hasattr(self.executor" not in text, rel
        if rel.startswith(("study/", "train/")):
            # Artefact keys come from sftmix.keys (through sftmix.study.kinds in a study).
            assert "config_hash(" not in text, f"{rel} hashes a key of its own"
    # The standalone evaluation keys its suites the same way.
    assert "artefact_key({" in (PACKAGE / "eval" / "runner.py").read_text(encoding="utf-8")
