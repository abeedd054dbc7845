"""Hostile but well-formed-looking input never gets a server error: JSON nested past any
parser's depth, integers of more digits than Python converts, bytes that are not UTF-8, numbers
beyond any collection. Every node answers 400 (a problem document or an OperationOutcome), and
the consent notification endpoint takes nothing from anyone but the consent service."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Net
from tests.integration.test_hdab_http import token

DEEP = b"[" * 5000 + b"]" * 5000
HUGE_INTEGER = b'{"value": ' + b"9" * 5000 + b"}"
NOT_UTF8 = b'{"value": "\xff\xfe"}'
BODIES = {"nested 5000 deep": DEEP, "a 5000-digit integer": HUGE_INTEGER, "not UTF-8": NOT_UTF8}

# (node, internal listener?, path): endpoints that read a JSON body, one or more per role.
JSON_ENDPOINTS = [
    ("gp-trust", True, "/internal/vdr/v2/subject"),
    ("gp-trust", True, "/internal/vcr/v2/issuer/vc"),
    ("gp-trust", True, "/internal/vcr/v2/search"),
    ("gp-trust", True, "/internal/auth/v2/gp/request-service-access-token"),
    ("gp-trust", True, "/internal/discovery/v1/testbed-care/gp"),
    ("consent", True, "/internal/consent/v1/consents"),
    ("consent", True, "/internal/consent/v1/optouts"),
    ("consent", False, "/consent/v1/decision"),
    ("hospital-station", True, "/internal/station/v1/handovers"),
    ("welldata-vault", True, "/internal/vault/v1/pods/{pod}/lifestyle"),  # a pod that exists: read first
]


def _url(net: Net, node: str, internal: bool, path: str) -> str:
    """An exact 400 is asked below, so the path names things that exist: a refusal for an unknown
    pod (404) must not pass for the body having been read and refused."""
    if "{pod}" in path:
        pods = net.client.get(f"{net.internal(node)}/internal/vault/v1/pods").json()
        path = path.format(pod=pods[0]["id"])
    return f"{net.internal(node) if internal else net.url(node)}{path}"


@pytest.mark.parametrize("body_kind", sorted(BODIES))
@pytest.mark.parametrize(("node", "internal", "path"), JSON_ENDPOINTS)
def test_hostile_json_is_a_400_never_a_server_error(
    net: Net, node: str, internal: bool, path: str, body_kind: str
) -> None:
    response = net.client.post(
        _url(net, node, internal, path), content=BODIES[body_kind], headers={"content-type": "application/json"}
    )
    said = f"{node} {path}, {body_kind}: {response.status_code} {response.text[:300]}"
    assert response.status_code == 400, said


@pytest.mark.parametrize("body_kind", sorted(BODIES))
def test_hostile_json_to_the_access_body_is_a_400(net: Net, body_kind: str) -> None:
    """The access body reads an application's JSON only from a caller with a token, so one is got."""
    bearer = token(net, "institute")
    response = net.client.post(
        f"{net.url('hdab')}/hdab/v1/applications",
        content=BODIES[body_kind],
        headers={"content-type": "application/json", "Authorization": f"Bearer {bearer}"},
    )
    assert response.status_code == 400, response.text


@pytest.mark.parametrize("value", ["99999999999999999999999", "²", "-1", "1e3"])
def test_a_number_no_collection_reaches_is_a_400(net: Net, value: str) -> None:
    patients = f"{net.internal('hospital-station')}/internal/station/v1/patients"
    response = net.client.get(patients, params={"limit": value})
    assert response.status_code == 400, response.text
    assert "whole number" in response.json()["detail"]


def _notification(net: Net, *, certificate: bool) -> int:
    forged = {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": {"resourceType": "Consent"}}]}
    url = f"{net.url('hospital-station')}/fhir/notifications/consent"
    if certificate:
        return net.client.post(url, json=forged).status_code
    with net.running.client(certificate=False) as anonymous:
        return anonymous.post(url, json=forged).status_code


def test_only_the_consent_service_may_notify_a_station(net: Net) -> None:
    kept = net.client.get(f"{net.internal('hospital-station')}/internal/station/v1/notifications").json()
    assert _notification(net, certificate=False) == 401  # anonymous
    assert _notification(net, certificate=True) == 403  # the network CA's, but not the consent service's
    assert net.client.get(f"{net.internal('hospital-station')}/internal/station/v1/notifications").json() == kept


def test_a_notification_larger_than_one_is_refused_even_from_the_consent_service(net: Net) -> None:
    padding = "x" * (300 * 1024)  # over the 256 KiB a notification may be, under the 1 MB of any body
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": {"text": padding}}]}
    with net.client_as("consent") as consent_service:
        response = consent_service.post(f"{net.url('hospital-station')}/fhir/notifications/consent", json=bundle)
    assert response.status_code == 413, response.text
    assert response.json()["issue"][0]["details"]["coding"][0]["code"] == "notification-too-large"
