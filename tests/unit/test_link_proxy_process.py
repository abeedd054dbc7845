"""The link proxy as the process runtime runs it: a process of its own on sockets bound before
it starts, steered over a control listener that takes only clients with a certificate from the
network CA, and gone, with its ports, when the run stops it or its harness is gone."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.faults.links import HARNESS, LinkFaults, start_link_proxy, stop_link_proxy
from testbed.faults.proxy import LinkFaultError
from testbed.pki import NetworkCA, write_trust_bundle
from testbed.runtime.client import ssl_context_for
from testbed.runtime.plan import NetworkPlan, NodePlan
from testbed.runtime.state import LinkProxyState, RunFolder, RunState
from testbed.topology import Role
from tests.conftest import port_free, process_alive


def _node(name: str, host: str) -> NodePlan:
    return NodePlan(
        name=name,
        role=Role.TRUST,
        organisation=name,
        managed=True,
        host=host,
        public_port=8443,
        internal_port=8081,
        public_url=f"https://{host}:8443",
        internal_url=f"https://{host}:8081",
    )


PLAN = NetworkPlan(nodes=[_node("a", "127.0.250.1"), _node("b", "127.0.250.2")])


@pytest.fixture
def run(tmp_path: Path) -> Iterator[tuple[RunFolder, RunState, NetworkCA]]:
    folder = RunFolder(tmp_path / "state", tmp_path / "reports", "unit-links")
    folder.create()
    ca = NetworkCA.open(folder.pki_dir, "unit")
    harness = ca.issue(folder.pki_dir / "harness", "testbed harness", ["localhost"])
    state = RunState(
        run_id="unit-links",
        runtime="process",
        network_file="unit.yaml",
        network_sha256="0" * 64,
        trust_bundle=str(write_trust_bundle(folder.pki_dir / "trust-bundle.pem", ca, [])),
        client_cert=str(harness.cert),
        client_key=str(harness.key),
    )
    yield folder, state, ca
    stop_link_proxy(state)


def _start(run: tuple[RunFolder, RunState, NetworkCA], owner_pid: int | None = None) -> LinkProxyState:
    folder, state, ca = run
    state.link_proxy = start_link_proxy(
        PLAN, folder, ca=ca, trust_bundle=state.trust_bundle, owner_pid=owner_pid, seed="unit"
    )
    return state.link_proxy


def test_the_harness_sets_and_clears_link_faults_over_the_control_listener(
    run: tuple[RunFolder, RunState, NetworkCA],
) -> None:
    _start(run)
    faults = LinkFaults(run[1])

    shown = faults.cut("a", "b", one_way=True)
    faults.delay(HARNESS, "b", 250)
    cleared = faults.clear()

    assert shown["links"] == [{"from": "a", "to": "b", "cut": True, "delay_ms": 0, "loss": 0.0, "stall": False}]
    assert cleared["links"] == []
    with pytest.raises(LinkFaultError, match="no node 'c' in this run"):
        faults.heal("a", "c")


def test_the_control_listener_refuses_a_client_without_a_certificate(
    run: tuple[RunFolder, RunState, NetworkCA],
) -> None:
    _start(run)
    anonymous = run[1].model_copy(update={"client_cert": "", "client_key": ""})

    with pytest.raises(LinkFaultError, match=r"does not answer|without an answer"):
        LinkFaults(anonymous).cut("a", "b")
    assert LinkFaults(run[1]).show()["links"] == []


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"not json\n", "not a link operation"),
        (b'{"op": "explode"}\n', "not a link operation"),
        (b'{"op": "cut", "source": "a", "target": "b", "extra": 1}\n', "not a link operation"),
        (b'{"op": "cut", "source": "a"}\n', "no node given"),
    ],
)
def test_the_control_listener_answers_a_line_it_cannot_take_with_an_error_and_keeps_going(
    run: tuple[RunFolder, RunState, NetworkCA], line: bytes, error: str
) -> None:
    proxy = _start(run)
    host, _, port = proxy.control.rpartition(":")
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        ssl_context_for(run[1]).wrap_socket(raw, server_hostname=host) as sock,
    ):
        sock.sendall(line)
        answer = json.loads(sock.makefile("rb").readline())
        sock.sendall(b'{"op": "show"}\n')
        shown = json.loads(sock.makefile("rb").readline())

    assert error in answer["error"]
    assert shown == {"links": [], "tunnels": 0}


def test_a_run_without_a_proxy_says_so(run: tuple[RunFolder, RunState, NetworkCA]) -> None:
    with pytest.raises(LinkFaultError, match="has no link proxy"):
        LinkFaults(run[1])


def test_stopping_leaves_no_process_and_no_port(run: tuple[RunFolder, RunState, NetworkCA]) -> None:
    proxy = _start(run)
    assert proxy.pid is not None and process_alive(proxy.pid)

    stop_link_proxy(run[1])

    assert run[1].link_proxy is None
    assert not process_alive(proxy.pid)
    assert port_free(proxy.url) and port_free(f"http://{proxy.control}")


def test_the_proxy_ends_by_itself_when_its_harness_is_gone(run: tuple[RunFolder, RunState, NetworkCA]) -> None:
    harness = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    proxy = _start(run, owner_pid=harness.pid)
    assert proxy.pid is not None
    harness.kill()
    harness.wait()

    deadline = time.monotonic() + 15  # it looks once a second; a bound for failing, not a speed
    while process_alive(proxy.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not process_alive(proxy.pid)
    assert "harness process" in (run[0].logs_dir / "link-proxy.log").read_text()
