"""The CLI's logging: the libraries' housekeeping stays out of a command's output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DRAW = "import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt; plt.figure().savefig({out!r})"


def _draw(tmp_path: Path, setup: str, name: str) -> str:
    """stderr of a first drawing on a machine (an empty matplotlib cache folder)."""
    cache = tmp_path / name
    cache.mkdir()
    code = setup + "; " + DRAW.format(out=str(tmp_path / f"{name}.png"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MPLCONFIGDIR": str(cache)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stderr


def test_matplotlib_s_font_cache_line_is_kept_out(tmp_path: Path) -> None:
    plain = _draw(tmp_path, "import logging; logging.basicConfig(level=logging.INFO)", "plain")
    assert "generated new fontManager" in plain  # what a command showed before
    ours = _draw(tmp_path, "from sftmix.logging_setup import configure; configure()", "ours")
    assert "fontManager" not in ours, ours
