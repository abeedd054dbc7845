"""Malformed and refused requests get clear answers from every node, never a 500: RFC 7807
problems from the trust and consent nodes, FHIR OperationOutcomes from the data station."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from nodes.common.http import MAX_BODY_BYTES
from nodes.station.synthetic import BSN_SYSTEM
from tests.integration.conftest import Net

pytestmark = pytest.mark.integration

HOSPITAL_URA = "90000002"
GP_URA = "90000003"
MEDICAL = "medical"  # the data category the stations serve
STATION = "hospital-station"
SUBJECTS = "/internal/vdr/v2/subject"
CONSENTS = "/internal/consent/v1/consents"
FreshPatient = Callable[[], dict[str, Any]]  # the fresh_patient fixture
DECISION_DIMENSIONS = {"data_holder": HOSPITAL_URA, "requester": GP_URA, "data_category": MEDICAL}


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


def assert_outcome(response: httpx.Response, status: int, mentions: str = "") -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/fhir+json"
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    issue = body["issue"][0]
    assert issue["severity"] == "error"
    assert mentions in issue["diagnostics"], issue
    return body


def url_of(net: Net, node: str, internal: bool) -> str:
    return net.internal(node) if internal else net.url(node)


# --- the HTTP plumbing every node shares ---------------------------------------------------
@pytest.mark.parametrize(
    ("body", "says"),
    [
        pytest.param(b'{"subject": ', "not valid JSON", id="truncated"),
        pytest.param(b"\xff\xfe", "not valid JSON", id="not-utf8"),
        pytest.param(b"", "body is required", id="empty"),
        pytest.param(b'["gp"]', "must be a JSON object", id="not-an-object"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_a_400_problem(net: Net, body: bytes, says: str) -> None:
    response = net.client.post(
        f"{net.internal('gp-trust')}{SUBJECTS}", content=body, headers={"content-type": "application/json"}
    )
    assert says in assert_problem(response, 400)["detail"]


def _streamed(size: int) -> Iterator[bytes]:
    chunk = b" " * 65536
    for _ in range(size // len(chunk) + 1):
        yield chunk


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b" " * (MAX_BODY_BYTES + 1), id="declared-length"),
        pytest.param(_streamed(MAX_BODY_BYTES + 1), id="chunked"),
    ],
)
def test_a_body_over_one_megabyte_is_413(net: Net, content: Any) -> None:
    response = net.client.post(
        f"{net.internal('gp-trust')}{SUBJECTS}", content=content, headers={"content-type": "application/json"}
    )
    assert "limited" in assert_problem(response, 413)["detail"]


@pytest.mark.parametrize(
    ("node", "internal", "path"),
    [
        ("hospital-trust", False, "/no/such/path"),
        ("gp-trust", True, "/internal/vdr/v9/subject"),
        ("consent", False, "/consent/v1/nothing"),
        (STATION, True, "/internal/station/v1/nothing"),
        ("welldata-vault", False, "/pods/any-pod/medical/"),  # the vault shares its lifestyle container only
    ],
)
def test_an_unknown_path_is_a_404_problem(net: Net, node: str, internal: bool, path: str) -> None:
    response = net.client.get(f"{url_of(net, node, internal)}{path}")
    assert path in assert_problem(response, 404)["detail"]


WRONG_METHODS = [
    pytest.param("DELETE", "gp-trust", True, SUBJECTS, id="delete-subjects"),
    pytest.param("GET", "hospital-trust", False, "/oauth2/hospital/token", id="get-token"),
    pytest.param("GET", "consent", False, "/consent/v1/decision", id="get-decision"),
    # Apps only read a pod; the citizen decides with POST.
    pytest.param("DELETE", "welldata-vault", False, "/pods/any-pod/lifestyle/", id="delete-vault-container"),
    pytest.param(
        "GET", "welldata-vault", True, "/internal/vault/v1/pods/p/access-requests/r/decision", id="get-vault-decision"
    ),
]


def _oauth_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """Under /oauth2/ a refusal is an RFC 6749 (5.2) error body in application/json, as the
    Nuts v6 API documents it, never a problem document."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == "application/json"
    body = response.json()
    assert isinstance(body.get("error"), str) and isinstance(body.get("error_description"), str), body
    return body


