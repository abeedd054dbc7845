"""Link faults on a running reference network (process runtime): every node reaches its peers
through the run's link proxy, so cutting the link from a data station to the consent service
makes the station refuse reads with its documented answer (503, consent-unavailable), and
healing the link lets it serve again. The proxy ends with the network."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nodes.station.synthetic import BSN_SYSTEM
from protocols.nodeconfig import NodeConfig
from testbed.faults.links import HARNESS, LinkFaults
from testbed.faults.proxy import LinkFaultError
from testbed.network import network_session
from testbed.runtime.client import harness_client
from testbed.runtime.state import RunFolder, new_run_id
from testbed.topology import load_network
from tests.conftest import REFERENCE_NETWORK, port_free, process_alive
from tests.integration.conftest import Net, reference_network_up

pytestmark = pytest.mark.integration

STATION, CONSENT = "hospital-station", "consent"
DIMENSIONS = {"data_holder": "*", "requester": "*", "data_category": "*"}


@pytest.fixture(scope="module")
def links_net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    with reference_network_up(tmp_path_factory, "links") as running, running.client() as client:
        proxy = running.state.link_proxy
        assert proxy is not None and proxy.pid is not None and process_alive(proxy.pid)
        yield Net(running, client)
    # The network is down, and so is its proxy: no process, no port left behind.
    assert not process_alive(proxy.pid)
    assert port_free(proxy.url) and port_free(proxy.control)


@pytest.fixture
def faults(links_net: Net) -> Iterator[LinkFaults]:
    control = LinkFaults(links_net.running.state)
    yield control
    control.clear()


@pytest.fixture
def patient(links_net: Net) -> dict[str, Any]:
    """A hospital patient who permits everyone to see their data."""
    response = links_net.client.get(f"{links_net.internal(STATION)}/internal/station/v1/patients", params={"limit": 1})
    assert response.status_code == 200, response.text
    patient: dict[str, Any] = response.json()[0]
    links_net.register_consent(patient["bsn"], "permit", **DIMENSIONS)
    return patient


def read_patient(net: Net, patient: dict[str, Any]) -> httpx.Response:
    token = net.gp_token()
    return net.client.get(
        f"{net.url(STATION)}/fhir/Patient",
        params={"identifier": f"{BSN_SYSTEM}|{patient['bsn']}"},
        headers={"Authorization": f"Bearer {token}"},
    )


def refusal_code(response: httpx.Response) -> str:
    issue = response.json()["issue"][0]
    return str(issue["details"]["coding"][0]["code"])


def test_a_station_cut_off_from_its_consent_service_refuses_and_serves_again_once_healed(
    links_net: Net, faults: LinkFaults, patient: dict[str, Any]
) -> None:
    assert read_patient(links_net, patient).status_code == 200

    shown = faults.cut(STATION, CONSENT)
    refused = read_patient(links_net, patient)
    faults.heal(STATION, CONSENT)
    served = read_patient(links_net, patient)

    assert {(link["from"], link["to"]) for link in shown["links"]} == {(STATION, CONSENT), (CONSENT, STATION)}
    assert refused.status_code == 503, refused.text
    assert refusal_code(refused) == "consent-unavailable"
    assert served.status_code == 200, served.text
    assert served.json()["total"] == 1


def test_a_cut_of_another_link_leaves_the_station_serving(
    links_net: Net, faults: LinkFaults, patient: dict[str, Any]
) -> None:
    faults.cut("gp-station", CONSENT)

    assert read_patient(links_net, patient).status_code == 200


def test_a_slow_link_slows_the_read_by_at_least_its_delay(
    links_net: Net, faults: LinkFaults, patient: dict[str, Any]
) -> None:
    token = links_net.gp_token()
    faults.delay(STATION, CONSENT, 300)
    started = time.monotonic()
    response = links_net.client.get(
        f"{links_net.url(STATION)}/fhir/Patient",
        params={"identifier": f"{BSN_SYSTEM}|{patient['bsn']}"},
        headers={"Authorization": f"Bearer {token}"},
    )
    elapsed = time.monotonic() - started

    assert response.status_code == 200, response.text
    assert elapsed >= 0.3  # at least one delayed chunk each way; never an upper bound


def test_the_harness_link_to_a_node_can_be_cut_for_a_client_through_the_proxy(
    links_net: Net, faults: LinkFaults
) -> None:
    state = links_net.running.state
    health = f"{links_net.internal(CONSENT)}/health"
    faults.cut(HARNESS, CONSENT)
    with harness_client(state, timeout=5.0, via_proxy=True) as proxied:
        with pytest.raises(httpx.ProxyError):
            proxied.get(health)
        faults.heal(HARNESS, CONSENT)
        healed = proxied.get(health)

    assert healed.status_code == 200
    assert links_net.client.get(health).status_code == 200  # the direct client never saw the fault


def test_a_fault_on_a_node_the_run_does_not_have_is_refused_with_the_names_it_has(faults: LinkFaults) -> None:
    with pytest.raises(LinkFaultError, match="no node 'nowhere' in this run"):
        faults.cut(STATION, "nowhere")
    with pytest.raises(LinkFaultError, match="ratio"):
        faults.lose(STATION, CONSENT, 1.5)


def test_a_network_started_without_the_link_proxy_works_and_says_its_links_cannot_fail(tmp_path: Path) -> None:
    """A benchmark leaves the proxy out: nodes then connect to each other directly (the
    bootstrap's credentials were stored, so calls between nodes worked), and a link fault is
    refused with a clear error instead of being silently not done."""
    loaded = load_network(REFERENCE_NETWORK)
    folder = RunFolder(tmp_path / "state", tmp_path / "reports", new_run_id("no-proxy"))
    with network_session(
        loaded, "process", folder, owner_pid=os.getpid(), progress=lambda _: None, link_proxy=False
    ) as running:
        assert running.state.link_proxy is None
        configs = [NodeConfig.read(Path(n.config_path)) for n in running.state.nodes if n.config_path]
        assert configs and all(config.egress_proxy is None for config in configs)
        with pytest.raises(LinkFaultError, match="has no link proxy"):
            LinkFaults(running.state)
        assert not any(p.name == "link-proxy" for p in (folder.state_dir).iterdir())
