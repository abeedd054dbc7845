"""The vault's rules that need no network: which refusal an app gets for the state of its
requests, the DPoP-only challenges, and what a recorded measurement must hold."""

import pytest

from nodes.common.http import HttpError
from nodes.vault import access, lifestyle
from nodes.vault.auth import dpop_only
from tests.conftest import VAULT_MEASUREMENT as MEASUREMENT

NOW = 1_000_000.0


def request(status, asked=1.0, expires=NOW + 60):
    found = {"id": f"r{asked}", "status": status, "asked": asked}
    if status in ("approved", "revoked"):
        found["grant"] = {"expires": expires}
    return found


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (None, "access-not-granted"),
        ("requested", "access-not-granted"),
        ("denied", "access-denied"),
        ("revoked", "access-revoked"),
        ("approved", "access-expired"),  # an approved request that opens nothing has expired
    ],
)
def test_each_state_of_the_newest_request_names_its_own_refusal(status, code):
    refused = access.refusal(None if status is None else request(status))
    assert (refused.status, refused.code) == (403, code)


def test_only_an_approved_unexpired_request_is_in_force():
    assert access.in_force(request("approved"), NOW)
    assert not access.in_force(request("approved", expires=NOW), NOW)
    assert not access.in_force(request("revoked"), NOW)
    assert not access.in_force(request("denied"), NOW)


def test_the_newest_request_decides_the_refusal():
    older, newer = request("revoked", asked=1.0), request("requested", asked=2.0)
    assert access.newest([newer, older]) is newer
    assert access.newest([]) is None


@pytest.mark.parametrize(
    ("named", "shared"),
    [
        (None, True),
        ("lifestyle", True),
        ("https://vault/pods/p/lifestyle/", True),
        ("https://vault/pods/p/lifestyle", True),
        ("medical", False),
        ("https://vault/pods/other/lifestyle/", False),
    ],
)
def test_a_request_names_the_lifestyle_container_by_name_or_url(named, shared):
    assert access.container_named(named, "lifestyle", "https://vault/pods/p/lifestyle/") is shared


@pytest.mark.parametrize(
    ("code", "challenge"),
    [
        ("token-missing", 'DPoP algs="ES256"'),
        ("token-inactive", 'DPoP error="invalid_token", algs="ES256"'),
        ("token-scope", 'DPoP error="insufficient_scope", algs="ES256"'),
    ],
)
def test_the_vault_challenges_with_the_dpop_scheme_only(code, challenge):
    shared = HttpError(401, "Unauthorized", "x", headers={"WWW-Authenticate": 'Bearer error="x"'}, code=code)
    answered = dpop_only(shared)
    assert answered.headers["WWW-Authenticate"] == challenge
    assert answered.code == code


def test_an_unbound_token_with_the_dpop_scheme_is_dpop_required():
    shared = HttpError(401, "Unauthorized", "use Bearer", code="token-not-dpop-bound")
    answered = dpop_only(shared)
    assert answered.code == "dpop-required"
    assert answered.headers["WWW-Authenticate"].startswith("DPoP ")


def test_proof_refusals_keep_their_challenge():
    shared = HttpError(401, "Unauthorized", "x", headers={"WWW-Authenticate": "DPoP y"}, code="dpop-proof-invalid")
    assert dpop_only(shared) is shared


def test_a_recorded_measurement_gets_a_name_and_its_pod():
    recorded = lifestyle.recorded("pod-1", dict(MEASUREMENT, id="chosen-by-client", subject={"reference": "x"}))
    assert recorded["id"].startswith("recorded-") and recorded["id"] != "chosen-by-client"
    assert recorded["subject"] == {"display": "owner of pod pod-1"}


def test_a_measurement_with_a_category_and_a_zoned_time_is_kept():
    category = [
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "activity"}]}
    ]
    recorded = lifestyle.recorded(
        "pod-1", dict(MEASUREMENT, category=category, effectiveDateTime="2026-01-08T10:00:00Z")
    )
    assert recorded["category"] == category and recorded["effectiveDateTime"] == "2026-01-08T10:00:00Z"


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"resourceType": "Patient"}, "Observation"),
        ({"status": "done"}, "status"),
        ({"code": {"coding": []}}, "code.coding"),
        ({"valueQuantity": {"value": "9000"}}, "valueQuantity"),
        ({"valueQuantity": {"value": True}}, "valueQuantity"),
        ({"effectiveDateTime": None}, "effectiveDateTime"),
        # What the vault could not pass on as valid R4 is refused, not kept.
        ({"effectiveDateTime": "last Tuesday"}, "FHIR dateTime"),
        ({"effectiveDateTime": "2026-01-08T10:00:00"}, "FHIR dateTime"),  # a time needs its zone
        ({"performer": [{"display": "me"}]}, "not performer"),
        ({"valueQuantity": {"value": 9000, "unit": ""}}, "valueQuantity"),
        ({"valueQuantity": {"value": 9000, "comparator": "<"}}, "valueQuantity"),
        ({"code": {"coding": [{"system": "http://loinc.org"}]}}, "code.coding"),
        ({"code": {"coding": [{"code": "x", "userSelected": "yes"}]}}, "code.coding"),
        ({"category": []}, "category"),
    ],
)
def test_a_measurement_without_what_makes_it_one_is_refused(change, says):
    with pytest.raises(ValueError, match=says):
        lifestyle.recorded("pod-1", {**MEASUREMENT, **change})
