"""Link faults as scenario steps on a real reference network (process runtime), started with
`testbed up` and driven with the `testbed` command: the shipped scenario
scenarios/resilience-links.yaml passes, and afterwards the run's link proxy reports every link
open; a fault on the harness's own link makes the harness's requests fail with a bounded error
that names it; a replay that ends mid-fault leaves no link faulted; `testbed fault link` and
`testbed fault links` set, show and clear link faults, and refuse what they cannot do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed.conformance.runner import ConformanceOptions, run_conformance
from testbed.faults.links import LinkFaults
from testbed.report.model import CheckResult, Outcome
from testbed.runtime.state import RunFolder, current_run_id, new_run_id
from tests.conftest import REFERENCE_NETWORK, ROOT

pytestmark = pytest.mark.integration
TESTBED = [sys.executable, "-m", "testbed.cli"]
STATION, CONSENT = "hospital-station", "consent"


def run(roots: list[str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TESTBED, *args, *roots],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """A reference network `testbed up` started, stopped with `testbed down` at the end."""
    base = tmp_path_factory.mktemp("links")
    flags = ["--state", str(base / "state"), "--reports", str(base / "reports")]
    started = run(flags, "up")
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield flags
    finally:
        stopped = run(flags, "down")
        assert stopped.returncode == 0, stopped.stderr


def folder_of(roots: list[str]) -> RunFolder:
    state, reports = Path(roots[1]), Path(roots[3])
    return RunFolder(state, reports, current_run_id(state))


def faulted_links(roots: list[str]) -> list[dict[str, Any]]:
    """The links the run's proxy reports not open, asked over its control listener."""
    links: list[dict[str, Any]] = LinkFaults(folder_of(roots).load()).show()["links"]
    return links


