"""Which credentials a scope asks for: the Nuts node's policy file maps each scope to a
presentation definition; field ids in it become introspection claims."""

from __future__ import annotations

from typing import Any


def organisation_definition(scope: str) -> dict[str, Any]:
    """A definition asking for a NutsOrganizationCredential with name, city and URA."""
    return {
        "id": f"pd_{scope}",
        "input_descriptors": [
            {
                "id": "organization_credential",
                "constraints": {
                    "fields": [
                        {"path": ["$.type"], "filter": {"type": "string", "const": "NutsOrganizationCredential"}},
                        {
                            "id": "organization_name",
                            "path": ["$.credentialSubject.organization.name"],
                            "filter": {"type": "string"},
                        },
                        {
                            "id": "organization_ura",
                            "path": ["$.credentialSubject.organization.ura"],
                            "filter": {"type": "string", "pattern": "^[0-9]{8}$"},
                        },
                        {
                            "id": "organization_city",
                            "path": ["$.credentialSubject.organization.city"],
                            "optional": True,
                        },
                    ]
                },
            }
        ],
    }


DEFAULT_SCOPES = (
    "bgz",
    "bgz-sender",
    "bgz-receiver",
    "eOverdracht-sender",
    "eOverdracht-receiver",
    "secondary-use",  # analysis tasks at a data station
    "permit-audit",  # an access body reading a station's audit trail of its permits
    "data-access",  # a data user at the access body: applications, central tasks
    "welldata",  # an app reading a citizen's personal data vault
)


def default_policy() -> dict[str, dict[str, Any]]:
    """The policy file's shape: `{scope: {"organization": definition}}`."""
    return {scope: {"organization": organisation_definition(scope)} for scope in DEFAULT_SCOPES}
