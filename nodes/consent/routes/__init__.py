"""The consent service's HTTP routes, one module per resource: choices and the JSON decision,
the closed question (SOAP + XACML), the open question (localisation), the opt-out register and
subscriptions. Handlers are module-level functions that reach the service with
`service_of(request)`."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from nodes.common.app import state_of
from nodes.common.http import HttpError
from nodes.consent.service import ConsentService


def service_of(request: Request) -> ConsentService:
    return state_of(request, ConsentService)


def optional(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise HttpError(422, "Unprocessable Entity", f"'{name}' must be a string", code="field-invalid")
    return value


def dimension(body: dict[str, Any], name: str, default: str | None = None) -> str:
    value = body.get(name, default)
    if not isinstance(value, str) or not value:
        raise HttpError(
            422,
            "Unprocessable Entity",
            f"'{name}' is required (a non-empty string, or '*' for any)",
            code="field-missing",
        )
    return value