def results_of(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    line = next(line for line in done.stdout.splitlines() if line.startswith("results.json"))
    results: dict[str, Any] = json.loads(Path(line.split()[-1]).read_text(encoding="utf-8"))
    return results


def checks_of(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["id"]: check for scenario in results["scenarios"] for check in scenario["checks"]}


def test_the_link_scenario_passes_and_leaves_every_link_open(roots: list[str]) -> None:
    done = run(roots, "conformance", "scenarios/resilience-links.yaml", "--attach")

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    checks = checks_of(results_of(done))
    assert {k: c["message"] for k, c in checks.items() if c["outcome"] != "passed"} == {}
    # Each link fault is a check that says what was done to which link, and when.
    assert checks["partition"]["message"].startswith(f"cut link {STATION} <-> {CONSENT} at ")
    assert checks["slower-link"]["message"].startswith(f"delay link {STATION} -> {CONSENT} by 6000 ms at ")
    # The station gave up within its own limit (5 s), well before the harness's (15 s).
    assert 4_500 < checks["read-refused-too-slow"]["duration_ms"] < 10_000
    # The read over the harness's slowed link went through the proxy: at least one delay each way.
    assert checks["read-over-slow-harness-link"]["evidence"]["response"]["elapsed_ms"] >= 600
    assert faulted_links(roots) == []
    shown = run(roots, "fault", "links", "show")
    assert shown.returncode == 0 and "every link is open" in shown.stdout


def write_scenario(tmp_path: Path, steps: str) -> Path:
    path = tmp_path / "harness-link.yaml"
    path.write_text(f"name: harness-link\nnetwork: {REFERENCE_NETWORK}\nactors: {{holder: hospital}}\nsteps:\n{steps}")
    return path


HARNESS_CUT = """\
  - {id: cut, title: cut, requirements: [STATION-RESIL-01], fault: {link: [harness, holder.station], operation: cut}}
  - id: station-health
    title: the station's health, across the cut link
    requirements: [STATION-RESIL-01]
    request: {node: holder.station, api: internal, path: /health}
    expect: {status: 200}
  - id: consent-health
    title: the consent service's health, across a whole link through the proxy
    requirements: [STATION-RESIL-01]
    request: {node: consent, api: internal, path: /health}
    expect: {status: 200}
"""


def test_a_cut_harness_link_fails_its_requests_with_a_bounded_error_naming_it(roots: list[str], tmp_path: Path) -> None:
    done = run(roots, "conformance", str(write_scenario(tmp_path, HARNESS_CUT)), "--attach")

    checks = checks_of(results_of(done))
    failed = checks["station-health"]
    assert done.returncode == 2  # the harness could not reach the node: an error, not a failed check
    assert failed["outcome"] == "error" and failed["duration_ms"] < 5_000
    assert f"{STATION} unreachable at " in failed["message"]
    assert f"sent through the run's link proxy; this run has faulted: link harness -> {STATION}" in failed["message"]
    assert checks["consent-health"]["outcome"] == "passed"
    assert faulted_links(roots) == []  # the scenario's end healed the link it left cut


def test_a_replay_that_ends_mid_fault_leaves_no_link_faulted(roots: list[str], tmp_path: Path) -> None:
    steps = """\
  - {id: cut, title: cut, requirements: [STATION-RESIL-01], fault: {link: [holder.station, consent], operation: cut}}
  - {id: slow, title: s, requirements: [STATION-RESIL-01], fault: {link: [harness, consent], operation: delay, ms: 50}}
  - {id: never, title: n, requirements: [STATION-RESIL-01], fault: {link: [holder.station, consent], operation: heal}}
"""
    options = ConformanceOptions(
        scenario_paths=[write_scenario(tmp_path, steps)],
        network_path=None,
        runtime="process",
        folder=RunFolder(tmp_path / "state", tmp_path / "reports", new_run_id("attached")),
        attach=folder_of(roots),
    )
    seen: list[str] = []

    def break_after_slow(_scenario: str, check: CheckResult) -> None:
        seen.append(check.id)
        assert check.outcome == Outcome.PASSED, check.message
        if check.id == "slow":
            assert {(link["from"], link["to"]) for link in faulted_links(roots)} == {
                (STATION, CONSENT),
                (CONSENT, STATION),
                ("_harness", CONSENT),
            }
            raise RuntimeError("the harness broke mid-run")

    options.on_check = break_after_slow
    with pytest.raises(RuntimeError, match="broke mid-run"):
        run_conformance(options)
    assert seen == ["cut", "slow"]
    assert faulted_links(roots) == []


def test_the_command_line_sets_shows_and_clears_link_faults_and_refuses_what_it_cannot(roots: list[str]) -> None:
    cut = run(roots, "fault", "link", STATION, CONSENT, "cut", "--one-way")
    slow = run(roots, "fault", "link", "harness", CONSENT, "delay", "--ms", "40")
    shown = run(roots, "fault", "links", "show")
    refused = [
        run(roots, "fault", "link", STATION, "nowhere", "cut"),
        run(roots, "fault", "link", STATION, CONSENT, "delay"),
        run(roots, "fault", "link", STATION, CONSENT, "explode"),
        run(roots, "fault", "links", "purge"),
    ]
    cleared = run(roots, "fault", "links", "clear")
    paused = run(roots, "fault", "gp-station", "pause")  # a node's fault, written as it always was
    resumed = run(roots, "fault", "node", "gp-station", "resume")

    assert cut.returncode == 0 and f"cut link {STATION} -> {CONSENT} at " in cut.stdout, cut.stderr
    assert slow.returncode == 0 and "delay link harness -> consent by 40 ms" in slow.stdout, slow.stderr
    assert f"{STATION} -> {CONSENT}: cut" in shown.stdout and "harness -> consent: delayed 40 ms" in shown.stdout
    assert [done.returncode for done in refused] == [2, 2, 2, 2]
    messages = [" ".join(done.stderr.split()) for done in refused]
    assert "no node 'nowhere' in run" in messages[0] and "'delay' needs --ms" in messages[1]
    assert "unknown link operation 'explode'" in messages[2] and "'purge' is neither show nor clear" in messages[3]
    assert not any("Traceback" in done.stderr for done in refused)
    assert cleared.returncode == 0 and "2 link direction(s) were faulted" in cleared.stdout
    assert faulted_links(roots) == []
    assert paused.returncode == 0 and "gp-station: pause done" in paused.stdout, paused.stderr
    assert resumed.returncode == 0 and "gp-station: resume done" in resumed.stdout, resumed.stderr
