"""Integration fixtures: the reference network, booted once per test session on loopback.

Tests talk to the real node processes over HTTPS through `net`, which knows the bootstrap
context (organisations, DIDs, node URLs) and wraps the calls several tests need."""

from __future__ import annotations

import contextlib
import os
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from protocols.nodeconfig import NodeConfig
from testbed.network import RunningNetwork, network_session
from testbed.runtime.state import RunFolder, new_run_id
from testbed.topology import load_network
from tests.conftest import REFERENCE_NETWORK

PATIENT_POOL = 60  # patients of the hospital station handed out, each to one test


@contextlib.contextmanager
def reference_network_up(tmp_path_factory: pytest.TempPathFactory, label: str) -> Iterator[RunningNetwork]:
    """A reference network of its own on the process runtime, stopped (all nodes) on leaving."""
    loaded = load_network(REFERENCE_NETWORK)
    folder = RunFolder(tmp_path_factory.mktemp("state"), tmp_path_factory.mktemp("reports"), new_run_id(label))
    with network_session(loaded, "process", folder, owner_pid=os.getpid(), progress=lambda _: None) as running:
        yield running


@pytest.fixture(scope="session")
def reference_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    """The reference network, up for the whole session and stopped (all nodes) at its end."""
    with reference_network_up(tmp_path_factory, "pytest") as running:
        yield running


@dataclass
class Net:
    """The running network as the tests see it: URLs, organisations and common calls."""

    running: RunningNetwork
    client: httpx.Client

    @property
    def context(self) -> dict[str, Any]:
        return self.running.state.context

    @property
    def seed(self) -> str:
        return self.context["network"]["seed"]

    def client_as(self, node: str) -> httpx.Client:
        """A client presenting `node`'s own certificate, to speak as that node (e.g. the consent
        service delivering a notification, which a station takes from no one else)."""
        config = NodeConfig.read(Path(str(self.running.node(node).config_path)))
        context = ssl.create_default_context(cafile=self.running.state.trust_bundle)
        context.load_cert_chain(str(config.tls.cert), str(config.tls.key))
        return httpx.Client(verify=context, timeout=15.0)

    def url(self, node: str) -> str:
        return self.context["nodes"][node]["url"]

    def internal(self, node: str) -> str:
        return self.context["nodes"][node]["internal_url"]

    def org(self, org_id: str) -> dict[str, Any]:
        return self.context["orgs"][org_id]

    def wallet(self, node: str, subject: str) -> list[str]:
        response = self.client.get(f"{self.internal(node)}/internal/vcr/v2/holder/{subject}/vc")
        assert response.status_code == 200, response.text
        return response.json()

    def request_token(
        self, scope: str, subject: str = "gp", server_org: str = "hospital", token_type: str = "Bearer"
    ) -> httpx.Response:
        """Ask `subject`'s trust node for an access token at `server_org`'s authorization server."""
        body = {"authorization_server": self.org(server_org)["authorization_server"], "scope": scope}
        return self.client.post(
            f"{self.internal('gp-trust')}/internal/auth/v2/{subject}/request-service-access-token",
            json={**body, "token_type": token_type},
        )

    def gp_token(self, scope: str = "bgz") -> str:
        """A fresh access token for the GP at the hospital's authorization server."""
        response = self.request_token(scope)
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def introspect(self, token: str, node: str = "hospital-trust") -> dict[str, Any]:
        response = self.client.post(
            f"{self.internal(node)}/internal/auth/v2/accesstoken/introspect", data={"token": token}
        )
        assert response.status_code == 200, response.text
        return response.json()

    def register_consent(self, bsn: str, decision: str = "permit", **dimensions: str) -> dict[str, Any]:
        response = self.client.post(
            f"{self.internal('consent')}/internal/consent/v1/consents",
            json={"bsn": bsn, "decision": decision, **dimensions},
        )
        assert response.status_code == 201, response.text
        return response.json()

    def consent_decision(self, bsn: str, **dimensions: str) -> httpx.Response:
        return self.client.post(f"{self.url('consent')}/consent/v1/decision", json={"bsn": bsn, **dimensions})


@pytest.fixture(scope="session")
def net(reference_network: RunningNetwork) -> Iterator[Net]:
    with reference_network.client() as client:
        yield Net(reference_network, client)


@pytest.fixture(scope="session")
def _patient_pool(net: Net) -> Iterator[dict[str, Any]]:
    response = net.client.get(
        f"{net.internal('hospital-station')}/internal/station/v1/patients", params={"limit": PATIENT_POOL}
    )
    assert response.status_code == 200, response.text
    return iter(response.json())


@pytest.fixture
def fresh_patient(_patient_pool: Iterator[dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """Hands out hospital-station patients ({id, bsn, ...}) no other test has had, so consent
    registered in one test never changes the answer in another."""

    def take() -> dict[str, Any]:
        patient = next(_patient_pool, None)
        assert patient is not None, f"more than {PATIENT_POOL} patients asked for: raise PATIENT_POOL"
        return patient

    return take
