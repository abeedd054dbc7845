"""Link faults on the docker runtime: the proxy runs as a container on the run's network, the
nodes' outbound connections go through it by its container name, the harness steers it at a
port published on 127.0.0.1, and it goes with the run's other containers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from nodes.station.synthetic import BSN_SYSTEM
from testbed.faults.docker_proxy import proxy_container_name
from testbed.faults.links import HARNESS, LinkFaults
from testbed.network import network_session
from testbed.runtime.client import harness_client
from testbed.runtime.docker import RUN_LABEL, docker_client
from testbed.runtime.state import RunFolder, new_run_id
from testbed.topology import load_network
from tests.conftest import REFERENCE_NETWORK
from tests.integration.conftest import Net

pytestmark = pytest.mark.docker
STATION, CONSENT = "hospital-station", "consent"


@pytest.fixture(scope="module")
def docker_net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    folder = RunFolder(tmp_path_factory.mktemp("state"), tmp_path_factory.mktemp("reports"), new_run_id("dlinks"))
    loaded = load_network(REFERENCE_NETWORK)
    session = network_session(loaded, "docker", folder, owner_pid=os.getpid(), progress=lambda _: None)
    with session as running, running.client() as client:
        yield Net(running, client)
    left = docker_client().containers.list(all=True, filters={"label": f"{RUN_LABEL}={folder.run_id}"})
    assert left == []  # the proxy's container went with the nodes'


def _read(net: Net, patient: dict[str, Any]) -> httpx.Response:
    return net.client.get(
        f"{net.url(STATION)}/fhir/Patient",
        params={"identifier": f"{BSN_SYSTEM}|{patient['bsn']}"},
        headers={"Authorization": f"Bearer {net.gp_token()}"},
    )


def test_a_cut_between_two_containers_makes_the_station_refuse_until_it_heals(docker_net: Net) -> None:
    state = docker_net.running.state
    assert state.link_proxy is not None and state.link_proxy.container == proxy_container_name(state.run_id)
    response = docker_net.client.get(
        f"{docker_net.internal(STATION)}/internal/station/v1/patients", params={"limit": 1}
    )
    patient = response.json()[0]
    docker_net.register_consent(patient["bsn"], "permit", data_holder="*", requester="*", data_category="*")
    faults = LinkFaults(state)
    try:
        before = _read(docker_net, patient)
        faults.cut(STATION, CONSENT)
        refused = _read(docker_net, patient)
        faults.heal(STATION, CONSENT)
        healed = _read(docker_net, patient)
    finally:
        faults.clear()

    assert before.status_code == 200, before.text
    assert refused.status_code == 503, refused.text
    assert refused.json()["issue"][0]["details"]["coding"][0]["code"] == "consent-unavailable"
    assert healed.status_code == 200, healed.text


def test_the_harness_reaches_containers_through_the_proxy_and_its_link_can_be_cut(docker_net: Net) -> None:
    state = docker_net.running.state
    health = f"{docker_net.internal(CONSENT)}/health"
    faults = LinkFaults(state)
    with harness_client(state, timeout=10.0, via_proxy=True) as proxied:
        assert proxied.get(health).status_code == 200  # the proxy resolves the container's name
        faults.cut(HARNESS, CONSENT)
        try:
            with pytest.raises(httpx.ProxyError):
                proxied.get(health)
        finally:
            faults.clear()
