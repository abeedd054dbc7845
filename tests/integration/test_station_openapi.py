"""The data station's API documents (protocols/openapi/station-public.yaml, station-internal.yaml)
hold for a running station: every operation of each document is called on the hospital's station,
answered and refused, and every answer's status, media type and body match what the document says
of that operation; every operation of both documents is exercised."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from protocols.openapi import check_request, check_response, find_operation, load_document, operations
from tests.integration.conftest import Net
from tests.integration.test_fhir_validity import STATION, patient_with_every_kind, publish_handover, status_patch

pytestmark = pytest.mark.integration

GP_URA = "90000003"


@dataclass
class Exchanges:
    """Calls to one listener, each checked against that listener's API document."""

    document: dict[str, Any]
    base: str
    client: httpx.Client
    exercised: set[str] = field(default_factory=set)
    mismatches: list[str] = field(default_factory=list)

    def call(
        self, method: str, path: str, status: int, *, client: httpx.Client | None = None, **kwargs: Any
    ) -> httpx.Response:
        response = (client or self.client).request(method, f"{self.base}{path}", **kwargs)
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text[:300]}"
        bare = urlsplit(path).path
        operation = find_operation(self.document, method=method, path=bare)
        if operation is not None:
            self.exercised.add(operation.key)
        content_type = response.headers.get("content-type")
        self.mismatches += check_response(
            self.document, method=method, path=bare, status=status, content_type=content_type, body=body_of(response)
        )
        if "json" in kwargs and response.is_success:  # a request the node took matches the document too
            sent = kwargs.get("headers", {}).get("Content-Type", "application/json")
            self.mismatches += check_request(
                self.document, method=method, path=bare, content_type=sent, body=kwargs["json"]
            )
        return response

    def unexercised(self) -> set[str]:
        return {op.key for op in operations(self.document)} - self.exercised


