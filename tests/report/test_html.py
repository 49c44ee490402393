"""The HTML report in a real browser: headless Chromium renders every figure, offline, without errors.

Chromium is Debian's ``chromium`` package; the project's test set-up installs it.
A probe script, added to a copy of the page, reports each image's decoded size
and pixel variance (drawn on a canvas) and any error; a screenshot of the page
itself must not be blank, and Chromium's log must show no console message.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sftmix.report.build import Report

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]

PROBE = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message || e.type)), true);
const original = console.error;
console.error = (...a) => { window.__errors.push(a.join(' ')); original(...a); };
window.addEventListener('load', () => {
  const images = [...document.images].map(im => {
    const c = document.createElement('canvas');
    c.width = im.naturalWidth; c.height = im.naturalHeight;
    let variance = -1;
    try {
      const g = c.getContext('2d'); g.drawImage(im, 0, 0);
      const d = g.getImageData(0, 0, c.width, c.height).data;
      let n = 0, s = 0, s2 = 0;
      for (let i = 0; i < d.length; i += 4) { const y = (d[i] + d[i+1] + d[i+2]) / 3; n++; s += y; s2 += y*y; }
      variance = s2 / n - (s / n) ** 2;
    } catch (e) { window.__errors.push('canvas: ' + e); }
    return {alt: im.alt, complete: im.complete, width: im.naturalWidth, height: im.naturalHeight, variance};
  });
  const pre = document.createElement('pre'); pre.id = 'probe';
  pre.textContent = JSON.stringify({images, errors: window.__errors});
  document.body.appendChild(pre);
});
</script>"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("headless Chromium is required to check the HTML report: install Debian's 'chromium' "
                "package (apt-get install -y chromium)")


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="sftmix-chromium-") as profile:
        return subprocess.run([_chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=120, check=False)


def _console(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line]


@pytest.mark.slow
def test_chromium_renders_every_figure(full_report: tuple[Report, Path, Path], tmp_path: Path) -> None:
    report, html, _ = full_report
    page = html.read_text()
    probed = tmp_path / "probe.html"
    probed.write_text(page.replace("<head>", "<head>" + PROBE, 1))
    done = _run(["--virtual-time-budget=10000", "--dump-dom", probed.as_uri()])
    assert done.returncode == 0, done.stderr[-2000:]
    match = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert match, "the probe did not run: " + done.stdout[-500:]
    result = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert result["errors"] == []
    produced = [f for f in report.figures if f.produced]
    assert [im["alt"] for im in result["images"]] == [f.title for f in produced]
    for im, fig in zip(result["images"], produced, strict=True):
        png = Image.open(io.BytesIO(fig.png or b""))
        assert im["complete"] and (im["width"], im["height"]) == png.size, fig.key
        assert im["variance"] > 100, f"{fig.key} decoded blank"


@pytest.mark.slow
def test_screenshot_is_not_blank_and_console_is_clean(full_report: tuple[Report, Path, Path], tmp_path: Path) -> None:
    _, html, _ = full_report
    shot = tmp_path / "page.png"
    done = _run(["--hide-scrollbars", "--window-size=1280,3000", "--virtual-time-budget=10000",
                 f"--screenshot={shot}", html.as_uri()])
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    assert _console(done.stderr) == []
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (3000, 1280)
    # The upper page holds the first figures: plenty of non-white, varied pixels.
    assert pixels.std() > 20
    assert (pixels < 200).mean() > 0.02


def test_page_needs_nothing_from_outside(full_report: tuple[Report, Path, Path]) -> None:
    page = full_report[1].read_text()
    refs = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert refs and all(r.startswith(("data:image/png;base64,", "#")) for r in refs)
    assert "<script" not in page and "@import" not in page and "url(" not in page
