"""The reference nodes through outages, on a reference network of this module's own (its nodes
are stopped, killed and started again): a consent notification the subscribing station missed
while it was down reaches it once it is back, also when the consent service was killed
meanwhile, and exactly once; a station keeps a notification delivered twice once; a verifier
whose issuer's status list cannot be fetched refuses the credential, naming the list, and
accepts it again once the issuer is back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from testbed.faults.nodes import NodeFaults, faults_undone
from testbed.network import RunningNetwork
from tests.integration.conftest import Net, reference_network_up
from tests.integration.test_trust_revocation import ask_token, verify

pytestmark = pytest.mark.integration

BSN = "318452790"  # a citizen no other test registers choices for
DELIVERY_PATIENCE = 20.0  # seconds: the consent service's pauses grow; one outage here lasts ~10 s


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    with reference_network_up(tmp_path_factory, "resilience-nodes") as running:
        yield running
        running.state = running.folder.load()  # nodes started again have new pids: stop those


@pytest.fixture(scope="module")
def net(network: RunningNetwork) -> Iterator[Net]:
    with network.client() as client:
        yield Net(network, client)


@pytest.fixture
def faults(network: RunningNetwork) -> Iterator[NodeFaults]:
    """Node faults undone at the end of each test, however it ends."""
    with faults_undone(network) as node_faults:
        yield node_faults


def notifications_of(net: Net, consent_id: str) -> list[dict[str, Any]]:
    response = net.client.get(
        f"{net.internal('hospital-station')}/internal/station/v1/notifications", params={"consent": consent_id}
    )
    assert response.status_code == 200, response.text
    return response.json()


def subscribe_hospital(net: Net) -> None:
    hospital = net.org("hospital")
    response = net.client.post(
        f"{net.url('consent')}/abonnementen/fhir",
        json={
            "resourceType": "Subscription",
            "reason": "OTV",
            "criteria": f"Consent?_query=otv&patientid={BSN}&providerid={hospital['ura']}",
            "channel": {"type": "rest-hook", "endpoint": f"{net.url('hospital-station')}/fhir/notifications/consent"},
        },
    )
    assert response.status_code == 201, response.text


def test_a_notification_missed_during_an_outage_arrives_once_back_also_across_a_consent_crash(
    net: Net, faults: NodeFaults
) -> None:
    subscribe_hospital(net)
    faults.apply("hospital-station", "stop")
    choice = net.register_consent(BSN, data_holder=net.org("gp")["ura"], requester=net.org("hospital")["ura"])
    faults.apply("consent", "kill")  # the notification waits in the outbox, on disk
    faults.apply("consent", "start")
    faults.apply("hospital-station", "start")
    deadline = time.monotonic() + DELIVERY_PATIENCE
    while not (delivered := notifications_of(net, choice["id"])) and time.monotonic() < deadline:
        time.sleep(0.25)
    assert [n["entry"][0]["resource"]["status"] for n in delivered] == ["active"]
    time.sleep(1.0)  # a second delivery would have come by now
    assert notifications_of(net, choice["id"]) == delivered  # exactly once


def notification(bundle_id: str, *, consent_id: str) -> dict[str, Any]:
    entry = {"resource": {"resourceType": "Consent", "id": consent_id}, "request": {"method": "PUT"}}
    return {"resourceType": "Bundle", "id": bundle_id, "type": "transaction", "entry": [entry]}


def test_a_notification_delivered_twice_is_kept_once_and_answered_alike(net: Net) -> None:
    bundle = notification("redelivered-1", consent_id="twice")
    unnamed = notification("not/an id", consent_id="unnamed")  # not a FHIR id: the station cannot key on it
    url = f"{net.url('hospital-station')}/fhir/notifications/consent"
    with net.client_as("consent") as consent_service:
        answers = [consent_service.post(url, json=bundle) for _ in range(2)]
        unnamed_answers = [consent_service.post(url, json=unnamed) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].json()["entry"] == answers[1].json()["entry"]  # the same outcome
    assert notifications_of(net, "twice") == [bundle]
    # Without a usable id the station cannot tell a redelivery from a new notification: both kept.
    assert [a.status_code for a in unnamed_answers] == [200, 200]
    assert len(notifications_of(net, "unnamed")) == 2


def issuer_with_a_list_no_one_fetched(net: Net) -> tuple[str, str]:
    """A new issuer on the authority's node, trusted by the hospital's node, whose DID the
    hospital's node has just resolved; returns (its revocable credential for the GP, list URL)."""
    authority, hospital = net.internal("authority-trust"), net.internal("hospital-trust")
    created = net.client.post(f"{authority}/internal/vdr/v2/subject", json={"subject": f"lists-{time.time_ns()}"})
    assert created.status_code == 200, created.text
    issuer = created.json()["documents"][0]["id"]
    gp = net.org("gp")
    issued = net.client.post(
        f"{authority}/internal/vcr/v2/issuer/vc",
        json={
            "type": "NutsOrganizationCredential",
            "issuer": issuer,
            "credentialSubject": {"id": gp["did"], "organization": {"name": gp["name"], "ura": gp["ura"]}},
            "withStatusList2021Revocation": True,
            "format": "jwt_vc",
        },
    )
    assert issued.status_code == 200, issued.text
    trusted = net.client.post(
        f"{hospital}/internal/vcr/v2/verifier/trust",
        json={"issuer": issuer, "credentialType": "NutsOrganizationCredential"},
    )
    assert trusted.status_code in (200, 204), trusted.text
    assert net.client.get(f"{hospital}/internal/vdr/v2/did/{quote(issuer, safe='')}").status_code == 200
    return issued.json(), f"{net.url('authority-trust')}/statuslist/{quote(issuer, safe='')}/1"


def test_a_status_list_that_cannot_be_fetched_refuses_the_credential_until_it_can(net: Net, faults: NodeFaults) -> None:
    credential, list_url = issuer_with_a_list_no_one_fetched(net)
    faults.apply("authority-trust", "stop")
    verdict = verify(net, credential)
    assert verdict["validity"] is False
    assert f"the status list {list_url} could not be fetched" in verdict["message"]
    refused = ask_token(net, credential)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "invalid_request" and list_url in refused.json()["error_description"]
    assert "access_token" not in refused.json()
    faults.apply("authority-trust", "start")
    assert verify(net, credential) == {"validity": True}
    granted = ask_token(net, credential)
    assert granted.status_code == 200, granted.text  # no failure was kept: accepted at once
    faults.apply("authority-trust", "stop")  # now a copy is held, but it cannot be revalidated
    stale = ask_token(net, credential)
    assert stale.status_code == 400 and "is not taken as current" in stale.json()["error_description"]
