"""The access body's API documents (protocols/openapi/hdab-public.yaml, hdab-internal.yaml) held
against the real node: every operation either document lists is called on the live body, its
answers (refusals too) are checked against the document, and the last test asserts that no
operation of either document was left out."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from protocols.openapi import check_response, find_operation, load_document, operations
from tests.integration.conftest import Net
from tests.integration.test_hdab_http import BODY, apply, public, token, transition

pytestmark = pytest.mark.integration

DOCUMENTS = ("hdab-public", "hdab-internal")
EXERCISED: dict[str, set[str]] = {name: set() for name in DOCUMENTS}


def conforms(name: str, response: httpx.Response, status: int) -> Any:
    """Assert the answer has the expected status and matches document `name`; note the operation."""
    assert response.status_code == status, response.text
    document = load_document(name)
    method, path = response.request.method, response.request.url.path
    operation = find_operation(document, method=method, path=path)
    assert operation is not None, f"{method} {path} is not in {name}"
    content_type = response.headers.get("content-type")
    body = response.json() if response.content else None
    assert check_response(document, method=method, path=path, status=status, content_type=content_type, body=body) == []
    EXERCISED[name].add(operation.key)
    return body


def internal(net: Net, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return net.client.request(method, f"{net.internal(BODY)}{path}", **kwargs)


def decided(net: Net, bearer: str, kind: str = "permit") -> dict[str, Any]:
    """A new application taken through to its decision (permitted, or approved for a data request)."""
    application = apply(net, bearer, kind=kind)
    for state in ("completeness-check", "assessment"):
        conforms("hdab-internal", transition(net, application, state), 200)
    to = "permitted" if kind == "permit" else "approved"
    return dict(conforms("hdab-internal", transition(net, application, to), 200))


@pytest.fixture(scope="module")
def institute(net: Net) -> str:
    return token(net, "institute")


def test_the_documents_are_served_by_their_listeners(net: Net) -> None:
    served = conforms("hdab-public", net.client.get(f"{net.url(BODY)}/openapi.json"), 200)
    assert served == load_document("hdab-public")
    assert conforms("hdab-internal", internal(net, "GET", "/openapi.json"), 200) == load_document("hdab-internal")


def test_node_operations(net: Net) -> None:
    assert conforms("hdab-internal", internal(net, "GET", "/health"), 200) == {"status": "UP"}
    assert conforms("hdab-internal", internal(net, "GET", "/status"), 200)["role"] == "hdab"
    assert conforms("hdab-internal", internal(net, "GET", "/status/diagnostics"), 200)["testbed"]["role"] == "hdab"


def test_harvest_and_catalogue(net: Net) -> None:
    report = conforms("hdab-internal", internal(net, "POST", "/internal/hdab/v1/harvest"), 200)
    assert report["failed"] == [] and report["datasets"] == 3
    catalogue = conforms("hdab-public", public(net, "GET", "/hdab/v1/catalogue", None), 200)
    assert {d["id"] for d in catalogue["datasets"]} == {d for h in report["harvested"] for d in h["datasets"]}


def test_submit_and_read_an_application(net: Net, institute: str) -> None:
    form = {"datasets": ["d"], "purpose": "Regional study of heart failure", "analyses": ["count"]}
    application = conforms("hdab-public", public(net, "POST", "/hdab/v1/applications", institute, json=form), 201)
    path = f"/hdab/v1/applications/{application['id']}"
    assert conforms("hdab-public", public(net, "GET", path, institute), 200)["status"] == "received"
    conforms("hdab-public", public(net, "POST", "/hdab/v1/applications", institute, json={"datasets": []}), 422)
    conforms("hdab-public", public(net, "POST", "/hdab/v1/applications", institute, json=[1]), 400)
    conforms("hdab-public", public(net, "POST", "/hdab/v1/applications", None, json=form), 401)
    conforms("hdab-public", public(net, "GET", path, token(net, "institute", "secondary-use")), 403)
    conforms("hdab-public", public(net, "GET", path, token(net, "gp")), 404)
    listed = conforms("hdab-internal", internal(net, "GET", "/internal/hdab/v1/applications"), 200)
    assert application["id"] in {a["id"] for a in listed}


def test_decisions_and_their_refusals(net: Net, institute: str) -> None:
    application = apply(net, institute)
    conforms("hdab-internal", transition(net, application, "permitted"), 409)
    unknown = internal(net, "POST", "/internal/hdab/v1/applications/none/transition", json={"to": "assessment"})
    conforms("hdab-internal", unknown, 404)
    conforms(
        "hdab-internal", internal(net, "POST", f"/internal/hdab/v1/applications/{application['id']}/transition"), 400
    )
    conforms("hdab-internal", internal(net, "GET", f"/internal/hdab/v1/applications/{application['id']}/audit"), 409)
    revoke = internal(net, "POST", f"/internal/hdab/v1/applications/{application['id']}/revoke", json={})
    conforms("hdab-internal", revoke, 409)


def test_withdrawal(net: Net, institute: str) -> None:
    application = apply(net, institute)
    path = f"/hdab/v1/applications/{application['id']}/withdraw"
    assert conforms("hdab-public", public(net, "POST", path, institute), 200)["status"] == "withdrawn"
    conforms("hdab-public", public(net, "POST", path, institute), 409)
    conforms("hdab-public", public(net, "POST", "/hdab/v1/applications/none/withdraw", institute), 404)


def test_permit_analysis_audit_and_revocation(net: Net, institute: str) -> None:
    application = decided(net, institute)
    permit_path = f"/hdab/v1/applications/{application['id']}/permit"
    assert conforms("hdab-public", public(net, "GET", permit_path, institute), 200).startswith("ey")
    # The application as its user reads it names the permit, without the credential.
    read = conforms("hdab-public", public(net, "GET", f"/hdab/v1/applications/{application['id']}", institute), 200)
    assert read["permit"]["id"] == application["permit"]["id"] and "credential" not in read["permit"]
    task = {"application": application["id"], "analysis": {"type": "count", "dataset": "any"}}
    ran = conforms("hdab-public", public(net, "POST", "/hdab/v1/analyses", institute, json=task), 201)
    assert ran["status"] == "completed" and all("result" not in run for run in ran["runs"])
    wrong = {**task, "analysis": {"type": "records"}}
    conforms("hdab-public", public(net, "POST", "/hdab/v1/analyses", institute, json=wrong), 422)
    audit = conforms(
        "hdab-internal", internal(net, "GET", f"/internal/hdab/v1/applications/{application['id']}/audit"), 200
    )
    assert audit["permit"] == application["permit"]["id"] and audit["stations"]
    revoke = internal(
        net, "POST", f"/internal/hdab/v1/applications/{application['id']}/revoke", json={"reason": "ended"}
    )
    assert conforms("hdab-internal", revoke, 200)["status"] == "revoked"
    conforms("hdab-public", public(net, "GET", permit_path, institute), 404)
    conforms("hdab-public", public(net, "POST", "/hdab/v1/analyses", institute, json=task), 403)
    conforms("hdab-public", public(net, "POST", "/hdab/v1/analyses", institute, json={"analysis": {}}), 404)


def test_a_data_request_shows_no_credential_anywhere(net: Net, institute: str) -> None:
    application = decided(net, institute, kind="data-request")
    read = conforms("hdab-public", public(net, "GET", f"/hdab/v1/applications/{application['id']}", institute), 200)
    assert read["status"] == "approved" and "credential" not in read["permit"]
    conforms("hdab-public", public(net, "GET", f"/hdab/v1/applications/{application['id']}/permit", institute), 404)


def test_every_operation_of_both_documents_was_exercised() -> None:
    for name in DOCUMENTS:
        listed = {operation.key for operation in operations(load_document(name))}
        assert listed - EXERCISED[name] == set(), f"{name}: operations no test called"