@pytest.mark.parametrize(("method", "node", "internal", "path"), WRONG_METHODS)
def test_a_wrong_method_is_a_405_problem(net: Net, method: str, node: str, internal: bool, path: str) -> None:
    response = net.client.request(method, f"{url_of(net, node, internal)}{path}")
    if path.startswith("/oauth2/"):
        assert method in _oauth_error(response, 405)["error_description"]
    else:
        assert method in assert_problem(response, 405)["detail"]


@pytest.mark.parametrize(("method", "node", "internal", "path"), WRONG_METHODS)
def test_a_405_says_which_methods_are_allowed(net: Net, method: str, node: str, internal: bool, path: str) -> None:
    response = net.client.request(method, f"{url_of(net, node, internal)}{path}")
    assert response.status_code == 405
    assert "allow" in response.headers


# --- the token endpoint's envelope -------------------------------------------------------------
def test_the_token_endpoint_refuses_a_json_body(net: Net) -> None:
    response = net.client.post(
        f"{net.org('hospital')['authorization_server']}/token",
        json={"grant_type": "vp_token-bearer", "assertion": "x", "presentation_submission": "{}", "scope": "bgz"},
    )
    assert "x-www-form-urlencoded" in _oauth_error(response, 400)["error_description"]


def test_the_token_endpoint_refuses_a_repeated_form_field(net: Net) -> None:
    response = net.client.post(
        f"{net.org('hospital')['authorization_server']}/token",
        content=b"grant_type=vp_token-bearer&scope=bgz&scope=bgz-sender",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert "scope" in _oauth_error(response, 400)["error_description"]


def test_the_token_endpoint_of_an_unknown_subject_is_404(net: Net) -> None:
    response = net.client.post(f"{net.url('hospital-trust')}/oauth2/nobody/token", data={"grant_type": "x"})
    assert "nobody" in _oauth_error(response, 404)["error_description"]


# --- consent service ---------------------------------------------------------------------------
def register(net: Net, body: dict[str, Any]) -> httpx.Response:
    return net.client.post(f"{net.internal('consent')}{CONSENTS}", json=body)


def withdraw(net: Net, consent_id: str) -> httpx.Response:
    return net.client.delete(f"{net.internal('consent')}{CONSENTS}/{consent_id}")


def decision_of(net: Net, bsn: str, **question: str) -> str:
    response = net.consent_decision(bsn, **{**DECISION_DIMENSIONS, **question})
    assert response.status_code == 200, response.text
    return response.json()["decision"]


@pytest.mark.parametrize(
    "bsn",
    [
        pytest.param("123456789", id="fails-eleven-test"),
        pytest.param("12345678", id="eight-digits"),
        pytest.param("000000000", id="zeros"),
        pytest.param("abcdefghi", id="letters"),
        pytest.param(111222333, id="a-number"),
        pytest.param(None, id="missing"),
    ],
)
def test_registering_consent_with_an_invalid_bsn_is_422(net: Net, bsn: Any) -> None:
    assert "bsn" in assert_problem(register(net, {"bsn": bsn, "decision": "permit"}), 422)["detail"].lower()


def test_registering_consent_with_an_unknown_decision_is_422(net: Net, fresh_patient: FreshPatient) -> None:
    response = register(net, {"bsn": fresh_patient()["bsn"], "decision": "maybe"})
    assert "decision" in assert_problem(response, 422)["detail"]


def test_withdrawing_an_unknown_consent_is_404(net: Net) -> None:
    assert_problem(withdraw(net, "00000000-0000-0000-0000-000000000000"), 404)


def test_withdrawing_twice_is_409_and_the_withdrawal_counts(net: Net, fresh_patient: FreshPatient) -> None:
    bsn = fresh_patient()["bsn"]
    consent = net.register_consent(bsn, **DECISION_DIMENSIONS)
    assert decision_of(net, bsn) == "Permit"

    first, second = withdraw(net, consent["id"]), withdraw(net, consent["id"])

    assert first.status_code == 200, first.text
    assert first.json()["status"] == "withdrawn"
    assert_problem(second, 409)
    assert decision_of(net, bsn) == "Deny"
    history = net.client.get(f"{net.internal('consent')}{CONSENTS}", params={"bsn": bsn}).json()
    assert [c["status"] for c in history] == ["withdrawn"]  # kept, not deleted


@pytest.mark.parametrize("missing", ["bsn", "data_holder", "requester", "data_category"])
def test_a_decision_question_with_a_missing_field_is_422(net: Net, fresh_patient: FreshPatient, missing: str) -> None:
    question = {"bsn": fresh_patient()["bsn"], **DECISION_DIMENSIONS}
    del question[missing]
    response = net.client.post(f"{net.url('consent')}/consent/v1/decision", json=question)
    assert missing in assert_problem(response, 422)["detail"]


def test_without_consent_the_answer_is_deny(net: Net, fresh_patient: FreshPatient) -> None:
    assert decision_of(net, fresh_patient()["bsn"]) == "Deny"


def test_a_more_specific_deny_beats_a_general_permit(net: Net, fresh_patient: FreshPatient) -> None:
    bsn = fresh_patient()["bsn"]
    net.register_consent(bsn, "permit", data_holder="*", requester="*", data_category="*")
    deny = net.register_consent(bsn, "deny", **DECISION_DIMENSIONS)

    response = net.consent_decision(bsn, **DECISION_DIMENSIONS)
    assert response.json() == {"decision": "Deny", "reason": "the citizen objected", "consent_id": deny["id"]}
    assert decision_of(net, bsn, requester="90000099") == "Permit"  # the general permit still holds elsewhere


def test_a_permit_and_a_deny_equally_specific_give_deny(net: Net, fresh_patient: FreshPatient) -> None:
    bsn = fresh_patient()["bsn"]
    net.register_consent(bsn, "permit", data_holder=HOSPITAL_URA, requester="*", data_category="*")
    net.register_consent(bsn, "deny", data_holder="*", requester=GP_URA, data_category="*")

    assert decision_of(net, bsn) == "Deny"
    assert decision_of(net, bsn, requester="90000099") == "Permit"


# --- data station ------------------------------------------------------------------------------
def fhir_get(net: Net, path: str, token: str | None = None, **params: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return net.client.get(f"{net.url(STATION)}/fhir/{path}", params=params, headers=headers)


def by_bsn(bsn: str) -> dict[str, str]:
    return {"identifier": f"{BSN_SYSTEM}|{bsn}"}


def consented_patient(net: Net, fresh_patient: FreshPatient) -> dict[str, Any]:
    """A hospital patient who permits the GP to see their medical data at the hospital."""
    patient = fresh_patient()
    net.register_consent(patient["bsn"], "permit", **DECISION_DIMENSIONS)
    return patient


def test_the_capability_statement_is_open(net: Net) -> None:
    response = fhir_get(net, "metadata")
    assert response.status_code == 200
    assert response.json()["resourceType"] == "CapabilityStatement"


def test_a_search_with_consent_returns_the_patient(net: Net, fresh_patient: FreshPatient) -> None:
    patient = consented_patient(net, fresh_patient)

    response = fhir_get(net, "Patient", net.gp_token(), **by_bsn(patient["bsn"]))

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/fhir+json"
    bundle = response.json()
    assert bundle["resourceType"] == "Bundle"
    assert bundle["total"] == 1
    assert bundle["entry"][0]["resource"]["id"] == patient["id"]


def test_a_read_with_consent_returns_the_patient_and_its_conditions(net: Net, fresh_patient: FreshPatient) -> None:
    patient = consented_patient(net, fresh_patient)
    token = net.gp_token()

    read = fhir_get(net, f"Patient/{patient['id']}", token)
    conditions = fhir_get(net, "Condition", token, patient=f"Patient/{patient['id']}")

    assert read.status_code == 200, read.text
    assert read.json()["identifier"][0]["value"] == patient["bsn"]
    assert conditions.status_code == 200, conditions.text
    references = {e["resource"]["subject"]["reference"] for e in conditions.json().get("entry", [])}
    assert references <= {f"Patient/{patient['id']}"}


def test_a_search_without_consent_is_403(net: Net, fresh_patient: FreshPatient) -> None:
    assert_outcome(fhir_get(net, "Patient", net.gp_token(), **by_bsn(fresh_patient()["bsn"])), 403, "no consent")


def test_a_scope_the_station_does_not_accept_is_403(net: Net, fresh_patient: FreshPatient) -> None:
    patient = consented_patient(net, fresh_patient)
    token = net.gp_token("eOverdracht-receiver")  # in the trust node's policy, not the station's scopes
    assert net.introspect(token)["active"] is True

    assert_outcome(fhir_get(net, "Patient", token, **by_bsn(patient["bsn"])), 403, "eOverdracht-receiver")


@pytest.mark.parametrize(
    ("token", "says"),
    [
        pytest.param(None, "access token is required", id="no-token"),
        pytest.param("made-up", "not active", id="unknown"),
    ],
)
def test_a_request_without_an_active_token_is_401(
    net: Net, fresh_patient: FreshPatient, token: str | None, says: str
) -> None:
    response = fhir_get(net, "Patient", token, **by_bsn(fresh_patient()["bsn"]))
    assert_outcome(response, 401, says)
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("path", "params"),
    [
        pytest.param("Patient", {"identifier": "519149658"}, id="bsn-without-system"),
        pytest.param("Patient", {"identifier": "urn:oid:2.16.840.1.113883.2.4.6.3|519149658"}, id="other-system"),
        pytest.param("Patient", {"identifier": f"{BSN_SYSTEM}|"}, id="system-without-bsn"),
        pytest.param("Patient", {}, id="no-identifier"),
        pytest.param("Condition", {}, id="condition-without-patient"),
    ],
)
def test_an_unsupported_search_is_a_400_outcome(net: Net, path: str, params: dict[str, str]) -> None:
    assert_outcome(fhir_get(net, path, net.gp_token(), **params), 400)


def test_a_search_for_a_malformed_bsn_is_a_400_outcome(net: Net) -> None:
    assert_outcome(fhir_get(net, "Patient", net.gp_token(), **by_bsn("123")), 400)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        pytest.param("Patient/no-such-patient", {}, id="read"),
        pytest.param("Condition", {"patient": "Patient/no-such-patient"}, id="conditions"),
    ],
)
def test_an_unknown_patient_is_a_404_outcome(net: Net, path: str, params: dict[str, str]) -> None:
    assert_outcome(fhir_get(net, path, net.gp_token(), **params), 404, "no-such-patient")


