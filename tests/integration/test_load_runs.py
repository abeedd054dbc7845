"""Load runs end to end: Locust in its own processes against the real reference network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.integration.test_cli import node_processes, only_run_folder, roots, run, wait_until_gone

pytestmark = pytest.mark.integration
SCENARIO = str(ROOT / "scenarios" / "bgz-consent.yaml")


def locust_processes(folder: Path) -> list[Path]:
    """Locust processes whose plan points into this run's report folder."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if str(folder).encode() in environ.read_bytes():
                found.append(environ)
        except OSError:
            continue
    return found


def test_distributed_run_with_two_workers_reports_figures_and_charts(tmp_path):
    done = run(tmp_path, "load", SCENARIO, "--users", "4", "--spawn-rate", "4", "--duration", "6", "--workers", "2",
               *roots(tmp_path), timeout=240)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    folder = only_run_folder(tmp_path)
    perf = json.loads((folder / "load" / "perf.json").read_text())
    assert perf["workers"] == 2 and perf["overall"]["requests"] > 0 and perf["overall"]["failures"] == 0
    assert {"read-patient", "requester-gets-token", "read-without-consent"} <= {s["name"] for s in perf["steps"]}
    assert perf["series"] and any(samples for samples in perf["nodes"].values())
    # A master and two workers ran, each with its own log; the master wrote Locust's CSVs.
    assert sorted(p.name for p in (folder / "load").glob("locust-*.log")) == [
        "locust-0.log",
        "locust-1.log",
        "locust-2.log",
    ]
    assert {"locust_stats.csv", "locust_stats_history.csv", "locust_failures.csv"} <= set(perf["files"])
    results = json.loads((folder / "results.json").read_text())
    assert results["kind"] == "load" and results["exit_code"] == 0
    assert results["performance"]["thresholds"] and all(t["passed"] for t in results["performance"]["thresholds"])
    html = (folder / "report.html").read_text()
    assert "Latency percentiles" in html and "CPU per node" in html and "Plotly.newPlot" in html
    assert "users" in done.stdout and "req/s" in done.stdout  # live progress was shown
    assert wait_until_gone(tmp_path) == [] and locust_processes(folder) == []


def test_an_impossible_threshold_fails_the_run_and_is_named(tmp_path):
    done = run(tmp_path, "load", SCENARIO, "--users", "2", "--duration", "4", "--threshold", "read-patient:p(95)<1",
               *roots(tmp_path), timeout=240)  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "read-patient: p(95)<1" in done.stdout and "breached by" in done.stdout
    results = json.loads((only_run_folder(tmp_path) / "results.json").read_text())
    failed = [c for s in results["scenarios"] for c in s["checks"] if c["outcome"] == "failed"]
    assert [c["title"] for c in failed] == ["read-patient: p(95)<1"]
    assert node_processes(tmp_path) == [] or wait_until_gone(tmp_path) == []


def test_a_wrong_threshold_is_refused_before_anything_starts(tmp_path):
    done = run(tmp_path, "load", SCENARIO, "--threshold", "p(97)<100", *roots(tmp_path))
    assert done.returncode == 2
    assert "Locust reports the percentiles" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "reports").exists()
