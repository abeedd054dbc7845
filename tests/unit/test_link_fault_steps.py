"""Link faults as scenario steps (issue 18): their shape in the scenario language, the checks
that refuse them before anything starts or skip a scenario that cannot do them, how the engine
hands them on, and how a run's link faults are set, recorded and healed, against a real link
proxy running in a thread of the test (`ProxyThread`)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.errors import ConfigError
from testbed.faults.link_steps import HarnessRoute, LinkRecord
from testbed.faults.links import HARNESS
from testbed.faults.nodes import FaultsNotCleared, NodeFaults, faults_undone
from testbed.faults.proxy import LinkFaultError, LinkOperation, ProxyConfig, ProxyThread
from testbed.report.model import Outcome
from testbed.runtime.plan import NodePlan
from testbed.runtime.state import NodeState, RunFolder, RunState
from testbed.scenario.engine import Engine
from testbed.scenario.loader import check_scenario, faulted_nodes, load_scenario, unfaultable
from testbed.scenario.models import Fault
from testbed.scenario.transport import Outgoing, Reply, TransportError
from testbed.topology import Role, load_network
from tests.conftest import REFERENCE_NETWORK, ROOT, checked_scenario

HEADER = f"""\
name: sample
network: {REFERENCE_NETWORK}
actors:
  requester: gp
  holder: hospital
  consent: mitz
steps:
"""
STATION, CONSENT = "hospital-station", "consent"


def fault_step(fault: str, step_id: str = "fault") -> str:
    return f"""\
  - id: {step_id}
    title: a link fault
    requirements: [STATION-RESIL-01]
    fault: {fault}
