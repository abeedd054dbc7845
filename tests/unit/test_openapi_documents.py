"""The API-document checks (protocols.openapi) judge exchanges: each kind of mismatch is found."""

from __future__ import annotations

import re
from typing import Any

import pytest

from protocols.openapi import check_request, check_response, document_names, find_operation, load_document

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "sample", "version": "1"},
    "paths": {
        "/iam/{id}/did.json": {
            "get": {
                "responses": {
                    "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Doc"}}}},
                    "404": {"$ref": "#/components/responses/Problem"},
                }
            }
        },
        "/iam/well-known/did.json": {"get": {"responses": {"200": {"content": {"application/json": {}}}}}},
        "/things": {
            "post": {
                "requestBody": {"content": {"application/json": {"schema": {"type": "object", "required": ["a"]}}}},
                "responses": {"204": {"description": "made"}},
            }
        },
    },
    "components": {
        "schemas": {
            "Doc": {"type": "object", "required": ["id"], "properties": {"id": {"$ref": "#/components/schemas/Did"}}},
            "Did": {"type": "string", "pattern": "^did:"},
        },
        "responses": {"Problem": {"content": {"application/problem+json": {"schema": {"type": "object"}}}}},
    },
}


def check(status: int, content_type: str | None, body: Any, path: str = "/iam/a/did.json") -> list[str]:
    return check_response(DOCUMENT, method="GET", path=path, status=status, content_type=content_type, body=body)


def test_a_conforming_response_has_no_problems() -> None:
    assert check(200, "application/json; charset=utf-8", {"id": "did:web:x"}) == []
    assert check(404, "application/problem+json", {"title": "no"}) == []


@pytest.mark.parametrize(
    ("status", "content_type", "body", "complaint"),
    [
        (200, "application/json", {"id": "web:x"}, "does not match"),  # nested reference followed
        (200, "application/json", {}, "'id' is a required property"),
        (200, "application/did+json", {"id": "did:web:x"}, "answered as application/did+json"),
        (500, "application/json", {}, "status 500 is not documented"),
    ],
)
def test_each_kind_of_mismatch_is_named(status: int, content_type: str, body: Any, complaint: str) -> None:
    problems = check(status, content_type, body)
    assert problems and complaint in problems[0]


def test_literal_segments_win_over_templates_and_unknown_paths_are_named() -> None:
    literal = find_operation(DOCUMENT, method="GET", path="/iam/well-known/did.json")
    assert literal is not None and literal.template == "/iam/well-known/did.json"
    assert find_operation(DOCUMENT, method="GET", path="/iam/a/b/did.json") is None
    assert "no such operation" in check(200, "application/json", {}, path="/nowhere")[0]


def test_requests_are_checked_too() -> None:
    assert check_request(DOCUMENT, method="POST", path="/things", content_type="application/json", body={"a": 1}) == []
    assert check_request(DOCUMENT, method="POST", path="/things", content_type="application/json", body={})
    assert check_request(DOCUMENT, method="POST", path="/things", content_type="text/plain", body="a")


def test_every_shipped_document_is_openapi_3_1_with_resolvable_references() -> None:
    for name in document_names():
        document = load_document(name)
        assert document["openapi"].startswith("3.1"), name
        text = repr(document)
        for reference in set(re.findall(r"'\$ref': '#/([^']+)'", text)):
            target: Any = document
            for segment in reference.split("/"):
                assert segment in target, f"{name}: #/{reference} does not resolve"
                target = target[segment]