def body_of(response: httpx.Response) -> Any:
    """The parsed JSON for JSON media types, else the text, or None for an empty body."""
    if not response.content:
        return None
    return response.json() if "json" in response.headers.get("content-type", "") else response.text


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_of(net: Net, org: str, scope: str, server_org: str = "hospital") -> str:
    """An access token of `org` (asked at its own trust node) at `server_org`'s authorization server."""
    response = net.client.post(
        f"{net.internal(f'{org}-trust')}/internal/auth/v2/{net.org(org)['subject']}/request-service-access-token",
        json={
            "authorization_server": net.org(server_org)["authorization_server"],
            "scope": scope,
            "token_type": "Bearer",
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture(scope="module")
def public(net: Net) -> Exchanges:
    calls = Exchanges(load_document("station-public"), net.url(STATION), net.client)
    calls.call("GET", "/openapi.json", 200)
    catalogue = calls.call("GET", "/catalogue", 200).json()
    calls.call("GET", "/fhir/metadata", 200)
    _bgz(net, calls, patient_with_every_kind(net))
    _notifications(net, calls)
    _handover(net, calls)
    _analyses(net, calls, catalogue["dcat:dataset"][0]["@id"])
    return calls


def _bgz(net: Net, calls: Exchanges, patient: dict[str, Any]) -> None:
    gp = bearer(net.gp_token())
    calls.call("GET", f"/fhir/Patient/{patient['id']}", 200, headers=gp)
    calls.call("GET", f"/fhir/Patient/{patient['id']}", 401)
    calls.call("GET", "/fhir/Patient/nobody", 404, headers=gp)
    calls.call("GET", f"/fhir/Patient/{patient['id']}", 403, headers=bearer(net.gp_token("secondary-use")))
    bsn = next(i["value"] for i in patient["identifier"])
    calls.call(
        "GET", "/fhir/Patient", 200, headers=gp, params={"identifier": f"{patient['identifier'][0]['system']}|{bsn}"}
    )
    calls.call("GET", "/fhir/Patient", 400, headers=gp, params={"identifier": bsn})
    for kind in ("Condition", "MedicationStatement", "AllergyIntolerance", "Observation"):
        calls.call("GET", f"/fhir/{kind}", 200, headers=gp, params={"patient": f"Patient/{patient['id']}"})
        calls.call("GET", f"/fhir/{kind}", 404, headers=gp, params={"patient": "Patient/nobody"})
    calls.call("GET", "/fhir/Condition", 400, headers=gp)


def _notifications(net: Net, calls: Exchanges) -> None:
    fhir_json = {"Content-Type": "application/fhir+json"}
    notification = {"resourceType": "Bundle", "type": "transaction", "entry": [{"request": {"method": "PUT"}}]}
    with net.client_as("consent") as consent_service:  # the one caller a station takes notifications from
        calls.call(
            "POST", "/fhir/notifications/consent", 200, client=consent_service, json=notification, headers=fhir_json
        )
        calls.call(
            "POST",
            "/fhir/notifications/consent",
            400,
            client=consent_service,
            json={"resourceType": "Bundle", "type": "batch"},
        )
    calls.call("POST", "/fhir/notifications/consent", 403, json=notification, headers=fhir_json)  # the harness's own
    receiver = bearer(net.gp_token("eOverdracht-receiver"))
    calls.call("POST", "/fhir/notifications/eoverdracht/some-task", 202, headers=receiver)
    calls.call("POST", "/fhir/notifications/eoverdracht/some-task", 400, headers=receiver, content=b"{}")
    calls.call("POST", "/fhir/notifications/eoverdracht/some-task", 401)


def _handover(net: Net, calls: Exchanges) -> None:
    patients = net.client.get(
        f"{net.internal(STATION)}/internal/station/v1/patients", params={"limit": 2, "offset": 700}
    )
    mine, theirs = (p["id"] for p in patients.json())
    task = publish_handover(net, mine, GP_URA).json()
    other = publish_handover(net, theirs, "90000006").json()
    sender = bearer(net.gp_token("eOverdracht-sender"))
    calls.call("GET", f"/fhir/Task/{task['id']}", 200, headers=sender)
    calls.call("GET", f"/fhir/Task/{other['id']}", 403, headers=sender)
    calls.call("GET", "/fhir/Task/nothing", 404, headers=sender)
    calls.call("GET", f"/fhir/Task/{task['id']}", 401)
    calls.call("GET", f"/fhir/{task['focus']['reference']}", 200, headers=sender)
    calls.call("GET", f"/fhir/{other['focus']['reference']}", 403, headers=sender)
    calls.call("GET", f"/fhir/{task['focus']['reference']}", 401)
    patch = status_patch("accepted")
    calls.call("PATCH", f"/fhir/Task/{task['id']}", 422, **_patched(sender, status_patch("completed-ish")))
    calls.call("PATCH", f"/fhir/Task/{task['id']}", 400, headers=sender, content=b"[]")
    calls.call("PATCH", f"/fhir/Task/{other['id']}", 403, **_patched(sender, patch))
    calls.call("PATCH", "/fhir/Task/nothing", 404, **_patched(sender, patch))
    calls.call("PATCH", f"/fhir/Task/{task['id']}", 401, json=patch["json"])
    calls.call("PATCH", f"/fhir/Task/{task['id']}", 200, **_patched(sender, patch))


def _patched(headers: dict[str, str], patch: dict[str, Any]) -> dict[str, Any]:
    return {"json": patch["json"], "headers": {**headers, **patch["headers"]}}


def _analyses(net: Net, calls: Exchanges, dataset: str) -> None:
    user = bearer(net.gp_token("secondary-use"))
    count = {"type": "count", "dataset": dataset}
    done = calls.call(
        "POST", "/analysis/v1/task", 201, headers=user, json={"permit": _permit(net, dataset), "analysis": count}
    )
    refused = calls.call(
        "POST", "/analysis/v1/task", 403, headers=user, json={"permit": "not.a.jwt", "analysis": count}
    )
    assert refused.json()["status"] == "not allowed"
    calls.call("POST", "/analysis/v1/task", 400, headers=user, json={"analysis": count})
    calls.call("POST", "/analysis/v1/task", 422, headers=user, json={"permit": "x", "analysis": {"type": "records"}})
    calls.call("POST", "/analysis/v1/task", 401, json={"permit": "x", "analysis": count})
    calls.call(
        "POST", "/analysis/v1/task", 403, headers=bearer(net.gp_token()), json={"permit": "x", "analysis": count}
    )
    for task in (done.json(), refused.json()):
        calls.call("GET", f"/analysis/v1/task/{task['id']}", 200, headers=user)
        calls.call("GET", "/analysis/v1/result", 200, headers=user, params={"task_id": task["id"]})
    calls.call("GET", "/analysis/v1/task/nothing", 404, headers=user)
    calls.call("GET", "/analysis/v1/task/nothing", 401)
    calls.call("GET", "/analysis/v1/task/nothing", 403, headers=bearer(net.gp_token()))
    calls.call("GET", "/analysis/v1/result", 404, headers=user, params={"task_id": "nothing"})
    calls.call("GET", "/analysis/v1/result", 401, params={"task_id": "nothing"})
    calls.call("GET", "/analysis/v1/result", 403, headers=bearer(net.gp_token()), params={"task_id": "x"})
    calls.call("GET", "/analysis/v1/audit", 200, headers=bearer(token_of(net, "hdab", "permit-audit")))
    calls.call(
        "GET", "/analysis/v1/audit", 400, headers=bearer(token_of(net, "hdab", "permit-audit")), params={"limit": "x"}
    )
    calls.call("GET", "/analysis/v1/audit", 401)
    calls.call("GET", "/analysis/v1/audit", 403, headers=user)


def _permit(net: Net, dataset: str) -> str:
    """A data permit from the access body's trust node for the GP to count in `dataset`."""
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    response = net.client.post(
        f"{net.internal('hdab-trust')}/internal/vcr/v2/issuer/vc",
        json={
            "type": "DataPermitCredential",
            "issuer": net.org("hdab")["did"],
            "credentialSubject": {
                "id": net.org("gp")["did"],
                "kind": "permit",
                "datasets": [dataset],
                "purpose": "Checking the station's API document",
                "analyses": ["count"],
            },
            "expirationDate": expires,
            "format": "jwt_vc",
            "withStatusList2021Revocation": True,
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json())


@pytest.fixture(scope="module")
def internal(net: Net) -> Exchanges:
    calls = Exchanges(load_document("station-internal"), net.internal(STATION), net.client)
    v1 = "/internal/station/v1"
    for path in ("/openapi.json", "/health", "/status", f"{v1}/notifications", f"{v1}/handovers/notifications"):
        calls.call("GET", path, 200)
    calls.call("GET", f"{v1}/patients", 200, params={"limit": 3, "offset": 5})
    calls.call("GET", f"{v1}/patients", 400, params={"limit": "many"})
    calls.call("GET", f"{v1}/audit", 200, params={"limit": 5})
    calls.call("GET", f"{v1}/audit", 400, params={"limit": "-1"})
    newest = calls.call("GET", f"{v1}/audit", 200, params={"limit": 1}).json()[-1]
    calls.call("GET", f"{v1}/audit/verify", 200)
    calls.call("GET", f"{v1}/audit/verify", 200, params={"seq": newest["seq"], "hash": newest["hash"]})
    calls.call("GET", f"{v1}/audit/verify", 400, params={"seq": newest["seq"]})
    calls.call("GET", f"{v1}/tasks", 200)
    calls.call("GET", f"{v1}/tasks", 400, params={"limit": "all"})
    patient = calls.call("GET", f"{v1}/patients", 200, params={"limit": 1, "offset": 710}).json()[0]
    calls.call("POST", f"{v1}/handovers", 201, json={"patient": patient["id"], "receiver_ura": GP_URA})
    calls.call("POST", f"{v1}/handovers", 404, json={"patient": "nobody", "receiver_ura": GP_URA})
    calls.call("POST", f"{v1}/handovers", 422, json={"patient": patient["id"], "receiver_ura": "12"})
    calls.call("POST", f"{v1}/handovers", 400, content=b"{")
    return calls


def test_every_public_answer_matches_the_document(public: Exchanges) -> None:
    assert not public.mismatches, "\n".join(public.mismatches)


def test_every_public_operation_is_exercised(public: Exchanges) -> None:
    assert not public.unexercised(), public.unexercised()


def test_every_internal_answer_matches_the_document(internal: Exchanges) -> None:
    assert not internal.mismatches, "\n".join(internal.mismatches)


def test_every_internal_operation_is_exercised(internal: Exchanges) -> None:
    assert not internal.unexercised(), internal.unexercised()


def test_the_station_serves_its_documents(net: Net) -> None:
    for base, name in ((net.url(STATION), "station-public"), (net.internal(STATION), "station-internal")):
        assert net.client.get(f"{base}/openapi.json").json() == load_document(name)


def test_a_mismatch_is_caught() -> None:
    """The check can fail: a Task in the STU3 shape is not what the public document describes."""
    task = {
        "resourceType": "Task",
        "id": "t",
        "status": "requested",
        "intent": "order",
        "for": {"reference": "Patient/p"},
        "focus": {"reference": "Composition/c"},
        "requester": {"agent": {"identifier": {"system": "http://fhir.nl/fhir/NamingSystem/ura", "value": "1"}}},
        "owner": {"identifier": {"system": "http://fhir.nl/fhir/NamingSystem/ura", "value": "2"}},
        "authoredOn": "2026-01-01T00:00:00Z",
    }
    problems = check_response(
        load_document("station-public"),
        method="GET",
        path="/fhir/Task/t",
        status=200,
        content_type="application/fhir+json",
        body=task,
    )
    assert problems and "requester" in problems[0]