"""


def checked(write_yaml, steps: str, catalogue, network, header: str = HEADER):
    return checked_scenario(write_yaml(header + steps), catalogue, network)


# --- the scenario language --------------------------------------------------------------------


def test_link_faults_load_with_node_names_actor_roles_and_the_harness(write_yaml, catalogue, network) -> None:
    steps = (
        fault_step("{link: [holder.station, consent.consent], operation: cut}", "cut")
        + fault_step("{link: [hospital-station, consent], operation: cut, stall: true, one_way: true}", "stall")
        + fault_step("{link: [holder.station, consent], operation: delay, ms: 2000}", "delay")
        + fault_step("{link: [holder.station, consent], operation: lose, ratio: 0.5}", "lose")
        + fault_step("{link: [harness, holder.station], operation: cut}", "harness")
        + fault_step("{link: [holder.station, harness], operation: heal}", "harness-second")
        + fault_step("{link: [holder.station, consent.consent], operation: heal, one_way: true}", "heal")
    )
    faults = [step.fault for step in checked(write_yaml, steps, catalogue, network).scenario.steps]
    assert faults[0] == Fault(link=("holder.station", "consent.consent"), operation="cut")
    assert faults[1] == Fault(link=(STATION, CONSENT), operation="cut", stall=True, one_way=True)
    assert faults[2] is not None and (faults[2].operation, faults[2].ms) == ("delay", 2000)
    assert faults[3] is not None and (faults[3].operation, faults[3].ratio) == ("lose", 0.5)
    assert faults[4] == Fault(link=("harness", "holder.station"), operation="cut")


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        # ends the network does not have: named with the line of the end and the step
        (
            "{link: [holder.station, nowhere], operation: cut}",
            r":11: step 'fault': link end 2: node 'nowhere' is neither",
        ),
        (
            "{link: [requester.consent, consent], operation: cut}",
            r"link end 1: .*'gp' \(actor 'requester'\) has no consent",
        ),
        (
            "{link: [holder.station, hospital-station], operation: cut}",
            "both ends of the link are node 'hospital-station'",
        ),
        # the shape of a link fault
        ("{link: [consent, consent], operation: cut}", "a link joins two different ends, not 'consent' to itself"),
        ("{link: [consent], operation: cut}", r"fault.link: a link has two ends, \[a, b\]; this one has 1"),
        ("{link: [consent, gp-station, hdab], operation: cut}", "a link has two ends, .*; this one has 3"),
        ("{link: [consent, gp-station]}", r"a link fault is one of cut, heal, delay, lose \(no 'operation'\)"),
        ("{link: [consent, gp-station], operation: stop}", r"a link fault is one of .*\('stop' is done to a node\)"),
        ("{link: [consent, gp-station], operation: snap}", r"operation.*'cut', 'heal', 'delay' or 'lose'"),
        ("{link: [consent, gp-station], operation: delay}", "'delay' needs 'ms'"),
        ("{link: [consent, gp-station], operation: lose}", "'lose' needs 'ratio'"),
        ("{link: [consent, gp-station], operation: delay, ms: 0}", r"ms.*greater than or equal to 1"),
        ("{link: [consent, gp-station], operation: lose, ratio: 0}", r"ratio.*greater than 0"),
        ("{link: [consent, gp-station], operation: lose, ratio: 1.5}", r"ratio.*less than or equal to 1"),
        ("{link: [consent, gp-station], operation: cut, ms: 10}", "'ms' goes with delay, not with 'cut'"),
        ("{link: [consent, gp-station], operation: delay, ms: 5, ratio: 0.1}", "'ratio' goes with lose"),
        ("{link: [consent, gp-station], operation: delay, ms: 5, stall: true}", "'stall' goes with cut or lose"),
        (
            "{link: [consent, harness], operation: cut, one_way: true}",
            "nobody connects to the harness: name 'harness' first",
        ),
        # a link fault is not a node fault, nor a clear
        (
            "{node: consent, link: [consent, gp-station], operation: cut}",
            "a fault names a 'node' or a 'link', not both",
        ),
        ("{node: consent, operation: cut}", "'cut' is done to a link: name the 'link'"),
        ("{node: consent, operation: stop, ms: 10}", "ms: only a link fault takes these"),
        ("{node: consent, operation: stop, one_way: true}", "one_way: only a link fault takes these"),
        ("{clear: true, link: [consent, gp-station]}", "give no link or link options with it"),
        ("{clear: true, stall: true}", "give no link or link options with it"),
    ],
)
def test_link_faults_that_cannot_be_done_are_refused_before_start(write_yaml, catalogue, network, fault, message):
    with pytest.raises(ConfigError, match=message):
        checked(write_yaml, fault_step(fault), catalogue, network)


def test_an_unknown_link_end_is_named_at_its_own_line(write_yaml, catalogue, network) -> None:
    steps = """\
  - id: block
    title: a link fault written out
    requirements: [STATION-RESIL-01]
    fault:
      link:
        - holder.station
        - nowhere
      operation: cut
