"""Internal (administrative) APIs answer only clients with a certificate from the network CA;
public APIs answer anyone who trusts the CA."""

from __future__ import annotations

import ssl

import httpx
import pytest

from testbed.network import RunningNetwork
from testbed.pki import NetworkCA

pytestmark = pytest.mark.integration


def anonymous_client(running: RunningNetwork) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cafile=running.state.trust_bundle), timeout=5)


@pytest.mark.parametrize("node", ["hospital-trust", "consent", "hospital-station"])
def test_internal_api_refuses_a_client_without_certificate(reference_network: RunningNetwork, node: str):
    internal = reference_network.state.context["nodes"][node]["internal_url"]
    with anonymous_client(reference_network) as client, pytest.raises(httpx.HTTPError):
        client.get(f"{internal}/health")
    with reference_network.client() as client:  # the harness shows its certificate
        assert client.get(f"{internal}/health").status_code == 200


def test_internal_api_refuses_a_certificate_from_another_ca(reference_network: RunningNetwork, tmp_path):
    stranger = NetworkCA.create(tmp_path / "other-ca", "stranger").issue(tmp_path / "tls", "stranger", ["localhost"])
    internal = reference_network.state.context["nodes"]["hospital-trust"]["internal_url"]
    verify = ssl.create_default_context(cafile=reference_network.state.trust_bundle)
    verify.load_cert_chain(str(stranger.cert), str(stranger.key))
    with httpx.Client(verify=verify, timeout=5) as client, pytest.raises(httpx.HTTPError):
        client.post(f"{internal}/internal/vdr/v2/subject", json={"subject": "intruder"})


def test_public_api_needs_no_client_certificate(reference_network: RunningNetwork):
    url = reference_network.state.context["nodes"]["hospital-station"]["url"]
    with anonymous_client(reference_network) as client:
        assert client.get(f"{url}/fhir/metadata").status_code == 200


def test_consent_service_asks_every_client_for_a_certificate(reference_network: RunningNetwork):
    url = reference_network.state.context["nodes"]["consent"]["url"]
    question = {"bsn": "968548829", "data_holder": "1", "requester": "2", "data_category": "x"}
    with anonymous_client(reference_network) as client, pytest.raises(httpx.HTTPError):
        client.post(f"{url}/consent/v1/decision", json=question)
    with reference_network.client() as client:
        assert client.post(f"{url}/consent/v1/decision", json=question).json()["decision"] == "Deny"
