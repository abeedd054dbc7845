"""The resilience scenario through the conformance runner on the process runtime (issue 18):
it passes against the reference network, and afterwards every node runs and answers, none
stopped or paused; a replay that ends with an error mid-fault leaves no fault behind either."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.conformance.runner import ConformanceOptions, run_conformance
from testbed.network import RunningNetwork
from testbed.report.model import CheckResult, Outcome
from testbed.runtime.state import RunFolder, new_run_id
from tests.conftest import REFERENCE_NETWORK, ROOT
from tests.integration.conftest import reference_network_up


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    """A reference network of this module's own: faults must not disturb the session's."""
    with reference_network_up(tmp_path_factory, "resilience") as running:
        yield running
        running.state = running.folder.load()  # nodes started again have new pids: stop those


def options_for(network: RunningNetwork, tmp_path: Path, scenario: Path) -> ConformanceOptions:
    """A run attached to the module's network, which it leaves running (as after `testbed up`)."""
    return ConformanceOptions(
        scenario_paths=[scenario],
        network_path=None,
        runtime="process",
        folder=RunFolder(tmp_path / "state", tmp_path / "reports", new_run_id("attached")),
        attach=network.folder,
    )


def process_state(pid: int | None) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def assert_whole(network: RunningNetwork) -> None:
    """Every node answers its health check and no node's process is stopped (SIGSTOP)."""
    state = network.folder.load()  # as the faults left it: nodes started again have new pids
    with network.client(timeout=5.0) as client:
        health = {n.plan.name: client.get(f"{n.plan.internal_url}/health").status_code for n in state.nodes}
    assert health == {n.plan.name: 200 for n in state.nodes}
    assert [n.plan.name for n in state.nodes if process_state(n.pid) == "T"] == []


def test_the_resilience_scenario_passes_and_leaves_no_fault(network: RunningNetwork, tmp_path: Path) -> None:
    results = run_conformance(options_for(network, tmp_path, ROOT / "scenarios" / "resilience.yaml"))
    checks = {c.id: c for _, c in results.all_checks()}
    not_passed = {k: c.message for k, c in checks.items() if c.outcome != Outcome.PASSED}
    assert results.exit_code == 0 and not not_passed, (results.error, not_passed)
    # Each fault step is a check that says what was done, and when.
    assert checks["consent-killed"].message.startswith("kill consent at ")
    assert "(the node is stopped)" in checks["consent-killed"].message
    assert checks["consent-paused"].requirements == ["STATION-RESIL-01"]
    assert checks["faults-cleared"].message.startswith("clear at ")
    assert "start hdab-trust at " in checks["faults-cleared"].message
    covered = {r.id: r.outcome for r in results.requirements}
    for requirement in ("STATION-RESIL-01", "TRUST-RESIL-01", "RESIL-DURABLE-01", "RESIL-DURABLE-02"):
        assert covered[requirement] == Outcome.PASSED
    assert_whole(network)


def test_faults_in_force_are_undone_when_a_replay_ends_with_an_error(network: RunningNetwork, tmp_path: Path) -> None:
    scenario = tmp_path / "mid-fault.yaml"
    scenario.write_text(
        f"""\
name: mid-fault
network: {REFERENCE_NETWORK}
actors: {{requester: gp}}
steps:
  - {{id: stop, title: stop, requirements: [STATION-RESIL-01], fault: {{node: consent, operation: stop}}}}
  - {{id: pause, title: pause, requirements: [STATION-RESIL-01], fault: {{node: requester.station, operation: pause}}}}
  - {{id: never, title: never, requirements: [STATION-RESIL-01], fault: {{node: consent, operation: start}}}}
""",
        encoding="utf-8",
    )
    options = options_for(network, tmp_path, scenario)
    seen: list[str] = []

    def fail_after_pause(_scenario: str, check: CheckResult) -> None:
        seen.append(check.id)
        if check.id == "pause":
            raise RuntimeError("the harness broke mid-run")

    options.on_check = fail_after_pause
    with pytest.raises(RuntimeError, match="broke mid-run"):
        run_conformance(options)
    assert seen == ["stop", "pause"]  # the consent node was down and the GP's station paused
    assert_whole(network)
