"""The access body's HTTP routes: the public API of data users (applications, permits, central
analyses) and the internal API of the body's staff (harvest, decisions, revocation, audit).
Handlers are module-level functions that reach the body with `body_of(request)`."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from nodes.common.app import state_of
from nodes.common.http import HttpError
from nodes.hdab.body import APPLICATIONS, AccessBody


def body_of(request: Request) -> AccessBody:
    return state_of(request, AccessBody)


def application_of(body: AccessBody, application_id: str, who: dict[str, Any] | None = None) -> dict[str, Any]:
    """The application; with `who`, only if it is theirs."""
    application = body.store.get(APPLICATIONS, application_id)
    # Another user's application is as unknown as one that does not exist.
    if application is None or (who is not None and application["applicant"]["did"] != who["did"]):
        detail = f"no application {application_id}" + (" of yours" if who else "")
        raise HttpError(404, "Not Found", detail, code="application-not-found")
    return application
