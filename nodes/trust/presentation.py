"""Presentation Exchange 2.0, the part the Nuts access-token flow needs: match credentials
to a presentation definition's input descriptors, check a submission, and read the fields
that become access-token claims."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import jsonschema

from protocols.jsonpath import JsonPathError, PathNotFound, find


class SubmissionError(ValueError):
    """The presentation does not satisfy the definition; the message says which descriptor."""


def satisfies(descriptor: dict[str, Any], credential: dict[str, Any]) -> bool:
    return all(
        field.get("optional") or _field_value(field, credential) is not _MISSING
        for field in descriptor.get("constraints", {}).get("fields", [])
    )


def select(definition: dict[str, Any], credentials: list[dict[str, Any]]) -> list[tuple[str, int]] | None:
    """For each input descriptor, the index of the first credential that satisfies it;
    None when some descriptor cannot be satisfied from these credentials."""
    chosen = []
    for descriptor in definition.get("input_descriptors", []):
        index = next((i for i, c in enumerate(credentials) if satisfies(descriptor, c)), None)
        if index is None:
            return None
        chosen.append((descriptor["id"], index))
    return chosen


def check_submission(definition: dict[str, Any], submission: Any, presentation: dict[str, Any]) -> dict[str, Any]:
    """Check a submission against the definition; returns the claims its fields name.

    `presentation` is `{"verifiableCredential": [credential views]}`."""
    if not isinstance(submission, dict):
        raise SubmissionError("presentation_submission is not a JSON object")
    if submission.get("definition_id") != definition["id"]:
        raise SubmissionError(
            f"presentation_submission answers definition {submission.get('definition_id')!r}, not {definition['id']!r}"
        )
    descriptor_map = submission.get("descriptor_map")
    if not isinstance(descriptor_map, list):
        raise SubmissionError("presentation_submission has no descriptor_map list")
    mapping = {entry.get("id"): entry for entry in descriptor_map if isinstance(entry, dict)}
    claims: dict[str, Any] = {}
    for descriptor in definition.get("input_descriptors", []):
        entry = mapping.get(descriptor["id"])
        if entry is None:
            raise SubmissionError(f"input descriptor {descriptor['id']!r} is not in the submission")
        try:
            credential = find(presentation, str(entry.get("path", "")))
        except (JsonPathError, PathNotFound) as exc:
            raise SubmissionError(f"descriptor {descriptor['id']!r}: {exc}") from None
        if not isinstance(credential, dict) or not satisfies(descriptor, credential):
            raise SubmissionError(
                f"the credential for descriptor {descriptor['id']!r} does not satisfy its constraints"
            )
        claims.update(field_claims(descriptor, credential))
    return claims


def field_claims(descriptor: dict[str, Any], credential: dict[str, Any]) -> dict[str, Any]:
    """Fields with an `id` become claims (the Nuts policy's way to pass e.g. the URA on)."""
    claims = {}
    for field in descriptor.get("constraints", {}).get("fields", []):
        if "id" in field:
            value = _field_value(field, credential)
            if value is not _MISSING:
                claims[field["id"]] = value
    return claims


_MISSING = object()


def _field_value(field: dict[str, Any], credential: dict[str, Any]) -> Any:
    """The first value along the field's paths that passes its filter, or _MISSING."""
    for path in field.get("path", []):
        try:
            value = find(credential, path)
        except (JsonPathError, PathNotFound):
            continue
        if _passes(field.get("filter"), value):
            return value
    return _MISSING


def _passes(schema: dict[str, Any] | None, value: Any) -> bool:
    if schema is None:
        return True
    # A credential's `type` is a list; a filter on a single value matches any element of it.
    candidates = value if isinstance(value, list) and schema.get("type") != "array" else [value]
    validator = _validator(json.dumps(schema, sort_keys=True))
    return any(validator.is_valid(candidate) for candidate in candidates)


@lru_cache(maxsize=256)
def _validator(schema: str) -> jsonschema.Draft7Validator:
    """Filters repeat on every token request: build each validator once."""
    return jsonschema.Draft7Validator(json.loads(schema))
