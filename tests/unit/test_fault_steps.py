"""Fault steps (issue 18): their shape in the scenario language, the checks that refuse them
before anything starts, how the engine hands them on without knowing any runtime, and how a
run's node faults are remembered and undone (with the runtime stood in for)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.errors import ConfigError, NodeStartError
from testbed.faults.nodes import FaultsNotCleared, NodeFaults, faults_undone, refuse_faults_on
from testbed.load.runner import LoadOptions, run_load
from testbed.report.model import Outcome
from testbed.runtime.state import RunFolder, new_run_id
from testbed.scenario.engine import Engine
from testbed.scenario.loader import check_scenario, load_scenario, unfaultable
from testbed.scenario.models import Fault
from testbed.topology import load_network
from tests.conftest import REFERENCE_NETWORK, ROOT, checked_scenario

HEADER = f"""\
name: sample
network: {REFERENCE_NETWORK}
actors:
  requester: gp
  consent: mitz
steps:
"""


def fault_step(fault: str, extra: str = "", step_id: str = "fault") -> str:
    return f"""\
  - id: {step_id}
    title: a fault
    requirements: [STATION-RESIL-01]
    fault: {fault}
{extra}"""


def checked(write_yaml, steps: str, catalogue, network, header: str = HEADER):
    return checked_scenario(write_yaml(header + steps), catalogue, network)


def test_fault_steps_load_with_a_node_or_an_actor_role_and_clear(write_yaml, catalogue, network):
    steps = (
        fault_step("{node: consent.consent, operation: kill}", step_id="kill")
        + fault_step("{node: gp-station, operation: pause}", step_id="pause")
        + fault_step("{clear: true}", step_id="clear")
    )
    loaded = checked(write_yaml, steps, catalogue, network)
    kinds = [step.fault for step in loaded.scenario.steps]
    assert kinds[0] == Fault(node="consent.consent", operation="kill")
    assert kinds[1] == Fault(node="gp-station", operation="pause")
    assert kinds[2] is not None and kinds[2].clear


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (fault_step("{node: nowhere, operation: stop}"), r":10: step 'fault': node 'nowhere' is neither a node"),
        (fault_step("{node: requester.consent, operation: stop}"), r"'gp' \(actor 'requester'\) has no consent node"),
        (fault_step("{node: consent, operation: freeze}"), r"operation.*'stop', 'start', 'kill', 'pause'"),
        (fault_step("{node: consent}"), "a fault names a 'node' and an 'operation'"),
        (fault_step("{clear: false}"), "a fault names a 'node' and an 'operation'"),
        (fault_step("{clear: true, node: consent}"), "give no node or operation with it"),
        (fault_step("{node: consent, operation: stop}", "    expect: {status: 200}\n"), "give it no 'expect'"),
        (fault_step("{node: consent, operation: stop}", "    capture: {x: status}\n"), "give it no 'expect'"),
        (
            fault_step("{node: consent, operation: stop}", "    request: {node: consent, path: /}\n"),
            "exactly one of 'request' and 'action', or is a 'fault' step",
        ),
    ],
)
def test_fault_steps_that_cannot_be_done_are_refused_before_start(write_yaml, catalogue, network, steps, message):
    with pytest.raises(ConfigError, match=message):
        checked(write_yaml, steps, catalogue, network)


def test_a_scenario_faulting_a_node_reached_by_url_is_not_run(tmp_path: Path, write_yaml, catalogue):
    """The harness does not run such a node: it cannot stop, kill or pause it. The file is
    valid, but the scenario is not run on that network (its checks are skipped, saying why)."""
    data = yaml.safe_load(REFERENCE_NETWORK.read_text(encoding="utf-8"))
    consent = next(n for org in data["organisations"] for n in org["nodes"] if n["name"] == "consent")
    consent["implementation"] = {"url": "https://127.0.0.1:9443"}
    network_file = tmp_path / "network.yaml"
    network_file.write_text(yaml.safe_dump(data), encoding="utf-8")
    header = HEADER.replace(str(REFERENCE_NETWORK), str(network_file))
    loaded = load_scenario(write_yaml(header + fault_step("{node: consent.consent, operation: pause}")))
    network = load_network(network_file).network
    check_scenario(loaded, network, catalogue)  # no error: the file is right
    reason = unfaultable(loaded.scenario, network)
    assert reason == (
        "not run: step 'fault' would pause node 'consent', which is reached by URL (https://127.0.0.1:9443); "
        "the harness faults only nodes the run starts"
    )
    assert unfaultable(loaded.scenario, load_network(REFERENCE_NETWORK).network) is None


def test_a_load_run_refuses_fault_steps_before_anything_starts(tmp_path: Path, write_yaml):
    scenario = write_yaml(HEADER + fault_step("{node: consent, operation: stop}"))
    folder = RunFolder(tmp_path / "state", tmp_path / "reports", new_run_id("load"))
    options = LoadOptions(scenario_path=scenario, network_path=None, runtime="process", folder=folder)
    with pytest.raises(ConfigError, match=r":10: step 'fault' is a fault step, and a load run does not do faults"):
        run_load(options)
    assert not (tmp_path / "state").exists()  # nothing was started


def test_a_runtime_without_faults_is_refused_scenarios_with_fault_steps(write_yaml):
    with_fault = load_scenario(write_yaml(HEADER + fault_step("{node: consent, operation: stop}")))
    refuse_faults_on("process", [with_fault])
    refuse_faults_on("docker", [with_fault])
    refuse_faults_on("swarm", [load_scenario(ROOT / "scenarios" / "bgz-consent.yaml")])  # no fault steps: fine
    with pytest.raises(ConfigError, match="the swarm runtime cannot do faults"):
        refuse_faults_on("swarm", [with_fault])


def test_the_shipped_resilience_scenario_has_every_node_operation_and_a_clear(catalogue, network):
    loaded = load_scenario(ROOT / "scenarios" / "resilience.yaml")
    check_scenario(loaded, network, catalogue)
    faults = [step.fault for step in loaded.scenario.steps if step.fault is not None]
    assert {f.operation for f in faults if f.operation} == {"stop", "start", "kill", "pause", "resume", "restart"}
    assert any(f.clear for f in faults)


# --- the engine hands fault steps on ----------------------------------------------------------


def engine_for(network, faults=None) -> Engine:
    context = {"orgs": {"gp": {"id": "gp"}, "mitz": {"id": "mitz"}}}
    return Engine(network, context, transport=None, log_tail=lambda node: [f"tail of {node}"], faults=faults)  # type: ignore[arg-type]


def test_the_engine_resolves_the_node_and_passes_the_check_with_what_was_done(write_yaml, network):
    done: list[Fault] = []

    def applier(fault: Fault) -> str:
        done.append(fault)
        return f"{fault.operation} {fault.node} at 12:00:00 UTC"

    steps = fault_step("{node: consent.consent, operation: kill}") + fault_step("{clear: true}", step_id="clear")
    result = engine_for(network, applier).run(load_scenario(write_yaml(HEADER + steps)))
    assert done == [Fault(node="consent", operation="kill"), Fault(clear=True)]
    kill = result.checks[0]
    assert (kill.outcome, kill.message, kill.requirements) == (
        Outcome.PASSED,
        "kill consent at 12:00:00 UTC",
        ["STATION-RESIL-01"],
    )
    assert kill.evidence.node == "consent"


def test_a_fault_the_harness_cannot_do_is_an_error_with_the_nodes_log(write_yaml, network):
    def failing(fault: Fault) -> str:
        raise NodeStartError(f"{fault.node} did not come up")

    scenario = load_scenario(write_yaml(HEADER + fault_step("{node: consent, operation: start}")))
    check = engine_for(network, failing).run(scenario).checks[0]
    assert check.outcome == Outcome.ERROR
    assert check.message == "the fault could not be done: consent did not come up"
    assert check.evidence.node_log_tail == ["tail of consent"]
    check = engine_for(network, None).run(scenario).checks[0]
    assert (check.outcome, check.message) == (
        Outcome.ERROR,
        "this replay cannot do faults (only a conformance run does)",
    )


# --- a run's node faults, with the runtime stood in for ----------------------------------------


@dataclass
class FakeFolder:
    saved: int = 0

    def save(self, _state: Any) -> None:
        self.saved += 1


@dataclass
class FakeRunning:
    folder: FakeFolder = field(default_factory=FakeFolder)
    state: Any = None


class Recorded(NodeFaults):
    """NodeFaults whose runtime only records what it is asked (and fails where told)."""

    def __init__(self, failing: set[str] | None = None):
        super().__init__(FakeRunning())  # type: ignore[arg-type]
        self.calls: list[tuple[str, str]] = []
        self.failing = failing or set()

    def _operate(self, node: str, operation: str) -> str:  # type: ignore[override]
        if node in self.failing and operation in ("start", "resume"):
            raise NodeStartError(f"{node} did not come up")
        self.calls.append((node, operation))
        return {"stop": "stopped", "kill": "stopped", "pause": "paused"}.get(operation, "running")


def test_faults_in_force_are_remembered_and_cleared_paused_ones_first():
    faults = Recorded()
    faults.apply("consent", "kill")
    faults.apply("gp-station", "pause")
    faults.apply("hdab-trust", "stop")
    assert faults.in_force == {"consent": "down", "gp-station": "paused", "hdab-trust": "down"}
    done = faults.clear()
    assert [(r.node, r.operation) for r in done] == [
        ("gp-station", "resume"),
        ("consent", "start"),
        ("hdab-trust", "start"),
    ]
    assert faults.in_force == {}
    assert len(faults.records) == 6 and faults.running.folder.saved == 6  # type: ignore[attr-defined]
    assert faults.step(Fault(clear=True)).endswith("no fault was in force")
    record = faults.records[0]
    assert record.describe().startswith(f"kill consent at {record.at:%H:%M:%S}.")
    assert "the node is stopped" in record.describe()


def test_a_paused_node_is_resumed_before_it_is_stopped_and_odd_requests_are_refused():
    faults = Recorded()
    faults.apply("consent", "pause")
    faults.apply("consent", "stop")
    assert faults.calls == [("consent", "pause"), ("consent", "resume"), ("consent", "stop")]
    with pytest.raises(Exception, match="cannot pause consent: it is stopped"):
        faults.apply("consent", "pause")
    with pytest.raises(Exception, match="cannot resume gp-trust: no fault of this run paused it"):
        faults.apply("gp-trust", "resume")


def test_a_fault_that_cannot_be_undone_is_named_and_the_rest_are_undone():
    faults = Recorded(failing={"consent"})
    faults.apply("consent", "stop")
    faults.apply("gp-trust", "stop")
    with pytest.raises(FaultsNotCleared, match=r"consent \(stopped\): consent did not come up"):
        faults.clear()
    assert faults.in_force == {"consent": "down"}  # gp-trust was started all the same


def test_faults_are_undone_when_a_replay_ends_with_an_error_and_the_error_stays():
    told: list[str] = []
    faults = Recorded()
    with pytest.raises(RuntimeError, match="mid-run"), faults_undone(FakeRunning(), progress=told.append) as real:  # type: ignore[arg-type]
        real._operate = faults._operate  # type: ignore[method-assign]
        real.apply("consent", "pause")
        real.apply("gp-station", "kill")
        raise RuntimeError("mid-run")
    assert real.in_force == {}
    assert faults.calls[-2:] == [("consent", "resume"), ("gp-station", "start")]
    assert any("undoing the faults still in force: consent, gp-station" in line for line in told)


def test_the_matrix_leaves_out_a_use_case_that_faults_where_a_url_implementation_stands() -> None:
    """The harness cannot stop a node it reaches by URL: such a pair runs the other use cases."""
    from testbed.conformance.runner import collect_scenario_files
    from testbed.publish.matrix import plan_pairs
    from testbed.publish.registry import Entry

    def entry(name: str, role: str, reached: dict[str, str]) -> Entry:
        fields = {"name": name, "vendor": "V", "product": "P", "version": "1", "role": role}
        return Entry.model_validate({**fields, "implementation": reached})

    station = entry("s", "station", {"url": "https://station.example:8443"})
    consent = entry("c", "consent", {"url": "https://consent.example:8443"})
    runs, unplaced = plan_pairs([station, consent], collect_scenario_files([ROOT / "scenarios"]))
    assert [sorted(f.stem for f in run.scenario_files) for run in runs] == [["bgz-consent", "bgz-dpop"]]
    note = "the use case does faults to hospital-station, where s puts a node reached by URL (the harness cannot)"
    assert sorted((cell.scenario, cell.note) for cell in unplaced) == [("resilience", note), ("resilience-links", note)]
