"""The load report in a real browser: headless Chromium (Debian's `chromium-headless-shell` or
`chromium`; Playwright's own browser download cannot be had here) opens report.html offline,
runs the embedded plotly.js, and the charts are there in the page and in a screenshot."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from testbed.report.html import write_html
from tests.unit.test_report_load import load_results

pytestmark = pytest.mark.integration
BROWSER = shutil.which("chromium-headless-shell") or shutil.which("chromium")
needs_browser = pytest.mark.skipif(
    BROWSER is None, reason="no headless Chromium: apt-get install chromium-headless-shell"
)
CHART_IDS = ("chart-latency", "chart-step-latency", "chart-throughput", "chart-cpu", "chart-memory")


def _browser(*args: str) -> subprocess.CompletedProcess[str]:
    assert BROWSER is not None
    # No network for the page: --no-proxy-server plus a proxy that does not exist catch any fetch.
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=5000",
             "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]  # fmt: skip
    return subprocess.run([BROWSER, *flags, *args], capture_output=True, text=True, timeout=120, check=False)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _drawn(dom: str, chart_id: str) -> bool:
    """Whether plotly.js rendered its SVG into the chart's element."""
    start = dom.index(f'id="{chart_id}"')
    return "main-svg" in dom[start : start + 20_000]


@needs_browser
def test_the_load_reports_charts_are_drawn_offline(tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    write_html(load_results(), report)

    dom = _browser("--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    for chart_id in CHART_IDS:
        assert _drawn(dom.stdout, chart_id), f"{chart_id} was not drawn"
    assert "seconds since the load began" in dom.stdout and "ramp-up" in dom.stdout  # axis title, stage mark

    shot = tmp_path / "report.png"
    done = _browser("--window-size=1280,3000", f"--screenshot={shot}", report.as_uri())
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    assert _png_size(shot) == (1280, 3000) and shot.stat().st_size > 100_000  # a page with charts, not blank


@needs_browser
def test_without_the_embedded_library_no_chart_is_drawn(tmp_path: Path) -> None:
    """The check above can fail: the same page without plotly.js draws nothing."""
    report = tmp_path / "report.html"
    write_html(load_results(), report)
    html = report.read_text(encoding="utf-8")
    start = html.index("<script>/**\n* plotly.js")
    report.write_text(html[:start] + html[html.index("</script>", start) + len("</script>") :], encoding="utf-8")
    dom = _browser("--dump-dom", report.as_uri())
    assert not any(_drawn(dom.stdout, chart_id) for chart_id in CHART_IDS)
