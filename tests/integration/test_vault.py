"""The vault reference node over HTTPS: every refusal names its rule (problem type and a
challenge in the DPoP scheme only), the citizen's decisions and revocations act once and on
their own pod only, and recorded measurements and reads show in the container and the audit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import VAULT_MEASUREMENT as MEASUREMENT
from tests.integration.conftest import Net

pytestmark = pytest.mark.integration

VAULT = "welldata-vault"
APP = "gp"  # any organisation of the network can act as an app
PURPOSE = "Personal advice on physical activity in the prevention programme"
PROBLEM = "urn:health-testbed:problem:"


class App:
    """An app with a DPoP-bound welldata token; every call gets a fresh proof from its trust node."""

    def __init__(self, net: Net, token: str, kid: str):
        self.net, self.token, self.kid = net, token, kid

    def proof(self, method: str, url: str, token: str | None = None) -> str:
        response = self.net.client.post(
            f"{self.net.internal('gp-trust')}/internal/auth/v2/dpop/{quote(self.kid, safe='')}",
            json={"htm": method, "htu": url, "token": token or self.token},
        )
        assert response.status_code == 200, response.text
        return response.json()["dpop"]

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = f"{self.net.url(VAULT)}{path}"
        headers = {"Authorization": f"DPoP {self.token}", "DPoP": self.proof(method, url)}
        return self.net.client.request(method, url, headers=headers, **kwargs)


@pytest.fixture(scope="module")
def app(net: Net) -> App:
    response = net.request_token("welldata", subject=net.org(APP)["subject"], server_org="welldata", token_type="DPoP")
    assert response.status_code == 200, response.text
    return App(net, response.json()["access_token"], response.json()["dpop_kid"])


@pytest.fixture(scope="module")
def _pods(net: Net) -> Iterator[str]:
    response = net.client.get(f"{net.internal(VAULT)}/internal/vault/v1/pods", params={"limit": 100})
    assert response.status_code == 200, response.text
    return iter([p["id"] for p in response.json()][-30:])  # the last ones: profiles use the first


@pytest.fixture
def pod(_pods: Iterator[str]) -> str:
    """A pod no other test of this module has used."""
    return next(_pods)


def internal(net: Net, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return net.client.request(method, f"{net.internal(VAULT)}/internal/vault/v1{path}", **kwargs)


def refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == f"{PROBLEM}{code}", body
    return body


def ask(app: App, pod: str, **body: Any) -> httpx.Response:
    return app.call("POST", f"/pods/{pod}/access-requests", json={"container": "lifestyle", "purpose": PURPOSE, **body})


def asked(app: App, pod: str) -> str:
    response = ask(app, pod)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def decide(net: Net, pod: str, request_id: str, **decision: Any) -> httpx.Response:
    return internal(net, "POST", f"/pods/{pod}/access-requests/{request_id}/decision", json=decision)


def revoke(net: Net, pod: str, request_id: str) -> httpx.Response:
    return internal(net, "POST", f"/pods/{pod}/access-requests/{request_id}/revoke")


def test_without_a_token_the_challenge_names_dpop_only(net: Net, pod: str) -> None:
    response = net.client.get(f"{net.url(VAULT)}/pods/{pod}/lifestyle/")
    refused(response, 401, "token-missing")
    assert response.headers["www-authenticate"] == 'DPoP algs="ES256"'


def test_an_unbound_token_is_refused_with_either_scheme(net: Net, app: App, pod: str) -> None:
    bearer_answer = net.request_token("welldata", subject=net.org(APP)["subject"], server_org="welldata")
    bearer = bearer_answer.json()["access_token"]
    url = f"{net.url(VAULT)}/pods/{pod}/lifestyle/"

    as_bearer = net.client.get(url, headers={"Authorization": f"Bearer {bearer}"})
    as_dpop = net.client.get(url, headers={"Authorization": f"DPoP {bearer}", "DPoP": app.proof("GET", url, bearer)})

    for response in (as_bearer, as_dpop):
        refused(response, 401, "dpop-required")
        assert response.headers["www-authenticate"].startswith('DPoP error="invalid_token"')


def test_a_request_states_a_purpose_and_names_the_shared_container(app: App, pod: str) -> None:
    refused(ask(app, pod, purpose="health"), 422, "purpose-missing")
    refused(ask(app, pod, container="medical"), 422, "container-not-shared")
    response = ask(app, pod, container=f"{app.net.url(VAULT)}/pods/{pod}/lifestyle/")
    assert response.status_code == 201, response.text
    assert response.headers["location"].endswith(f"/pods/{pod}/access-requests/{response.json()['id']}")


def test_the_refusal_follows_the_state_of_the_apps_newest_request(net: Net, app: App, pod: str) -> None:
    container = f"/pods/{pod}/lifestyle/"
    refused(app.call("GET", container), 403, "access-not-granted")
    first = asked(app, pod)
    refused(app.call("GET", container), 403, "access-not-granted")
    assert decide(net, pod, first, approve=True).status_code == 200
    assert app.call("GET", container).status_code == 200
    assert revoke(net, pod, first).status_code == 200
    refused(app.call("GET", container), 403, "access-revoked")
    second = asked(app, pod)
    assert decide(net, pod, second, approve=False).status_code == 200
    refused(app.call("GET", container), 403, "access-denied")


def test_a_decision_is_made_once_and_only_as_yes_or_no(net: Net, app: App, pod: str) -> None:
    request_id = asked(app, pod)
    refused(decide(net, pod, request_id, approve="yes"), 422, "decision-invalid")
    refused(decide(net, pod, request_id, approve=True, valid_days=0), 422, "decision-invalid")
    assert decide(net, pod, request_id, approve=False).json()["status"] == "denied"
    refused(decide(net, pod, request_id, approve=True), 409, "already-decided")
    refused(revoke(net, pod, request_id), 409, "nothing-to-revoke")
    refused(app.call("GET", f"/pods/{pod}/access-requests/{request_id}/grant"), 404, "grant-not-issued")


def test_decisions_under_another_pod_change_nothing(net: Net, app: App, pod: str, _pods: Iterator[str]) -> None:
    other = next(_pods)
    request_id = asked(app, pod)
    refused(decide(net, other, request_id, approve=True), 404, "access-request-not-found")
    listed = internal(net, "GET", f"/pods/{pod}/access-requests").json()
    assert (listed[0]["id"], listed[0]["status"]) == (request_id, "requested")
    assert decide(net, pod, request_id, approve=True).status_code == 200
    refused(revoke(net, other, request_id), 404, "access-request-not-found")
    assert revoke(net, pod, request_id).json()["status"] == "revoked"
    refused(revoke(net, pod, request_id), 409, "nothing-to-revoke")


def test_the_citizens_list_is_newest_first(net: Net, app: App, pod: str) -> None:
    first, second = asked(app, pod), asked(app, pod)
    listed = internal(net, "GET", f"/pods/{pod}/access-requests").json()
    assert [r["id"] for r in listed[:2]] == [second, first]
    assert listed[0]["requester_ura"] == net.org(APP)["ura"]


def test_a_recorded_measurement_is_listed_and_read_and_the_reads_audited(net: Net, app: App, pod: str) -> None:
    without_value = {**MEASUREMENT, "valueQuantity": {}}
    refused(internal(net, "POST", f"/pods/{pod}/lifestyle", json=without_value), 422, "observation-invalid")
    recorded = internal(net, "POST", f"/pods/{pod}/lifestyle", json=MEASUREMENT)
    assert recorded.status_code == 201, recorded.text
    name = recorded.json()["id"]
    request_id = asked(app, pod)
    assert decide(net, pod, request_id, approve=True).status_code == 200

    container = app.call("GET", f"/pods/{pod}/lifestyle/").json()
    read = app.call("GET", f"/pods/{pod}/lifestyle/{name}")
    refused(app.call("GET", f"/pods/{pod}/lifestyle/no-such-measurement"), 404, "resource-not-found")

    assert {"@id": f"{net.url(VAULT)}/pods/{pod}/lifestyle/{name}"} in container["ldp:contains"]
    assert read.json()["valueQuantity"]["value"] == 9000
    audit = internal(net, "GET", "/audit", params={"pod": pod}).json()
    assert {e["pod"] for e in audit} == {pod}
    assert [(e["resource"], e["outcome"]) for e in audit[-2:]] == [(name, 200), ("no-such-measurement", 404)]
    assert revoke(net, pod, request_id).status_code == 200
