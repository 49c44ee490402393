"""Registries that find their entries: no list of modules is kept, and a broken module is loud."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sftmix.errors import SftmixError
from sftmix.registry import Registry, submodules

PLUGIN = """
from {registry_module} import REGISTRY

@REGISTRY.register("{name}")
def entry():
    return "{name}"
"""


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "plugins_pkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "sub" / "__init__.py").write_text("")
    (tmp_path / "holder.py").write_text("from sftmix.registry import Registry\n"
                                        "REGISTRY = Registry('plugin', discover='plugins_pkg')\n")
    (root / "alpha.py").write_text(PLUGIN.format(registry_module="holder", name="alpha"))
    (root / "sub" / "beta.py").write_text(PLUGIN.format(registry_module="holder", name="beta"))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield root
    for name in [m for m in sys.modules if m == "holder" or m.startswith("plugins_pkg")]:
        del sys.modules[name]


def test_entries_are_found_in_every_module_of_the_package(package: Path) -> None:
    import holder  # type: ignore[import-not-found]

    assert holder.REGISTRY.names() == ["alpha", "beta"]
    assert holder.REGISTRY.get("beta")() == "beta"
    assert submodules("plugins_pkg") == ["plugins_pkg.alpha", "plugins_pkg.sub", "plugins_pkg.sub.beta"]
    with pytest.raises(SftmixError, match="unknown plugin 'gamma'; available: alpha, beta"):
        holder.REGISTRY.get("gamma")


def test_a_module_that_fails_to_import_is_not_skipped(package: Path) -> None:
    (package / "broken.py").write_text("import a_module_that_does_not_exist\n")
    import holder  # type: ignore[import-not-found]

    with pytest.raises(ModuleNotFoundError, match="a_module_that_does_not_exist"):
        holder.REGISTRY.names()


def test_every_suite_and_subcommand_is_found() -> None:
    from sftmix.cli import build_parser, command_modules
    from sftmix.eval.base import TASKS

    assert {"gsm8k", "humaneval", "ifeval", "math", "mbpp", "mtbench"} <= set(TASKS.names())
    assert command_modules()[:3] == ["sftmix.data.cli", "sftmix.eval.cli", "sftmix.study.cli"]
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {"train", "eval", "plan", "run", "status", "results", "report"} <= set(commands)
    assert Registry("x").names() == []
