"""An interrupted run keeps its results: SIGINT or SIGTERM mid-replay (and a second Ctrl-C
during teardown) still writes every report format from the checks finished so far, verdict
"interrupted", with the exit code the process really ends with, and leaves no node running."""

from __future__ import annotations

import json
import signal
import time
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import REFERENCE_NODES
from tests.integration.test_cli import node_processes, only_run_folder, start_slow_run, wait_until_gone

pytestmark = pytest.mark.integration
FORMATS = {"results.json", "junit.xml", "report.html", "earl.jsonld", "summary.md"}


@pytest.mark.parametrize(
    "signals",
    [[signal.SIGINT], [signal.SIGTERM], [signal.SIGINT, signal.SIGINT]],
    ids=["sigint", "sigterm", "second-ctrl-c"],
)
def test_an_interrupted_run_writes_every_report_from_the_finished_checks(tmp_path, signals):
    process, seen = start_slow_run(tmp_path)
    assert process.stdout is not None
    assert len(node_processes(tmp_path)) == REFERENCE_NODES, "".join(seen)
    for sig in signals:
        process.send_signal(sig)
        time.sleep(0.3)  # the second one lands while the nodes are being stopped
    process.wait(timeout=60)
    output = "".join(seen) + process.stdout.read()
    assert process.returncode == 130, output
    assert "Traceback" not in output
    assert wait_until_gone(tmp_path) == []
    folder = only_run_folder(tmp_path)
    assert {p.name for p in folder.iterdir()} >= FORMATS
    results = json.loads((folder / "results.json").read_text())
    assert results["verdict"] == "interrupted" and results["exit_code"] == 130
    assert "interrupted" in results["error"]
    [scenario] = results["scenarios"]
    assert [(c["id"], c["outcome"]) for c in scenario["checks"]] == [("metadata", "passed")]
    cases = ET.parse(folder / "junit.xml").getroot().findall(".//testcase")
    assert any(case.get("name", "").startswith("metadata") for case in cases)
    assert any(case.find("error") is not None for case in cases)  # the run reached no verdict
    html = (folder / "report.html").read_text()
    assert "Interrupted: no verdict" in html and "metadata" in html
    assert "interrupted" in (folder / "summary.md").read_text().lower()
    assert "interrupted" in (folder / "earl.jsonld").read_text()
    assert list((tmp_path / "state" / "runs").iterdir()) == []
