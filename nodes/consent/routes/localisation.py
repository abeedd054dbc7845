"""The open question (localisation): which data holders hold data about a citizen that a
requester may see. Holders announce themselves on the internal API."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nodes.common.http import read_json_object
from nodes.consent.model import question_of
from nodes.consent.routes import dimension, optional, service_of
from nodes.consent.service import LOCATIONS


async def register_location(request: Request) -> Response:
    """A data holder announces that it holds data about a citizen."""
    service = service_of(request)
    body = await read_json_object(request)
    location = {
        "bsn": service.bsn_of(body),
        "data_holder": dimension(body, "data_holder"),
        "data_holder_category": optional(body, "data_holder_category") or "",
    }
    service.store.put(LOCATIONS, f"{location['bsn']}|{location['data_holder']}", location)
    return JSONResponse(location, status_code=201)


async def open_question(request: Request) -> Response:
    """Which data holders hold data about this citizen that this requester may see."""
    service = service_of(request)
    body = await read_json_object(request)
    bsn = service.bsn_of(body)
    requester = {dimension(body, "requester"), optional(body, "requester_category")}
    category = dimension(body, "data_category")
    choices = service.choices_of(bsn)
    every = service.faulty("open-question-lists-every-holder")
    permitted = []
    for location in service.store.iterate(LOCATIONS, key_prefix=f"{bsn}|"):
        holder = {location["data_holder"], location["data_holder_category"]}
        question = question_of(data_holder=holder, requester=requester, data_category=category)
        if every or service.decision_of(choices, question).decision == "Permit":
            permitted.append(
                {"data_holder": location["data_holder"], "data_holder_category": location["data_holder_category"]}
            )
    return JSONResponse({"data_holders": permitted})


PUBLIC_ROUTES = [Route("/consent/v1/localisation", open_question, methods=["POST"])]
INTERNAL_ROUTES = [Route("/internal/consent/v1/localisations", register_location, methods=["POST"])]
