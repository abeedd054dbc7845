"""The vault's API documents (protocols/openapi/vault-public.yaml, vault-internal.yaml) hold for
a running vault: every operation of each document is called, answered and refused, and every
answer's status, media type and body match what the document says of that operation; every
operation of both documents is exercised."""

from __future__ import annotations

from typing import Any

import pytest

from protocols.openapi import check_response, load_document
from tests.integration.conftest import Net
from tests.integration.test_station_openapi import Exchanges
from tests.integration.test_vault import PURPOSE, VAULT, App

pytestmark = pytest.mark.integration

V1 = "/internal/vault/v1"
MEASUREMENT = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "41950-7", "display": "Number of steps"}]},
    "effectiveDateTime": "2026-01-09",
    "valueQuantity": {"value": 10400, "unit": "/d", "system": "http://unitsofmeasure.org", "code": "/d"},
}


class AppExchanges(Exchanges):
    """The app's calls: each with its DPoP-bound token and a fresh proof (or with none)."""

    app: App

    def as_app(self, method: str, path: str, status: int, **kwargs: Any) -> Any:
        url = f"{self.base}{path}"
        headers = {"Authorization": f"DPoP {self.app.token}", "DPoP": self.app.proof(method, url)}
        return self.call(method, path, status, headers=headers, **kwargs)


@pytest.fixture(scope="module")
def pods(net: Net) -> list[str]:
    listed = net.client.get(f"{net.internal(VAULT)}{V1}/pods", params={"limit": 100}).json()
    return [p["id"] for p in listed[52:56]]  # profiles use the first pods, test_vault the last 30


@pytest.fixture(scope="module")
def public(net: Net, pods: list[str]) -> AppExchanges:
    response = net.request_token("welldata", subject=net.org("gp")["subject"], server_org="welldata", token_type="DPoP")
    assert response.status_code == 200, response.text
    calls = AppExchanges(load_document("vault-public"), net.url(VAULT), net.client)
    calls.app = App(net, response.json()["access_token"], response.json()["dpop_kid"])
    granted, refused = pods[0], pods[1]
    calls.call("GET", "/openapi.json", 200)
    calls.call("GET", f"/pods/{granted}/lifestyle/", 401)
    calls.call("GET", f"/pods/{granted}/lifestyle/steps-0", 401)
    calls.as_app("GET", f"/pods/{refused}/lifestyle/", 403)
    calls.as_app("GET", f"/pods/{refused}/lifestyle/steps-0", 403)
    calls.as_app("GET", "/pods/no-such-pod/lifestyle/", 404)
    body = {"container": "lifestyle", "purpose": PURPOSE}
    asked = calls.as_app("POST", f"/pods/{granted}/access-requests", 201, json=body).json()
    calls.as_app("POST", f"/pods/{granted}/access-requests", 422, json={"container": "lifestyle"})
    calls.as_app("POST", f"/pods/{granted}/access-requests", 400, content=b"[1]")
    calls.as_app("POST", "/pods/no-such-pod/access-requests", 404, json=body)
    calls.call("POST", f"/pods/{granted}/access-requests", 401, json=body)
    calls.as_app("GET", f"/pods/{granted}/access-requests/{asked['id']}", 200)
    calls.as_app("GET", f"/pods/{granted}/access-requests/{asked['id']}/grant", 404)  # not approved yet
    calls.as_app("GET", f"/pods/{granted}/access-requests/unknown", 404)
    calls.call("GET", f"/pods/{granted}/access-requests/{asked['id']}", 401)
    calls.call("GET", f"/pods/{granted}/access-requests/{asked['id']}/grant", 401)
    decision = net.client.post(
        f"{net.internal(VAULT)}{V1}/pods/{granted}/access-requests/{asked['id']}/decision", json={"approve": True}
    )
    assert decision.status_code == 200, decision.text
    calls.as_app("GET", f"/pods/{granted}/access-requests/{asked['id']}/grant", 200)
    calls.as_app("GET", f"/pods/{granted}/access-requests/{asked['id']}", 200)
    calls.as_app("GET", f"/pods/{granted}/lifestyle/", 200)
    calls.as_app("GET", f"/pods/{granted}/lifestyle/steps-0", 200)
    calls.as_app("GET", f"/pods/{granted}/lifestyle/nothing-here", 404)
    return calls


