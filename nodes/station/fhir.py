"""FHIR R4 response shapes the station serves: search bundles, OperationOutcome, capability."""

from __future__ import annotations

from typing import Any

from nodes import __version__

_ISSUE_CODES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 503: "transient"}


def bundle(base_url: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A searchset Bundle of what matched; without matches it has no `entry` at all (FHIR JSON
    has no empty arrays)."""
    found: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(resources)}
    if resources:
        found["entry"] = [
            {"fullUrl": f"{base_url}/fhir/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in resources
        ]
    return found


# The rule that refused a request, as a coding in the issue's details (the same codes the
# problem documents of the other APIs carry in their type).
REFUSAL_SYSTEM = "urn:health-testbed:refusal"


def operation_outcome(status: int, diagnostics: str, code: str | None = None) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": "error", "code": _ISSUE_CODES.get(status, "processing")}
    if code:
        issue["details"] = {"coding": [{"system": REFUSAL_SYSTEM, "code": code}]}
    issue["diagnostics"] = diagnostics
    return {"resourceType": "OperationOutcome", "issue": [issue]}


# When this statement last changed: the station's FHIR API is the same in every run, so its
# capability statement carries a fixed date (R4 requires one) rather than the start time.
CAPABILITY_DATE = "2026-01-01"
SECURITY_SERVICES = "http://terminology.hl7.org/CodeSystem/restful-security-service"


def capability_statement(base_url: str, by_patient: tuple[str, ...]) -> dict[str, Any]:
    """What the FHIR API serves (R4): Patient read and searched by BSN, every type in
    `by_patient` searched by patient, and the eOverdracht Task (read, status patch) and the
    Composition it points at (read)."""
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
        "name": "HealthTestbedDataStation",
        "title": "health-network-testbed reference data station",
        "status": "active",
        "date": CAPABILITY_DATE,
        "kind": "instance",
        "software": {"name": "health-network-testbed reference node", "version": __version__},
        "implementation": {"description": "health-network-testbed reference data station", "url": f"{base_url}/fhir"},
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "service": [
                        {
                            "coding": [{"system": SECURITY_SERVICES, "code": "OAuth"}],
                            "text": "OAuth2 access token (Nuts vp_token-bearer, Bearer or DPoP) and consent",
                        }
                    ]
                },
                "resource": [
                    {
                        "type": "Patient",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [{"name": "identifier", "type": "token"}],
                    },
                    *patient_searchable,
                    {"type": "Task", "interaction": [{"code": "read"}, {"code": "patch"}]},
                    {"type": "Composition", "interaction": [{"code": "read"}]},
                ],
            }
        ],
    }
