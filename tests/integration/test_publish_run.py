"""`testbed publish` end to end: a real profile run on the reference network, frozen into a
signed bundle, published as a site whose statement links into the run's own evidence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration
TESTBED = [sys.executable, "-m", "testbed.cli"]


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([*TESTBED, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


class Hrefs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hrefs += [value for name, value in attrs if name in ("href", "src") and value]


def test_a_real_vault_run_is_published_with_links_into_its_evidence(tmp_path):
    reports = tmp_path / "reports"
    done = cli("conformance", "--profile", "vault", "--state", str(tmp_path / "state"), "--reports", str(reports))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    [run] = list(reports.iterdir())
    bundled = cli("bundle", str(run), "--key", str(tmp_path / "publisher.pem"))
    assert bundled.returncode == 0, bundled.stderr
    bundle = reports / f"{run.name}.bundle.tar.gz"
    site = tmp_path / "site"
    published = cli("publish", str(bundle), "--public-key", str(tmp_path / "publisher.pub.pem"), "--out", str(site))
    assert published.returncode == 0, published.stderr
    results = json.loads((run / "results.json").read_text())
    [entry] = json.loads((site / "site.json").read_text())["implementations"]
    assert entry["role"] == "vault" and entry["runs"][0]["verdict"] == "conforms"
    assert entry["runs"][0]["suite_version"] == (results.get("suite_version") or "unknown")
    page = (site / entry["page"]).read_text()
    for requirement in results["requirements"]:
        if requirement["role"] == "vault":
            assert requirement["id"] in page
    parser = Hrefs()
    parser.feed(page)
    evidence = [h for h in parser.hrefs if "report.html#check-" in h]
    folder = (site / entry["page"]).parent
    assert evidence and all((folder / urlsplit(h).path).resolve().is_file() for h in evidence)
    assert (site / entry["runs"][0]["certificate"]).is_file()
