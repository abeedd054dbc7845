"""DIF Presentation Exchange 2.0 as the network uses it: the submission that maps a presentation
definition's input descriptors to the credentials of a JWT presentation."""

from __future__ import annotations

from typing import Any


def submission_for(definition: dict[str, Any], chosen: list[tuple[str, int]]) -> dict[str, Any]:
    return {
        "id": f"submission-{definition['id']}",
        "definition_id": definition["id"],
        "descriptor_map": [
            {"id": descriptor_id, "format": "jwt_vc", "path": f"$.verifiableCredential[{index}]"}
            for descriptor_id, index in chosen
        ],
    }
