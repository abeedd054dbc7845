"""Several nodes per OS process (issue 16): a generated network whose nodes share processes,
one hosted node stopped, killed and started on its own while its neighbours go on answering."""

from __future__ import annotations

import concurrent.futures
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testbed.errors import ConfigError, NodeStartError
from testbed.generate import generate_network
from testbed.network import RunningNetwork, network_session
from testbed.runtime.process import ProcessRuntime
from testbed.runtime.state import NodeState, RunFolder, new_run_id
from testbed.topology import load_network

NODES_PER_PROCESS = 4


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    folder_path = tmp_path_factory.mktemp("generated")
    network_file = folder_path / "network.yaml"
    network_file.write_text(generate_network(organisations=3, seed="shared-processes"), encoding="utf-8")
    loaded = load_network(network_file)
    folder = RunFolder(tmp_path_factory.mktemp("state"), tmp_path_factory.mktemp("reports"), new_run_id("shared"))
    with network_session(
        loaded,
        "process",
        folder,
        owner_pid=os.getpid(),
        progress=lambda _: None,
        nodes_per_process=NODES_PER_PROCESS,
    ) as running:
        yield running


def _health(client: httpx.Client, node: NodeState) -> int | str:
    try:
        return client.get(f"{node.plan.internal_url}/health").status_code
    except httpx.HTTPError as exc:
        return exc.__class__.__name__


def _process_of(running: RunningNetwork, name: str) -> list[NodeState]:
    pid = running.node(name).pid
    return [n for n in running.state.nodes if n.pid == pid]


def _hosted(running: RunningNetwork) -> list[NodeState]:
    """The nodes that share their process with at least one other."""
    return [n for n in running.state.nodes if len(_process_of(running, n.plan.name)) > 1]


