"""Citizens' consent choices (internal API) and the question in JSON form (public API)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nodes.common.http import HttpError, read_json_object
from nodes.consent.model import ANY, DIMENSIONS, question_of
from nodes.consent.routes import dimension, optional, service_of
from nodes.consent.service import CONSENTS


async def register(request: Request) -> Response:
    service = service_of(request)
    body = await read_json_object(request)
    bsn = service.bsn_of(body)
    decision = body.get("decision", "permit")
    if decision not in ("permit", "deny"):
        raise HttpError(422, "Unprocessable Entity", "'decision' must be 'permit' or 'deny'", code="decision-invalid")
    choice = {
        "id": str(uuid.uuid4()),
        "bsn": bsn,
        **{d: dimension(body, d, default=ANY) for d in DIMENSIONS},
        "decision": decision,
        "status": "active",
        "registered": time.time(),
    }
    service.keep(choice)
    service.notify(choice)
    return JSONResponse(choice, status_code=201)


async def list_consents(request: Request) -> Response:
    service = service_of(request)
    bsn = request.query_params.get("bsn")
    if bsn is None:
        raise HttpError(400, "Bad Request", "query parameter 'bsn' is required", code="bsn-missing")
    found = service.choices_of(service.valid(bsn))
    return JSONResponse(found[:-1] if service.faulty("consent-list-drops-newest") else found)


def _stored(request: Request) -> dict[str, Any]:
    choice = service_of(request).store.get(CONSENTS, request.path_params["id"])
    if choice is None:
        raise HttpError(404, "Not Found", f"no consent {request.path_params['id']}", code="consent-unknown")
    return choice


async def read(request: Request) -> Response:
    return JSONResponse(_stored(request))


async def withdraw(request: Request) -> Response:
    service = service_of(request)
    choice = _stored(request)
    if choice["status"] != "active" and not service.faulty("withdraw-twice-accepted"):
        raise HttpError(409, "Conflict", "this consent was withdrawn before", code="consent-withdrawn")
    choice.update(status="withdrawn", withdrawn=time.time())
    if service.faulty("withdrawal-not-applied"):
        return JSONResponse(choice)  # acknowledged, but neither recorded nor announced
    if service.faulty("history-drops-withdrawn"):
        service.forget(choice)
    else:
        service.keep(choice)  # kept: history is part of the record
    if not service.faulty("no-notification-on-withdrawal"):
        service.notify(choice)
    return JSONResponse(choice)


async def decision(request: Request) -> Response:
    service = service_of(request)
    body = await read_json_object(request)
    bsn = service.bsn_of(body)
    question = question_of(
        data_holder={dimension(body, "data_holder"), optional(body, "data_holder_category")},
        requester={dimension(body, "requester"), optional(body, "requester_category")},
        data_category=dimension(body, "data_category"),
    )
    choices = service.choices_of(bsn)
    if service.faulty("json-decision-ignores-objections"):
        choices = [c for c in choices if c["decision"] == "permit"]
    return JSONResponse(service.decision_of(choices, question).as_json())


PUBLIC_ROUTES = [Route("/consent/v1/decision", decision, methods=["POST"])]
INTERNAL_ROUTES = [
    Route("/internal/consent/v1/consents", register, methods=["POST"]),
    Route("/internal/consent/v1/consents", list_consents, methods=["GET"]),
    Route("/internal/consent/v1/consents/{id}", read, methods=["GET"]),
    Route("/internal/consent/v1/consents/{id}", withdraw, methods=["DELETE"]),
]
