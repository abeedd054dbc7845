"""Every kind of FHIR resource the reference nodes answer with, fetched from running nodes, parses
as R4: the station's CapabilityStatement, Patient read and search, the BgZ searches (with and
without matches), OperationOutcome refusals, the eOverdracht Task (published, read, updated) and
Composition, the answer to a consent notification; the vault's lifestyle Observations (read by
an app under a grant, and as recorded).

fhir.resources offers R4B models, not R4 ones; R4B is the closest release to the station's
declared fhirVersion 4.0.1 the library has (the elements used here are the same in both), so the
R4B models judge. They refuse unknown elements, e.g. STU3's Task.requester.agent."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from nodes.station import synthetic
from nodes.station.routes.bgz import BY_PATIENT
from tests.integration.conftest import Net
from tests.integration.test_vault import App, asked, decide

pytestmark = pytest.mark.integration

STATION, VAULT = "hospital-station", "welldata-vault"
GP_URA, NURSING_URA = "90000003", "90000006"
CONSENT = {"data_holder": "90000002", "requester": GP_URA, "data_category": "medical"}
FHIR_JSON = "application/fhir+json"
# Every kind of resource the station answers with (inside Bundles too), and its Bundle types.
STATION_KINDS = {
    "CapabilityStatement",
    "Patient",
    *BY_PATIENT,
    "Bundle",
    "OperationOutcome",
    "Task",
    "Composition",
}
STATION_BUNDLE_TYPES = {"searchset", "transaction-response"}
VAULT_KINDS = {"Observation"}
PATIENTS_FROM = 600  # patients of the hospital station far from those other tests and profiles use


@dataclass
class Answers:
    """FHIR answers of one node, each with where it came from."""

    bodies: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def add(self, where: str, response: httpx.Response, status: int) -> dict[str, Any]:
        assert response.status_code == status, f"{where}: {response.status_code} {response.text[:300]}"
        assert response.headers["content-type"].startswith(FHIR_JSON), f"{where}: {response.headers['content-type']}"
        body: dict[str, Any] = response.json()
        self.bodies.append((where, body))
        return body


def parse_all(answers: Answers) -> tuple[list[str], set[str], set[str]]:
    """(what failed to parse, the resource types parsed, inside Bundles too, the Bundle types)."""
    failures: list[str] = []
    kinds: set[str] = set()
    bundle_types: set[str] = set()
    for where, body in answers.bodies:
        try:
            get_fhir_model_class(body["resourceType"]).model_validate(body)
        except (ValidationError, KeyError) as exc:
            failures.append(f"{where}: {exc}")
            continue
        kinds.add(body["resourceType"])
        if body["resourceType"] == "Bundle":
            bundle_types.add(body["type"])
            kinds |= {e["resource"]["resourceType"] for e in body.get("entry", []) if "resource" in e}
    return failures, kinds, bundle_types


def patient_with_every_kind(net: Net) -> dict[str, Any]:
    """A hospital patient with a resource of every BgZ type (the generator is deterministic, so
    the station holds the same people), given consent for the GP."""
    data = synthetic.generate(net.seed, STATION, 1000)
    owners = {
        kind: {(r.get("subject") or r["patient"])["reference"] for r in data.resources[kind]} for kind in BY_PATIENT
    }
    patient = next(
        p for p in data.patients[PATIENTS_FROM:] if all(f"Patient/{p['id']}" in refs for refs in owners.values())
    )
    net.register_consent(synthetic.bsn_of(patient), "permit", **CONSENT)
    return patient


def publish_handover(net: Net, patient_id: str, receiver_ura: str) -> httpx.Response:
    return net.client.post(
        f"{net.internal(STATION)}/internal/station/v1/handovers",
        json={"patient": patient_id, "receiver_ura": receiver_ura},
    )


def status_patch(status: str) -> dict[str, Any]:
    return {
        "json": [{"op": "replace", "path": "/status", "value": status}],
        "headers": {"Content-Type": "application/json-patch+json"},
    }


@pytest.fixture(scope="module")
def station_answers(net: Net) -> Answers:
    answers, fhir = Answers(), f"{net.url(STATION)}/fhir"
    answers.add("metadata", net.client.get(f"{fhir}/metadata"), 200)
    _bgz_reads(net, answers, patient_with_every_kind(net))
    _refusals(net, answers)
    _handover(net, answers)
    notification = {"resourceType": "Bundle", "type": "transaction", "entry": [{"request": {"method": "PUT"}}]}
    with net.client_as("consent") as consent_service:  # a station takes notifications from it alone
        consent = consent_service.post(f"{fhir}/notifications/consent", json=notification)
    answers.add("consent notification", consent, 200)
    return answers


def _bgz_reads(net: Net, answers: Answers, patient: dict[str, Any]) -> None:
    fhir, bearer = f"{net.url(STATION)}/fhir", {"Authorization": f"Bearer {net.gp_token()}"}
    read = net.client.get(f"{fhir}/Patient/{patient['id']}", headers=bearer)
    answers.add("Patient read", read, 200)
    by_bsn = {"identifier": f"{synthetic.BSN_SYSTEM}|{synthetic.bsn_of(patient)}"}
    answers.add("Patient search", net.client.get(f"{fhir}/Patient", params=by_bsn, headers=bearer), 200)
    for kind in BY_PATIENT:
        search = net.client.get(f"{fhir}/{kind}", params={"patient": f"Patient/{patient['id']}"}, headers=bearer)
        assert answers.add(f"{kind} search", search, 200).get("entry"), f"{kind}: the patient has none"
    # A patient without allergies: a searchset without entries.
    data = synthetic.generate(net.seed, STATION, PATIENTS_FROM + 100)
    allergic = {a["patient"]["reference"] for a in data.resources["AllergyIntolerance"]}
    other = next(p for p in data.patients[PATIENTS_FROM + 50 :] if f"Patient/{p['id']}" not in allergic)
    net.register_consent(synthetic.bsn_of(other), "permit", **CONSENT)
    none = net.client.get(f"{fhir}/AllergyIntolerance", params={"patient": other["id"]}, headers=bearer)
    assert "entry" not in answers.add("empty search", none, 200)


def _refusals(net: Net, answers: Answers) -> None:
    fhir = f"{net.url(STATION)}/fhir"
    answers.add("no token", net.client.get(f"{fhir}/Patient/anyone"), 401)
    gp = {"Authorization": f"Bearer {net.gp_token()}"}
    answers.add("unsupported search", net.client.get(f"{fhir}/Condition", headers=gp), 400)
    answers.add("unknown patient", net.client.get(f"{fhir}/Patient/nobody", headers=gp), 404)
    answers.add("unserved type", net.client.get(f"{fhir}/Procedure", headers=gp), 404)
    answers.add("wrong method", net.client.delete(f"{fhir}/Patient/nobody", headers=gp), 405)


def _handover(net: Net, answers: Answers) -> None:
    data = synthetic.generate(net.seed, STATION, PATIENTS_FROM + 110)
    task = answers.add("published Task", publish_handover(net, data.patients[PATIENTS_FROM + 101]["id"], GP_URA), 201)
    url = f"{net.url(STATION)}/fhir/Task/{task['id']}"
    sender = {"Authorization": f"Bearer {net.gp_token('eOverdracht-sender')}"}
    answers.add("Task read", net.client.get(url, headers=sender), 200)
    composition = f"{net.url(STATION)}/fhir/{task['focus']['reference']}"
    answers.add("Composition read", net.client.get(composition, headers=sender), 200)
    patch = status_patch("accepted")
    answers.add("Task update", net.client.patch(url, json=patch["json"], headers={**sender, **patch["headers"]}), 200)
    bad = status_patch("completed-ish")
    refused = net.client.patch(url, json=bad["json"], headers={**sender, **bad["headers"]})
    answers.add("Task update refused", refused, 422)


@pytest.fixture(scope="module")
def vault_answers(net: Net) -> Answers:
    """An app reads a pod's lifestyle resources under a grant; the citizen records one."""
    response = net.request_token("welldata", subject=net.org("gp")["subject"], server_org="welldata", token_type="DPoP")
    assert response.status_code == 200, response.text
    app = App(net, response.json()["access_token"], response.json()["dpop_kid"])
    pods = net.client.get(f"{net.internal(VAULT)}/internal/vault/v1/pods", params={"limit": 100}).json()
    pod = pods[50]["id"]  # profiles use the first pods, test_vault the last 30
    assert decide(net, pod, asked(app, pod), approve=True).status_code == 200
    answers = Answers()
    recorded = net.client.post(
        f"{net.internal(VAULT)}/internal/vault/v1/pods/{pod}/lifestyle",
        json={
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}]},
            "effectiveDateTime": "2026-01-09T08:30:00+01:00",
            "valueQuantity": {"value": 80.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
        },
    )
    mine = answers.add("recorded Observation", recorded, 201)
    listing = app.call("GET", f"/pods/{pod}/lifestyle/").json()
    for member in listing["ldp:contains"]:
        name = member["@id"].rsplit("/", 1)[-1]
        answers.add(f"Observation {name}", app.call("GET", f"/pods/{pod}/lifestyle/{name}"), 200)
    assert any(where == f"Observation {mine['id']}" for where, _ in answers.bodies)
    return answers


def test_every_fhir_answer_of_the_station_parses_as_r4(station_answers: Answers) -> None:
    failures, _, _ = parse_all(station_answers)
    assert not failures, "\n".join(failures)


def test_the_station_answers_cover_every_kind_it_emits(station_answers: Answers) -> None:
    _, kinds, bundle_types = parse_all(station_answers)
    assert kinds == STATION_KINDS
    assert bundle_types == STATION_BUNDLE_TYPES


def test_every_fhir_answer_of_the_vault_parses_as_r4(vault_answers: Answers) -> None:
    failures, kinds, _ = parse_all(vault_answers)
    assert not failures, "\n".join(failures)
    assert kinds == VAULT_KINDS
    assert len(vault_answers.bodies) >= 9  # a week of steps, a weighing and the recorded one


def test_a_task_in_the_stu3_shape_would_be_caught(station_answers: Answers) -> None:
    """The check can fail: the published Task with STU3's requester.agent does not parse."""
    task = next(body for where, body in station_answers.bodies if where == "Task read")
    stu3 = {**task, "requester": {"agent": task["requester"]}}
    failures, _, _ = parse_all(Answers([("stu3 Task", stu3)]))
    assert failures and "agent" in failures[0]
