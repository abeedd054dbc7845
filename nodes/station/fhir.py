"""FHIR R4 response shapes the station serves: search bundles, OperationOutcome, capability."""

from __future__ import annotations

from typing import Any

_ISSUE_CODES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 503: "transient"}


def bundle(base_url: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {"fullUrl": f"{base_url}/fhir/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in resources
        ],
    }


# The rule that refused a request, as a coding in the issue's details (the same codes the
# problem documents of the other APIs carry in their type).
REFUSAL_SYSTEM = "urn:health-testbed:refusal"


def operation_outcome(status: int, diagnostics: str, code: str | None = None) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": "error", "code": _ISSUE_CODES.get(status, "processing")}
    if code:
        issue["details"] = {"coding": [{"system": REFUSAL_SYSTEM, "code": code}]}
    issue["diagnostics"] = diagnostics
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def capability_statement(base_url: str, by_patient: tuple[str, ...]) -> dict[str, Any]:
    """Patient is read and searched by BSN; every type in `by_patient` is searched by patient."""
    patient_searchable = [
        {
            "type": kind,
            "interaction": [{"code": "search-type"}],
            "searchParam": [{"name": "patient", "type": "reference"}],
        }
        for kind in by_patient
    ]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "kind": "instance",
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "implementation": {"description": "health-network-testbed reference data station", "url": f"{base_url}/fhir"},
        "rest": [
            {
                "mode": "server",
                "security": {"service": [{"text": "OAuth2 bearer token (Nuts vp_token-bearer) and consent"}]},
                "resource": [
                    {
                        "type": "Patient",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [{"name": "identifier", "type": "token"}],
                    },
                    *patient_searchable,
                ],
            }
        ],
    }
