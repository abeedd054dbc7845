"""The access body's API documents say something: answers the reference node must never give
(a catalogue that is not DCAT-AP, a credential in the applicant's view of an application, a
station's own result in a central task) are refused by them."""

from __future__ import annotations

from typing import Any

import pytest

from protocols.openapi import check_response, load_document, operations
from tests.unit.test_dcat_shapes import body_catalogue

PUBLIC = load_document("hdab-public")
APPLICATION: dict[str, Any] = {
    "id": "a",
    "status": "permitted",
    "kind": "permit",
    "applicant": {"did": "did:web:institute", "ura": "90000007", "name": "Institute"},
    "datasets": ["https://station/catalogue/datasets/records"],
    "purpose": "A study of regional prevalence",
    "analyses": ["count"],
    "validity_days": 365,
    "submitted": 1.0,
    "history": [{"status": "received", "at": 1.0}],
    "permit": {"id": "urn:uuid:1", "issuer": "did:web:hdab"},
}


def check(
    path: str, body: Any, *, method: str = "GET", status: int = 200, media: str = "application/json"
) -> list[str]:
    return check_response(PUBLIC, method=method, path=path, status=status, content_type=media, body=body)


def test_both_documents_load_and_every_operation_documents_a_success() -> None:
    for name in ("hdab-public", "hdab-internal"):
        for operation in operations(load_document(name)):
            assert any(code.startswith("2") for code in operation.spec["responses"]), operation.key


def test_the_dcat_ap_catalogue_conforms_and_the_flat_harvest_records_do_not() -> None:
    catalogue = body_catalogue()
    assert check("/hdab/v1/catalogue", catalogue, media="application/ld+json") == []
    flat = {"datasets": [{"id": "d", "individuals": 1, "station": "s", "access_rights": None}]}
    assert check("/hdab/v1/catalogue", flat, media="application/ld+json")
    without_distribution = {**catalogue, "datasets": [{**catalogue["datasets"][0], "distribution": []}]}
    assert check("/hdab/v1/catalogue", without_distribution, media="application/ld+json")


def test_the_applicants_view_of_an_application_carries_no_credential() -> None:
    assert check("/hdab/v1/applications/a", APPLICATION) == []
    leaking = {**APPLICATION, "permit": {**APPLICATION["permit"], "credential": "eyJ.x.y"}}
    assert any("permit" in problem for problem in check("/hdab/v1/applications/a", leaking))


@pytest.mark.parametrize("exposed", [False, True])
def test_a_central_task_never_shows_a_stations_own_result(exposed: bool) -> None:
    run: dict[str, Any] = {"station": "hospital", "dataset": "d", "task": "t", "status": "completed", "reason": None}
    if exposed:
        run["result"] = {"count": 12}
    task = {"id": "t", "application": "a", "analysis": {"type": "count"}, "runs": [run], "status": "completed"}
    assert bool(check("/hdab/v1/analyses", task, method="POST", status=201)) is exposed
