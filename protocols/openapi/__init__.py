"""Each role's API described as an OpenAPI 3.1 document of the project's own, one per listener
(`<role>-public.yaml`, `<role>-internal.yaml` in this folder), with facts from the role's
specifications. Nodes serve them at `GET /openapi.json`; tests and the harness check real
exchanges against them with `check_response` and `check_request`.

OpenAPI 3.1 schemas are JSON Schema 2020-12, so the checks are plain JSON Schema validation
with the document's `#/components/...` references resolved inside the document."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml
from jsonschema import Draft202012Validator

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


class UnknownApiDocument(LookupError):
    """No API document of that name ships with this package."""


def document_names() -> list[str]:
    """The API documents this package ships: `<role>-<listener>`."""
    folder = resources.files(__package__)
    return sorted(entry.name.removesuffix(".yaml") for entry in folder.iterdir() if entry.name.endswith(".yaml"))


@cache
def load_document(name: str) -> dict[str, Any]:
    """The API document `name` (e.g. "trust-internal") as a dict; cached, so do not change it."""
    entry = resources.files(__package__).joinpath(f"{name}.yaml")
    if not entry.is_file():
        raise UnknownApiDocument(f"no API document {name!r}; there are: {', '.join(document_names())}")
    # libyaml where it is installed: every node process loads its documents at start.
    loaded = yaml.load(entry.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if not isinstance(loaded, dict) or not str(loaded.get("openapi", "")).startswith("3.1"):
        raise UnknownApiDocument(f"API document {name!r} is not an OpenAPI 3.1 document")
    return loaded


@dataclass(frozen=True)
class Operation:
    """One operation of a document, found from a concrete request path."""

    template: str  # the path as the document writes it, e.g. /iam/{id}/did.json
    method: str  # lower case, as the document writes it
    spec: dict[str, Any]

    @property
    def key(self) -> str:
        return f"{self.method.upper()} {self.template}"


def operations(document: dict[str, Any]) -> list[Operation]:
    """Every operation the document describes."""
    found = []
    for template, item in document.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                found.append(Operation(template=template, method=method, spec=item[method]))
    return found


def find_operation(document: dict[str, Any], *, method: str, path: str) -> Operation | None:
    """The operation that serves `method path` (path without query); where templates overlap,
    the one with the most literal segments wins, as OpenAPI asks of concrete paths."""
    candidates = [
        op
        for op in operations(document)
        if op.method == method.lower() and _template_pattern(op.template).fullmatch(path)
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda op: sum(1 for part in op.template.split("/") if "{" not in part))


def check_response(
    document: dict[str, Any], *, method: str, path: str, status: int, content_type: str | None, body: Any
) -> list[str]:
    """What is wrong with a response to `method path`, measured against the document: an
    undocumented operation or status code, a media type the operation does not answer with, a
    body its schema refuses. An empty list: the response conforms. `body` is the parsed JSON for
    JSON media types, else the text (or None for an empty body)."""
    operation = find_operation(document, method=method, path=path)
    if operation is None:
        return [f"{method.upper()} {path}: no such operation in {document['info']['title']}"]
    responses = operation.spec.get("responses", {})
    response = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or responses.get("default")
    if response is None:
        documented = ", ".join(sorted(responses))
        return [f"{operation.key}: status {status} is not documented (documented: {documented})"]
    response = _resolved(document, response)
    return _check_content(document, operation.key, f"status {status}", response.get("content"), content_type, body)


def check_request(
    document: dict[str, Any], *, method: str, path: str, content_type: str | None, body: Any
) -> list[str]:
    """What is wrong with a request, measured against the document (operation and body)."""
    operation = find_operation(document, method=method, path=path)
    if operation is None:
        return [f"{method.upper()} {path}: no such operation in {document['info']['title']}"]
    request_body = operation.spec.get("requestBody")
    if request_body is None:
        return [] if body in (None, "", b"") else [f"{operation.key}: the operation takes no request body"]
    return _check_content(
        document, operation.key, "request", _resolved(document, request_body).get("content"), content_type, body
    )


def _check_content(
    document: dict[str, Any], where: str, what: str, content: dict[str, Any] | None, content_type: str | None, body: Any
) -> list[str]:
    if not content:
        return [] if body in (None, "", b"") else [f"{where}: {what} documents no body, but one was sent"]
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type not in content:
        return [f"{where}: {what} answered as {media_type or 'no media type'}; documented: {', '.join(content)}"]
    schema = content[media_type].get("schema")
    if schema is None:
        return []
    # `#/components/...` references resolve against the root of the schema being validated, so
    # the document's components ride along (JSON Schema ignores a keyword it does not know).
    validator = Draft202012Validator({**schema, "components": document.get("components", {})})
    return [
        f"{where}: {what} body at {error.json_path}: {error.message}"
        for error in sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    ]


def _resolved(document: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """A response or request body object, following one `$ref` inside the document."""
    reference = part.get("$ref")
    if not isinstance(reference, str):
        return part
    target: Any = document
    for segment in reference.removeprefix("#/").split("/"):
        target = target[segment]
    return target if isinstance(target, dict) else {}


@cache
def _template_pattern(template: str) -> re.Pattern[str]:
    literal_parts = re.split(r"\{[^}/]+\}", template)
    return re.compile("[^/]+".join(re.escape(part) for part in literal_parts))
