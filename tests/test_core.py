"""The shared core: config errors, registries, hashing, atomic artefacts."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sftmix.artifacts import building, clean_partials, is_complete
from sftmix.config import StrictModel, load_config
from sftmix.errors import ConfigError, SftmixError
from sftmix.faults import POINTS, PUBLISH_POINTS, crashpoint
from sftmix.hashing import config_hash
from sftmix.registry import Registry


class Inner(StrictModel):
    fraction: float
    name: str = "x"


class Outer(StrictModel):
    seed: int = 0
    sources: list[Inner]


def test_config_error_names_file_line_and_field(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("seed: 1\nsources:\n  - fraction: 0.5\n  - fraction: lots\n")
    with pytest.raises(ConfigError) as info:
        load_config(cfg, Outer)
    msg = str(info.value)
    assert str(cfg) in msg
    assert "line 4" in msg
    assert "sources[1].fraction" in msg
    assert "'lots'" in msg


def test_config_unknown_field_and_bad_yaml(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("sources: []\nsede: 3\n")
    with pytest.raises(ConfigError, match=r"line 2, field 'sede': unknown field"):
        load_config(cfg, Outer)
    cfg.write_text("sources: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(cfg, Outer)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml", Outer)


def test_registry_lists_available_names() -> None:
    reg: Registry[int] = Registry("reader")
    reg.add("alpaca", 1)
    reg.add("gsm8k", 2)
    assert reg.get("gsm8k") == 2
    with pytest.raises(SftmixError, match="unknown reader 'sharegtp'; available: alpaca, gsm8k"):
        reg.get("sharegtp")


def test_config_hash_is_order_and_int_float_insensitive() -> None:
    assert config_hash({"a": 1, "b": [1.0, 2]}) == config_hash({"b": [1, 2.0], "a": 1.0})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_building_publishes_only_on_success(tmp_path: Path) -> None:
    final = tmp_path / "art"
    with pytest.raises(RuntimeError), building(final) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("boom")
    assert not final.exists()
    with building(final, {"kind": "test"}) as tmp:
        (tmp / "whole.txt").write_text("whole")
    assert is_complete(final)
    assert (final / "whole.txt").read_text() == "whole"


def test_building_killed_leaves_nothing_that_looks_complete(tmp_path: Path) -> None:
    final = tmp_path / "art"
    script = textwrap.dedent(
        f"""
        import os, signal, time
        from sftmix.artifacts import building
        with building({str(final)!r}) as tmp:
            (tmp / "x").write_text("x")
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], check=False)
    assert proc.returncode == -signal.SIGKILL
    assert not is_complete(final)
    leftovers = clean_partials(tmp_path)
    assert len(leftovers) == 1 and not os.listdir(tmp_path)


def test_cli_help_and_error_exit_code() -> None:
    out = subprocess.run([sys.executable, "-m", "sftmix", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "sftmix" in out.stdout


def test_failpoints_come_from_one_table_shared_by_code_and_docs() -> None:
    root = Path(__file__).resolve().parents[1]
    documented = re.findall(r"^\| `([a-z]+:[a-z]+)` \|", (root / "docs/studies.md").read_text(), re.M)
    assert documented == list(POINTS)
    used = set()
    for path in (root / "src/sftmix").rglob("*.py"):
        used.update(re.findall(r'crashpoint\("([^"]+)"\)', path.read_text(encoding="utf-8")))
    assert used | set(PUBLISH_POINTS.values()) == set(POINTS)
    with pytest.raises(ValueError, match="unknown failpoint 'publish:modle'"):
        crashpoint("publish:modle")


@pytest.mark.parametrize("kind", ["tiny-llama", "gguf-import"])
def test_publish_model_failpoint_fires_for_base_models(tmp_path: Path, kind: str) -> None:
    final = tmp_path / "base"
    script = (f"from sftmix.artifacts import building\n"
              f"with building({str(final)!r}, {{'kind': {kind!r}}}) as tmp:\n"
              f"    (tmp / 'config.json').write_text('{{}}')\n")
    env = dict(os.environ, SFTMIX_CRASH_AT="publish:model")
    env.pop("SFTMIX_EXECUTOR_PID", None)
    proc = subprocess.run([sys.executable, "-c", script], env=env, check=False)
    assert proc.returncode == -signal.SIGKILL
    assert not is_complete(final)