@pytest.fixture(scope="module")
def internal(net: Net, pods: list[str]) -> Exchanges:
    calls = Exchanges(load_document("vault-internal"), net.internal(VAULT), net.client)
    for path in ("/openapi.json", "/health", "/status", f"{V1}/pods", f"{V1}/audit"):
        calls.call("GET", path, 200)
    calls.call("GET", f"{V1}/pods", 400, params={"limit": "some"})
    calls.call("GET", f"{V1}/audit", 200, params={"pod": pods[2], "limit": 3})
    calls.call("GET", f"{V1}/audit", 400, params={"limit": "some"})
    pod = pods[2]
    calls.call("POST", f"{V1}/pods/{pod}/lifestyle", 201, json=MEASUREMENT)
    calls.call("POST", f"{V1}/pods/{pod}/lifestyle", 422, json={**MEASUREMENT, "effectiveDateTime": "today"})
    calls.call("POST", f"{V1}/pods/{pod}/lifestyle", 400, content=b"{")
    calls.call("POST", f"{V1}/pods/no-such-pod/lifestyle", 404, json=MEASUREMENT)
    _decisions(net, calls, pod)
    return calls


def _decisions(net: Net, calls: Exchanges, pod: str) -> None:
    response = net.request_token("welldata", subject=net.org("gp")["subject"], server_org="welldata", token_type="DPoP")
    app = App(net, response.json()["access_token"], response.json()["dpop_kid"])
    asked = app.call("POST", f"/pods/{pod}/access-requests", json={"container": "lifestyle", "purpose": PURPOSE})
    request_id = asked.json()["id"]
    requests = f"{V1}/pods/{pod}/access-requests"
    calls.call("GET", requests, 200)
    calls.call("GET", f"{V1}/pods/no-such-pod/access-requests", 404)
    calls.call("POST", f"{requests}/{request_id}/revoke", 409)  # nothing in force yet
    calls.call("POST", f"{requests}/{request_id}/decision", 422, json={"approve": "yes"})
    calls.call("POST", f"{requests}/{request_id}/decision", 400, content=b"")
    calls.call("POST", f"{requests}/unknown/decision", 404, json={"approve": True})
    calls.call("POST", f"{requests}/{request_id}/decision", 200, json={"approve": True, "valid_days": 1})
    calls.call("POST", f"{requests}/{request_id}/decision", 409, json={"approve": False})
    calls.call("POST", f"{requests}/{request_id}/revoke", 200)
    calls.call("POST", f"{requests}/unknown/revoke", 404)


def test_every_public_answer_matches_the_document(public: AppExchanges) -> None:
    assert not public.mismatches, "\n".join(public.mismatches)


def test_every_public_operation_is_exercised(public: AppExchanges) -> None:
    assert not public.unexercised(), public.unexercised()


def test_every_internal_answer_matches_the_document(internal: Exchanges) -> None:
    assert not internal.mismatches, "\n".join(internal.mismatches)


def test_every_internal_operation_is_exercised(internal: Exchanges) -> None:
    assert not internal.unexercised(), internal.unexercised()


def test_the_vault_serves_its_documents(net: Net) -> None:
    for base, name in ((net.url(VAULT), "vault-public"), (net.internal(VAULT), "vault-internal")):
        assert net.client.get(f"{base}/openapi.json").json() == load_document(name)


def test_a_mismatch_is_caught() -> None:
    """The check can fail: an Observation with an element R4 does not have is not what the
    public document describes."""
    observation = {**MEASUREMENT, "id": "x", "subject": {"display": "owner"}, "measuredBy": "a watch"}
    problems = check_response(
        load_document("vault-public"),
        method="GET",
        path="/pods/p/lifestyle/x",
        status=200,
        content_type="application/fhir+json",
        body=observation,
    )
    assert problems and "measuredBy" in problems[0]