@pytest.mark.parametrize(("method", "path"), [("GET", "Procedure"), ("POST", "Patient")])
def test_a_request_the_fhir_router_refuses_is_an_outcome(net: Net, method: str, path: str) -> None:
    response = net.client.request(
        method, f"{net.url(STATION)}/fhir/{path}", headers={"Authorization": f"Bearer {net.gp_token()}"}
    )
    assert response.status_code in (404, 405)
    assert_outcome(response, response.status_code)


def test_the_audit_chain_verifies_and_records_refusals(net: Net) -> None:
    before = net.client.get(f"{net.internal(STATION)}/internal/station/v1/audit/verify").json()
    assert_outcome(fhir_get(net, "Patient/audited-refusal"), 401)

    after = net.client.get(f"{net.internal(STATION)}/internal/station/v1/audit/verify").json()

    assert after["valid"] is True, after
    assert after["entries"] == before["entries"] + 1
    entries = net.client.get(f"{net.internal(STATION)}/internal/station/v1/audit").json()
    refused = [e for e in entries if e.get("resource") == "/fhir/Patient/audited-refusal"]  # tasks have none
    assert [e["outcome"] for e in refused] == [401]


def refusal_of(response: httpx.Response, status: int) -> str:
    """The rule an OperationOutcome names in its issue's details (urn:health-testbed:refusal)."""
    coding = assert_outcome(response, status)["issue"][0]["details"]["coding"][0]
    assert coding["system"] == "urn:health-testbed:refusal", coding
    return str(coding["code"])