def test_nodes_share_processes_as_planned(shared: RunningNetwork) -> None:
    nodes = shared.state.nodes
    processes = {n.pid for n in nodes}
    assert len(processes) == -(-len(nodes) // NODES_PER_PROCESS)  # ceiling: the plan's grouping
    for pid in processes:
        members = [n for n in nodes if n.pid == pid]
        assert 1 <= len(members) <= NODES_PER_PROCESS
        assert len({n.plan.host for n in members}) == len(members)  # each its own address
        assert all(n.control_url == members[0].control_url for n in members)
    for node in nodes:  # each node logs to a file of its own: its URLs, the requests it answered
        log = Path(str(node.log_path))
        assert log.name == f"{node.plan.name}.log"
        text = log.read_text(encoding="utf-8")
        assert node.plan.public_url in text
        assert '"GET /health HTTP/1.1" 200' in text
        others = [n.plan.public_url for n in nodes if n is not node and n.pid == node.pid]
        assert not any(f"serves its public API at {url} " in text for url in others)
    # Bootstrap went through every node: each organisation has its own DID.
    dids = [org["did"] for org in shared.state.context["orgs"].values() if "did" in org]
    assert len(dids) == len(set(dids)) >= 3


def test_a_hosted_node_stops_and_starts_alone(shared: RunningNetwork) -> None:
    target = next(n for n in _hosted(shared) if n.plan.role == "station")
    neighbours = [n for n in _process_of(shared, target.plan.name) if n is not target]
    runtime = ProcessRuntime()
    with shared.client(timeout=5.0) as client:
        assert runtime.operate(shared.state, target.plan.name, "stop", progress=lambda _: None) == "stopped"
        assert _health(client, target) == "ConnectError"  # its listeners are closed
        assert [_health(client, n) for n in neighbours] == [200] * len(neighbours)
        assert os.path.exists(f"/proc/{target.pid}")  # the shared process lives on

        assert runtime.operate(shared.state, target.plan.name, "start", progress=lambda _: None) == "running"
        assert _health(client, target) == 200
        # Its storage survived: the station serves the catalogue it had, with its patients.
        catalogue = client.get(f"{target.plan.public_url}/catalogue").json()
        assert target.plan.public_url in str(catalogue)

        assert runtime.operate(shared.state, target.plan.name, "kill", progress=lambda _: None) == "stopped"
        assert [_health(client, n) for n in neighbours] == [200] * len(neighbours)
        assert runtime.operate(shared.state, target.plan.name, "restart", progress=lambda _: None) == "running"
        assert _health(client, target) == 200
    log = Path(str(target.log_path)).read_text(encoding="utf-8")
    assert log.count("serves its public API") == 3  # the first start, the start, the restart


def test_what_a_hosted_node_cannot_do_is_refused(shared: RunningNetwork) -> None:
    hosted = _hosted(shared)[0]
    runtime = ProcessRuntime()
    with pytest.raises(ConfigError, match=r"shares its process with other nodes.*not 'disconnect'"):
        runtime.operate(shared.state, hosted.plan.name, "disconnect", progress=lambda _: None)
    with pytest.raises(ConfigError, match="no node 'nobody'"):
        runtime.operate(shared.state, "nobody", "stop", progress=lambda _: None)
    # The control listener knows only the nodes of its own process.
    stranger = next(n for n in shared.state.nodes if n.pid != hosted.pid)
    with shared.client(timeout=5.0) as client:
        answer = client.post(f"{hosted.control_url}/nodes/{stranger.plan.name}/stop")
        assert answer.status_code == 404
        assert "hosts no node" in answer.json()["detail"]
        # ... and only callers with a certificate from the network CA.
    with shared.client(timeout=5.0, certificate=False) as anonymous, pytest.raises(httpx.HTTPError):
        anonymous.get(f"{hosted.control_url}/nodes")
    assert _health_of_all(shared) == {n.plan.name: 200 for n in shared.state.nodes}


def _health_of_all(running: RunningNetwork) -> dict[str, int | str]:
    with running.client(timeout=5.0) as client:
        return {n.plan.name: _health(client, n) for n in running.state.nodes}


def test_a_hosted_node_that_cannot_start_is_reported(shared: RunningNetwork) -> None:
    """The control listener says why a start failed; the neighbours are untouched."""
    hosted = next(n for n in _hosted(shared) if n.plan.role == "trust")
    runtime = ProcessRuntime()
    runtime.operate(shared.state, hosted.plan.name, "stop", progress=lambda _: None)
    with socket.socket() as squatter:  # someone else takes the node's port while it is down
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind((hosted.plan.host, hosted.plan.public_port))
        squatter.listen()
        with pytest.raises(NodeStartError, match=r"start failed.*Address already in use"):
            runtime.operate(shared.state, hosted.plan.name, "start", progress=lambda _: None)
    assert runtime.operate(shared.state, hosted.plan.name, "start", progress=lambda _: None) == "running"
    assert set(_health_of_all(shared).values()) == {200}


def test_a_paused_hosted_node_hangs_alone_and_answers_again_when_resumed(shared: RunningNetwork) -> None:
    """Paused, a hosted node accepts and reads nothing (a caller waits, as on a stopped
    process) while its neighbours answer; resumed, it answers the request that waited."""
    target = next(n for n in _hosted(shared) if n.plan.role == "trust")
    neighbours = [n for n in _process_of(shared, target.plan.name) if n is not target]
    runtime = ProcessRuntime()
    with shared.client(timeout=5.0) as client, shared.client(timeout=0.5) as impatient:
        assert _health(impatient, target) == 200  # a kept-alive connection that the pause must also hold
        assert runtime.operate(shared.state, target.plan.name, "pause", progress=lambda _: None) == "paused"
        assert _health(impatient, target) == "ReadTimeout"  # the open connection: sent, never read
        with shared.client(timeout=0.5) as fresh:
            assert _health(fresh, target) == "ConnectTimeout"  # a new one: queued, never accepted
        assert [_health(client, n) for n in neighbours] == [200] * len(neighbours)
        with shared.client(timeout=10.0) as patient, concurrent.futures.ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(_health, patient, target)  # waits in the backlog for the resume
            time.sleep(0.3)
            assert not waiting.done()
            assert runtime.operate(shared.state, target.plan.name, "resume", progress=lambda _: None) == "running"
            assert waiting.result(timeout=5) == 200
        assert _health(client, target) == 200
        # A paused node can be stopped and started again (its kept sockets are let go).
        runtime.operate(shared.state, target.plan.name, "pause", progress=lambda _: None)
        assert runtime.operate(shared.state, target.plan.name, "stop", progress=lambda _: None) == "stopped"
        assert runtime.operate(shared.state, target.plan.name, "start", progress=lambda _: None) == "running"
    assert set(_health_of_all(shared).values()) == {200}
