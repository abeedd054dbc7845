"""The internal API of the body's staff: harvesting the stations' catalogues, moving
applications through their states, revoking permits and reading the stations' audit trails."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nodes.common.http import HttpError, read_json_object
from nodes.hdab.applications import DECIDED_STATES, TransitionRefused, incomplete, move, record
from nodes.hdab.body import APPLICATIONS, DATASETS
from nodes.hdab.routes import application_of, body_of


async def harvest(request: Request) -> Response:
    return JSONResponse(await body_of(request).harvest())


async def list_applications(request: Request) -> Response:
    return JSONResponse(body_of(request).store.list(APPLICATIONS))


async def transition(request: Request) -> Response:
    body = body_of(request)
    application = application_of(body, request.path_params["id"])
    decision = await read_json_object(request)
    to, reason = str(decision.get("to", "")), str(decision.get("reason", ""))
    try:
        if to == "assessment" and not body.faulty("completeness-not-checked"):
            missing = incomplete(application, {d["id"] for d in body.store.list(DATASETS)})
            if missing:
                message = "the application is incomplete: " + "; ".join(missing)
                raise TransitionRefused(message, "datasets-not-in-catalogue")
        move(
            application, to, reason=reason, table=body.transitions(), by_kind=not body.faulty("data-request-permitted")
        )
    except TransitionRefused as exc:
        raise HttpError(409, "Conflict", str(exc), code=exc.code) from None
    if to in DECIDED_STATES or (to == "rejected" and body.faulty("permit-issued-on-rejection")):
        application["permit"] = await body.issue_permit(application)
    body.store.put(APPLICATIONS, application["id"], application)
    return JSONResponse(application)


async def revoke(request: Request) -> Response:
    body = body_of(request)
    application = application_of(body, request.path_params["id"])
    status = application["status"]
    if status not in DECIDED_STATES:
        detail = f"an application that is {status} has no permit to revoke"
        raise HttpError(409, "Conflict", detail, code="no-valid-permit", state=status)
    reason = str((await read_json_object(request)).get("reason", ""))  # a bad request revokes nothing
    if not body.faulty("revocation-not-done"):
        await body.issuer.revoke(application["permit"]["id"])
    record(application, "revoked", reason)
    if not body.faulty("revocation-not-stored"):
        body.store.put(APPLICATIONS, application["id"], application)
    return JSONResponse(application)


async def audit(request: Request) -> Response:
    """What every station the permit covers logged under it."""
    body = body_of(request)
    application = application_of(body, request.path_params["id"])
    permit = application.get("permit")
    if permit is None:
        detail = f"the application is {application['status']} and was never granted a permit"
        raise HttpError(409, "Conflict", detail, code="no-permit", state=application["status"])
    covered = body.covered(application)
    trails = await asyncio.gather(*[body.station_audit(dataset, permit["id"]) for dataset in covered])
    return JSONResponse({"application": application["id"], "permit": permit["id"], "stations": trails})


ROUTES = [
    Route("/internal/hdab/v1/harvest", harvest, methods=["POST"]),
    Route("/internal/hdab/v1/applications", list_applications),
    Route("/internal/hdab/v1/applications/{id}/transition", transition, methods=["POST"]),
    Route("/internal/hdab/v1/applications/{id}/revoke", revoke, methods=["POST"]),
    Route("/internal/hdab/v1/applications/{id}/audit", audit),
]
