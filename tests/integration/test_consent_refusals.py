"""Every refusal of the consent service names the rule that refused it: a problem type in the
JSON APIs, an OperationOutcome coding at the FHIR subscription endpoint. A path the service
does not have answers about:blank, so a check of a rule cannot pass against a missing endpoint."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Net

pytestmark = pytest.mark.integration
PROBLEM = "urn:health-testbed:problem:"
CONSENTS = "/internal/consent/v1/consents"
QUESTION = {"data_holder": "90000002", "requester": "90000003", "data_category": "GGC002"}
FreshPatient = Callable[[], dict[str, Any]]


def problem_type(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()["type"]


def test_json_refusals_name_their_rule(net: Net, fresh_patient: FreshPatient) -> None:
    bsn = fresh_patient()["bsn"]
    internal, public = net.internal("consent"), net.url("consent")
    cases = [
        (net.client.post(f"{internal}{CONSENTS}", json={"bsn": "123456780", **QUESTION}), 422, "bsn-invalid"),
        (net.client.post(f"{internal}{CONSENTS}", json={"bsn": bsn, "decision": "maybe"}), 422, "decision-invalid"),
        (net.client.get(f"{internal}{CONSENTS}"), 400, "bsn-missing"),
        (net.client.delete(f"{internal}{CONSENTS}/no-such-choice"), 404, "consent-unknown"),
        (net.client.delete(f"{internal}/internal/consent/v1/optouts/{bsn}"), 404, "not-opted-out"),
        (net.client.post(f"{public}/consent/v1/optouts/check", json={"bsns": bsn}), 422, "bsns-invalid"),
        (net.client.post(f"{public}/consent/v1/decision", json={"bsn": bsn}), 422, "field-missing"),
        (
            net.client.post(f"{public}/consent/v1/decision", json={"bsn": bsn, **QUESTION, "requester_category": 1}),
            422,
            "field-invalid",
        ),
    ]
    for response, status, rule in cases:
        assert problem_type(response, status) == f"{PROBLEM}{rule}", rule


def test_a_second_withdrawal_is_refused_as_consent_withdrawn(net: Net, fresh_patient: FreshPatient) -> None:
    choice = net.register_consent(fresh_patient()["bsn"], **QUESTION)
    url = f"{net.internal('consent')}{CONSENTS}/{choice['id']}"
    assert net.client.delete(url).status_code == 200
    assert problem_type(net.client.delete(url), 409) == f"{PROBLEM}consent-withdrawn"


def test_a_path_the_service_does_not_have_names_no_rule(net: Net) -> None:
    response = net.client.delete(f"{net.internal('consent')}/internal/consent/v1/no-such-thing/111222333")
    assert problem_type(response, 404) == "about:blank"


def test_a_refused_subscription_is_an_operation_outcome_naming_the_rule(net: Net) -> None:
    response = net.client.post(f"{net.url('consent')}/abonnementen/fhir", json={"resourceType": "Patient"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/fhir+json")
    issue = response.json()["issue"][0]
    assert issue["code"] == "structure"
    assert issue["details"]["coding"] == [{"system": "urn:health-testbed:refusal", "code": "not-a-subscription"}]


def test_the_opt_out_check_answers_only_about_the_citizens_asked(net: Net, fresh_patient: FreshPatient) -> None:
    asked, bystander = fresh_patient()["bsn"], fresh_patient()["bsn"]
    internal, public = net.internal("consent"), net.url("consent")
    for bsn in (asked, bystander):
        assert net.client.post(f"{internal}/internal/consent/v1/optouts", json={"bsn": bsn}).status_code == 201
    try:
        check = net.client.post(f"{public}/consent/v1/optouts/check", json={"bsns": [asked, "111222333"]})
        assert check.json() == {"opted_out": [asked]}
    finally:
        for bsn in (asked, bystander):
            net.client.delete(f"{internal}/internal/consent/v1/optouts/{bsn}")