def test_each_bgz_refusal_names_its_rule(net: Net, fresh_patient: FreshPatient) -> None:
    patient = fresh_patient()
    assert refusal_of(fhir_get(net, f"Patient/{patient['id']}"), 401) == "token-missing"
    assert refusal_of(fhir_get(net, f"Patient/{patient['id']}", "made-up"), 401) == "token-inactive"
    assert refusal_of(fhir_get(net, f"Patient/{patient['id']}", net.gp_token("secondary-use")), 403) == "token-scope"
    assert refusal_of(fhir_get(net, f"Patient/{patient['id']}", net.gp_token()), 403) == "consent-not-given"
    assert refusal_of(fhir_get(net, "Condition", net.gp_token()), 400) == "search-unsupported"
    assert refusal_of(fhir_get(net, "Condition", net.gp_token(), patient="nobody"), 404) == "patient-unknown"


def test_a_permit_for_one_patient_opens_no_other(net: Net, fresh_patient: FreshPatient) -> None:
    consented, other = consented_patient(net, fresh_patient), fresh_patient()
    token = net.gp_token()

    assert fhir_get(net, "Condition", token, patient=consented["id"]).status_code == 200
    assert refusal_of(fhir_get(net, "Condition", token, patient=other["id"]), 403) == "consent-not-given"
    assert refusal_of(fhir_get(net, "Patient", token, **by_bsn(other["bsn"])), 403) == "consent-not-given"