"""
    with pytest.raises(ConfigError, match=r"file.yaml:14: step 'block': link end 2: node 'nowhere'"):
        checked(write_yaml, steps, catalogue, network)


def test_the_published_schema_describes_link_faults_as_the_model_does() -> None:
    from testbed.schemas import SCHEMA_DIR, all_schemas

    committed = json.loads((SCHEMA_DIR / "scenario.schema.json").read_text(encoding="utf-8"))
    generated = all_schemas()["scenario.schema.json"]
    assert committed["$defs"]["Fault"] == generated["$defs"]["Fault"], "run `make schemas`"
    assert set(generated["$defs"]["Fault"]["properties"]) >= {"link", "ms", "ratio", "one_way", "stall"}


def test_harness_as_a_link_end_is_refused_where_a_node_has_that_name(tmp_path: Path, write_yaml, catalogue):
    data = yaml.safe_load(REFERENCE_NETWORK.read_text(encoding="utf-8"))
    consent = next(n for org in data["organisations"] for n in org["nodes"] if n["name"] == CONSENT)
    consent["name"] = "harness"
    network_file = tmp_path / "network.yaml"
    network_file.write_text(yaml.safe_dump(data), encoding="utf-8")
    header = HEADER.replace(str(REFERENCE_NETWORK), str(network_file))
    with pytest.raises(ConfigError, match="the network has a node by that name too; name that node as"):
        checked(
            write_yaml,
            fault_step("{link: [harness, holder.station], operation: cut}"),
            catalogue,
            load_network(network_file).network,
            header,
        )


def url_network(tmp_path: Path, *names: str):
    """The reference network with these nodes reached by URL."""
    data = yaml.safe_load(REFERENCE_NETWORK.read_text(encoding="utf-8"))
    for number, node in enumerate(n for org in data["organisations"] for n in org["nodes"] if n["name"] in names):
        node["implementation"] = {"url": f"https://127.0.0.{number + 2}:9443"}
    network_file = tmp_path / "network.yaml"
    network_file.write_text(yaml.safe_dump(data), encoding="utf-8")
    return network_file, load_network(network_file).network


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (
            "{link: [holder.station, consent.consent], operation: cut}",
            "not run: step 'fault' would cut the link consent -> hospital-station, and 'consent' is reached by URL "
            "(https://127.0.0.2:9443): the connections it opens do not pass the harness's link proxy. A link to such "
            "a node can fail from the harness, or one way from a node the run starts",
        ),
        ("{link: [consent.consent, holder.station], operation: delay, ms: 5, one_way: true}", "'consent' is reached"),
        ("{link: [harness, consent.consent], operation: cut}", None),
        ("{link: [consent.consent, harness], operation: lose, ratio: 0.5}", None),
        ("{link: [holder.station, consent.consent], operation: cut, one_way: true}", None),
    ],
)
def test_a_link_fault_that_needs_the_connections_of_a_url_node_skips_the_scenario(
    tmp_path: Path, write_yaml, catalogue, fault, reason
):
    """The proxy sits on the harness's side: it sees what the harness and the nodes the run
    starts send, never what a node reached by URL opens itself. The file is right; the
    scenario is not run on such a network (its checks skipped, saying why)."""
    network_file, network = url_network(tmp_path, CONSENT)
    header = HEADER.replace(str(REFERENCE_NETWORK), str(network_file))
    loaded = checked(write_yaml, fault_step(fault), catalogue, network, header)
    found = unfaultable(loaded.scenario, network)
    assert found == reason if reason is None or reason.startswith("not run") else reason in str(found)


def test_a_link_between_two_url_nodes_skips_the_scenario_and_the_matrix_knows_whose_links_fail(
    tmp_path: Path, write_yaml, catalogue
):
    network_file, network = url_network(tmp_path, CONSENT, STATION)
    header = HEADER.replace(str(REFERENCE_NETWORK), str(network_file))
    steps = fault_step("{link: [holder.station, consent.consent], operation: cut, one_way: true}")
    loaded = checked(write_yaml, steps, catalogue, network, header)
    assert "'hospital-station' is reached by URL" in str(unfaultable(loaded.scenario, network))
    # the nodes whose own connections fail (never the harness, never only a target)
    steps = (
        fault_step("{link: [holder.station, consent.consent], operation: cut, one_way: true}", "one")
        + fault_step("{link: [harness, requester.station], operation: cut}", "two")
        + fault_step("{link: [requester.trust, holder.trust], operation: delay, ms: 5}", "three")
    )
    loaded = checked(write_yaml, steps, catalogue, load_network(REFERENCE_NETWORK).network)
    assert faulted_nodes(loaded, load_network(REFERENCE_NETWORK).network) == {STATION, "gp-trust", "hospital-trust"}


def test_the_shipped_link_scenario_fits_the_reference_network_and_has_every_link_operation(catalogue, network):
    loaded = load_scenario(ROOT / "scenarios" / "resilience-links.yaml")
    check_scenario(loaded, network, catalogue)
    faults = [step.fault for step in loaded.scenario.steps if step.fault is not None]
    assert {f.operation for f in faults} == {"cut", "heal", "delay", "lose"}
    assert any(f.link is not None and "harness" in f.link for f in faults)
    assert unfaultable(loaded.scenario, network) is None


# --- the engine hands link faults on ----------------------------------------------------------


def test_the_engine_resolves_both_ends_and_leaves_the_harness_as_it_is(write_yaml, network) -> None:
    done: list[Fault] = []

    def applier(fault: Fault) -> str:
        done.append(fault)
        return f"{fault.operation} {fault.link}"

    steps = fault_step("{link: [holder.station, consent.consent], operation: delay, ms: 10}", "slow") + fault_step(
        "{link: [harness, requester.trust], operation: cut}", "harness"
    )
    context = {"orgs": {"gp": {"id": "gp"}, "hospital": {"id": "hospital"}, "mitz": {"id": "mitz"}}}
    engine = Engine(network, context, transport=None, log_tail=lambda _: [], faults=applier)  # type: ignore[arg-type]
    checks = engine.run(load_scenario(write_yaml(HEADER + steps))).checks
    assert done == [
        Fault(link=(STATION, CONSENT), operation="delay", ms=10),
        Fault(link=("harness", "gp-trust"), operation="cut"),
    ]
    assert [(c.outcome, c.message) for c in checks] == [
        (Outcome.PASSED, f"delay ('{STATION}', '{CONSENT}')"),
        (Outcome.PASSED, "cut ('harness', 'gp-trust')"),
    ]


# --- a run's link faults, against a real proxy in a thread --------------------------------------


@dataclass
class FakeFolder:
    saved: int = 0

    def save(self, _state: Any) -> None:
        self.saved += 1


@dataclass
class FakeRunning:
    """What NodeFaults needs of a running network for link faults: nothing, as the proxy's
    control is handed in directly."""

    folder: FakeFolder = field(default_factory=FakeFolder)
    state: Any = None


@pytest.fixture
def proxy() -> Iterator[ProxyThread]:
    nodes = {STATION: ["127.0.0.2:8443"], CONSENT: ["127.0.0.3:8443"], "gp-trust": ["127.0.0.4:8443"]}
    with ProxyThread(ProxyConfig(nodes=nodes)) as thread:
        yield thread


def faults_on(proxy: ProxyThread, progress: list[str] | None = None) -> NodeFaults:
    told = progress if progress is not None else []
    faults = NodeFaults(FakeRunning(), progress=told.append)  # type: ignore[arg-type]
    faults.links._control = proxy  # type: ignore[assignment]
    return faults


def not_open(proxy: ProxyThread) -> set[tuple[str, str]]:
    return {(link["from"], link["to"]) for link in proxy.show()["links"]}


def test_a_link_step_is_set_on_the_proxy_recorded_with_its_time_and_cleared(proxy: ProxyThread) -> None:
    faults = faults_on(proxy)
    cut = faults.step(Fault(link=(STATION, CONSENT), operation="cut"))
    slow = faults.step(Fault(link=("harness", "gp-trust"), operation="delay", ms=250))
    assert not_open(proxy) == {(STATION, CONSENT), (CONSENT, STATION), (HARNESS, "gp-trust")}
    assert cut.startswith(f"cut link {STATION} <-> {CONSENT} at ")
    assert cut.endswith(f"(links faulted now: {CONSENT} -> {STATION}, {STATION} -> {CONSENT})")
    assert "delay link harness -> gp-trust by 250 ms at " in slow
    assert faults.links.harness_faulted and faults.any_in_force
    record = faults.records[0]
    assert isinstance(record, LinkRecord) and record.operation == "cut" and record.at.tzinfo is not None

    cleared = faults.step(Fault(clear=True))

    assert not_open(proxy) == set()
    assert not faults.any_in_force and not faults.links.harness_faulted
    assert cleared.startswith("clear at ") and cleared.count("heal link ") == 3
    assert [type(r).__name__ for r in faults.records] == ["LinkRecord"] * 5


def test_a_heal_step_heals_one_way_and_what_the_proxy_shows_open_is_not_healed_again(proxy: ProxyThread) -> None:
    faults = faults_on(proxy)
    faults.step(Fault(link=(STATION, CONSENT), operation="lose", ratio=0.5, stall=True))
    healed = faults.step(Fault(link=(CONSENT, STATION), operation="heal", one_way=True))
    assert healed.startswith(f"heal link {CONSENT} -> {STATION} at ")
    assert faults.links.in_force == {(STATION, CONSENT)}
    proxy.clear()  # healed behind the run's back (say, `testbed fault links clear`)
    faults.step(Fault(link=(STATION, "gp-trust"), operation="cut", one_way=True))
    assert faults.links.in_force == {(STATION, "gp-trust")}


def test_a_scenario_end_and_an_error_heal_the_links_left_faulted(proxy: ProxyThread) -> None:
    told: list[str] = []
    faults = faults_on(proxy, told)
    faults.step(Fault(link=(STATION, CONSENT), operation="cut", one_way=True))
    faults.end_scenario("sample")
    assert not_open(proxy) == set()
    assert any(f"scenario sample left faults in force (link {STATION} -> {CONSENT})" in line for line in told)

    with pytest.raises(RuntimeError, match="mid-run"), faults_undone(FakeRunning(), progress=told.append) as real:  # type: ignore[arg-type]
        real.links._control = proxy  # type: ignore[assignment]
        real.step(Fault(link=("harness", CONSENT), operation="cut"))
        raise RuntimeError("mid-run")
    assert not_open(proxy) == set()
    assert any("undoing the faults still in force: link harness -> consent" in line for line in told)


def test_a_link_that_cannot_be_healed_is_named(proxy: ProxyThread) -> None:
    faults = faults_on(proxy)
    faults.step(Fault(link=(STATION, CONSENT), operation="cut", one_way=True))
    faults.links._control = Unreachable()  # type: ignore[assignment]
    with pytest.raises(FaultsNotCleared, match=f"link {STATION} -> {CONSENT}: the proxy is gone"):
        faults.clear()
    assert faults.links.in_force == {(STATION, CONSENT)}  # still the run's to heal


def test_a_node_the_proxy_does_not_know_is_an_error_of_the_step(proxy: ProxyThread) -> None:
    with pytest.raises(LinkFaultError, match="no node 'nowhere' in this run"):
        faults_on(proxy).step(Fault(link=(STATION, "nowhere"), operation="cut"))


class Unreachable(ProxyThread):
    def __init__(self) -> None:
        pass

    def apply(self, operation: LinkOperation) -> dict[str, Any]:
        raise LinkFaultError("the proxy is gone")


# --- the harness's requests pass the proxy only while a link from it is faulted ------------------


class Recording:
    def __init__(self, name: str, fail: bool = False):
        self.name, self.fail, self.sent = name, fail, 0

    def send(self, outgoing: Outgoing) -> Reply:
        self.sent += 1
        if self.fail:
            raise TransportError("ProxyError: 502 Link Fault")
        return Reply(200, {}, self.name.encode(), 1.0)


def test_requests_go_through_the_proxy_only_while_a_harness_link_is_faulted(proxy: ProxyThread) -> None:
    faults = faults_on(proxy)
    direct, proxied = Recording("direct"), Recording("proxied", fail=True)
    route = faults.route(direct)
    assert isinstance(route, HarnessRoute)
    route._proxied = proxied  # type: ignore[assignment]
    request = Outgoing("GET", "https://127.0.0.2:8443/health", {}, None, "step")

    assert route.send(request).content == b"direct"
    faults.step(Fault(link=(STATION, CONSENT), operation="cut"))  # not the harness's: still direct
    assert route.send(request).content == b"direct"
    faults.step(Fault(link=("harness", STATION), operation="cut"))
    with pytest.raises(
        TransportError,
        match=r"502 Link Fault \(sent through the run's link proxy; this run has "
        rf"faulted: link harness -> {STATION}, link {CONSENT} -> {STATION}",
    ):
        route.send(request)
    faults.step(Fault(link=("harness", STATION), operation="heal"))
    assert route.send(request).content == b"direct"
    assert (direct.sent, proxied.sent) == (3, 1)


# --- the command line's link faults ------------------------------------------------------------


def run_state(*, url_node: str | None = None) -> RunState:
    def plan(name: str, role: Role, host: str) -> NodePlan:
        managed = name != url_node
        return NodePlan(
            name=name,
            role=role,
            organisation="o",
            managed=managed,
            host=host,
            public_port=8443,
            internal_port=8081,
            public_url=f"https://{host}:8443",
            internal_url=f"https://{host}:8081",
        )

    nodes = [plan(STATION, Role.STATION, "127.0.0.2"), plan(CONSENT, Role.CONSENT, "127.0.0.3")]
    return RunState(
        run_id="r1",
        runtime="process",
        network_file="n.yaml",
        network_sha256="0",
        nodes=[NodeState(plan=p) for p in nodes],
    )


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        ((STATION, CONSENT, "snap"), {}, "unknown link operation 'snap'; known: cut, heal, delay, lose"),
        ((STATION, CONSENT, "stop"), {}, "unknown link operation 'stop'"),
        ((STATION, CONSENT, "delay"), {}, "'delay' needs --ms"),
        ((STATION, CONSENT, "lose"), {"ratio": 0.0}, "--ratio: Input should be greater than 0"),
        ((STATION, CONSENT, "heal"), {"ms": 5}, "--ms goes with delay, not with 'heal'"),
        ((STATION, CONSENT, "heal"), {"stall": True}, "--stall goes with cut or lose"),
        ((CONSENT, "harness", "cut"), {"one_way": True}, "name 'harness' first"),
        ((CONSENT, CONSENT, "cut"), {}, "two different ends"),
    ],
)
def test_the_command_line_refuses_a_link_fault_that_is_not_one(args, options, message) -> None:
    from testbed.cli import _link_fault

    every = {"ms": None, "ratio": None, "one_way": False, "stall": False, **options}
    with pytest.raises(ConfigError, match=message):
        _link_fault(*args, **every)


def test_the_command_line_refuses_unknown_ends_and_links_a_url_node_opens() -> None:
    from testbed.cli import _link_fault, _refuse_unknown_ends

    def fault(*args: str, one_way: bool = False) -> Fault:
        return _link_fault(*args, ms=None, ratio=None, one_way=one_way, stall=False)

    _refuse_unknown_ends(run_state(), fault(STATION, CONSENT, "cut"))
    _refuse_unknown_ends(run_state(), fault("harness", CONSENT, "cut"))
    with pytest.raises(ConfigError, match=r"no node 'nowhere' in run r1 \(nodes: consent, hospital-station; or"):
        _refuse_unknown_ends(run_state(), fault(STATION, "nowhere", "cut"))
    with_url = run_state(url_node=CONSENT)
    _refuse_unknown_ends(with_url, fault("harness", CONSENT, "cut"))
    _refuse_unknown_ends(with_url, fault(STATION, CONSENT, "cut", one_way=True))
    with pytest.raises(ConfigError, match=r"consent is reached by URL \(https://127.0.0.3:8443\).*consent -> "):
        _refuse_unknown_ends(with_url, fault(STATION, CONSENT, "cut"))


def test_the_command_line_says_so_when_a_run_has_no_link_proxy(tmp_path: Path) -> None:
    """A run on the swarm runtime (or one from before the proxy) has no proxy: links cannot fail."""
    folder = RunFolder(tmp_path / "state", tmp_path / "reports", "r1")
    folder.create()
    folder.save(run_state().model_copy(update={"runtime": "swarm"}))
    roots = ["--run", "r1", "--state", str(tmp_path / "state"), "--reports", str(tmp_path / "reports")]
    answers = [
        subprocess.run(
            [sys.executable, "-m", "testbed.cli", "fault", *args, *roots],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
            check=False,
        )
        for args in (["links", "show"], ["link", STATION, CONSENT, "cut"])
    ]
    for done in answers:
        assert done.returncode == 2, done.stdout + done.stderr
        assert "run r1 has no link proxy (swarm runtime): links cannot fail" in " ".join(done.stderr.split())
        assert "Traceback" not in done.stderr
