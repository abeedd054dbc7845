"""The access body's refusals against the real node processes: each is an RFC 9457 problem whose
type names the rule that refused, so a client (and a conformance check) can tell one from
another and from a generic error."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from nodes.common.http import PROBLEM_TYPE_PREFIX
from tests.integration.conftest import Net

pytestmark = pytest.mark.integration

BODY = "hdab"
PURPOSE = "Study of the regional burden of heart failure in the elderly"


def token(net: Net, subject: str, scope: str = "data-access") -> str:
    """An access token of `subject` (from its own trust node) at the access body."""
    body = {"authorization_server": net.org("hdab")["authorization_server"], "scope": scope, "token_type": "Bearer"}
    response = net.client.post(
        f"{net.internal(f'{subject}-trust')}/internal/auth/v2/{subject}/request-service-access-token", json=body
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def refused(response: httpx.Response, status: int, rule: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == PROBLEM_TYPE_PREFIX + rule, problem
    assert problem["status"] == status and problem["detail"]
    return problem


def public(net: Net, method: str, path: str, bearer: str | None, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return net.client.request(method, f"{net.url(BODY)}{path}", headers=headers, **kwargs)


def apply(net: Net, bearer: str, **form: Any) -> dict[str, Any]:
    dataset = net.client.get(f"{net.url(BODY)}/hdab/v1/catalogue").json()["datasets"][0]["id"]
    response = public(
        net,
        "POST",
        "/hdab/v1/applications",
        bearer,
        json={"datasets": [dataset], "purpose": PURPOSE, "analyses": ["count"], **form},
    )
    assert response.status_code == 201, response.text
    return response.json()


def transition(net: Net, application: dict[str, Any], to: str) -> httpx.Response:
    return net.client.post(
        f"{net.internal(BODY)}/internal/hdab/v1/applications/{application['id']}/transition", json={"to": to}
    )


@pytest.fixture(scope="module")
def institute(net: Net) -> str:
    return token(net, "institute")


def test_an_application_without_a_purpose_is_refused_naming_what_is_missing(net: Net, institute: str) -> None:
    response = public(net, "POST", "/hdab/v1/applications", institute, json={"datasets": ["d"], "analyses": ["count"]})
    assert refused(response, 422, "application-incomplete")["missing"] == ["purpose"]


def test_a_request_without_a_token_names_the_missing_token(net: Net) -> None:
    refused(public(net, "POST", "/hdab/v1/analyses", None, json={}), 401, "token-missing")


def test_a_token_of_another_scope_is_refused_with_its_rule(net: Net) -> None:
    response = public(net, "GET", "/hdab/v1/applications/any", token(net, "institute", "secondary-use"))
    refused(response, 403, "token-scope")
    assert "insufficient_scope" in response.headers["www-authenticate"]


def test_another_users_application_is_as_unknown_as_one_that_does_not_exist(net: Net, institute: str) -> None:
    application = apply(net, institute)
    other = token(net, "gp")
    hidden = refused(
        public(net, "GET", f"/hdab/v1/applications/{application['id']}", other), 404, "application-not-found"
    )
    unknown = refused(public(net, "GET", "/hdab/v1/applications/no-such-id", other), 404, "application-not-found")
    assert hidden["title"] == unknown["title"]
    assert public(net, "GET", f"/hdab/v1/applications/{application['id']}", institute).status_code == 200


def test_an_analysis_naming_no_application_is_as_unknown_as_another_users(net: Net, institute: str) -> None:
    for named in ({}, {"application": "no-such-application"}):
        task = {**named, "analysis": {"type": "count", "dataset": "any"}}
        refused(public(net, "POST", "/hdab/v1/analyses", institute, json=task), 404, "application-not-found")


def test_refused_transitions_name_their_rule(net: Net, institute: str) -> None:
    application = apply(net, institute)
    refused(transition(net, application, "permitted"), 409, "transition-out-of-order")
    assert transition(net, application, "rejected").status_code == 200
    refused(transition(net, application, "completeness-check"), 409, "application-closed")
    withdrawal = public(net, "POST", f"/hdab/v1/applications/{application['id']}/withdraw", institute)
    refused(withdrawal, 409, "application-closed")


def test_no_analysis_and_no_permit_before_a_decision(net: Net, institute: str) -> None:
    application = apply(net, institute)
    task = {"application": application["id"], "analysis": {"type": "count", "dataset": "any"}}
    analysis = public(net, "POST", "/hdab/v1/analyses", institute, json=task)
    assert refused(analysis, 403, "no-valid-permit")["state"] == "received"
    permit = public(net, "GET", f"/hdab/v1/applications/{application['id']}/permit", institute)
    assert refused(permit, 404, "no-valid-permit")["state"] == "received"


def test_an_approved_data_request_hands_its_user_no_credential(net: Net, institute: str) -> None:
    application = apply(net, institute, kind="data-request")
    for state in ("completeness-check", "assessment"):
        assert transition(net, application, state).status_code == 200
    refused(transition(net, application, "permitted"), 409, "decision-kind")
    assert transition(net, application, "approved").status_code == 200
    permit = public(net, "GET", f"/hdab/v1/applications/{application['id']}/permit", institute)
    assert refused(permit, 404, "no-valid-permit")["state"] == "approved"
    withdrawal = public(net, "POST", f"/hdab/v1/applications/{application['id']}/withdraw", institute)
    refused(withdrawal, 409, "application-decided")