def test_the_audit_log_is_checked_against_an_anchor(net: Net) -> None:
    fhir_get(net, "Patient/anchored-refusal")  # at least one entry
    verify = f"{net.internal(STATION)}/internal/station/v1/audit/verify"
    newest = net.client.get(f"{net.internal(STATION)}/internal/station/v1/audit", params={"limit": 2}).json()

    held = net.client.get(verify, params={"seq": newest[-1]["seq"], "hash": newest[-1]["hash"]}).json()
    other = net.client.get(verify, params={"seq": newest[-1]["seq"], "hash": newest[-2]["hash"]}).json()
    half = net.client.get(verify, params={"seq": newest[-1]["seq"]})

    assert held["valid"] is True, held
    assert other["valid"] is False and other["reason"] == "anchor-mismatch", other
    assert assert_problem(half, 400)["type"] == "urn:health-testbed:problem:anchor-invalid"


def handover(net: Net, patient: dict[str, Any], receiver_ura: str) -> dict[str, Any]:
    response = net.client.post(
        f"{net.internal(STATION)}/internal/station/v1/handovers",
        json={"patient": patient["id"], "receiver_ura": receiver_ura},
    )
    assert response.status_code == 201, response.text
    return response.json()


def task_call(net: Net, task: dict[str, Any], token: str, status: str | None = None) -> httpx.Response:
    """Read the Task, or with `status` set its status with a JSON Patch."""
    url, headers = f"{net.url(STATION)}/fhir/Task/{task['id']}", {"Authorization": f"Bearer {token}"}
    if status is None:
        return net.client.get(url, headers=headers)
    patch = [{"op": "replace", "path": "/status", "value": status}]
    return net.client.patch(url, json=patch, headers={**headers, "Content-Type": "application/json-patch+json"})


def test_a_handover_is_for_its_owner_only_and_ends_with_the_task(net: Net, fresh_patient: FreshPatient) -> None:
    token = net.gp_token("eOverdracht-sender")
    nursing_homes = handover(net, fresh_patient(), "90000006")
    ours = handover(net, fresh_patient(), GP_URA)
    composition = f"{net.url(STATION)}/fhir/{ours['focus']['reference']}"

    assert refusal_of(task_call(net, nursing_homes, token), 403) == "task-not-yours"
    assert refusal_of(task_call(net, nursing_homes, token, "rejected"), 403) == "task-not-yours"
    assert refusal_of(task_call(net, ours, token, "completed"), 422) == "transition-invalid"
    assert task_call(net, ours, token).json()["status"] == "requested"  # the refused changes changed nothing
    assert task_call(net, ours, token, "accepted").status_code == 200
    assert task_call(net, ours, token).json()["status"] == "accepted"
    assert net.client.get(composition, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert task_call(net, ours, token, "completed").status_code == 200

    assert refusal_of(task_call(net, ours, token), 403) == "task-closed"
    assert refusal_of(task_call(net, ours, token, "in-progress"), 403) == "task-closed"
    assert refusal_of(net.client.get(composition, headers={"Authorization": f"Bearer {token}"}), 403) == "task-closed"
