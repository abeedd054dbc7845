"""Subscriptions to consent changes: a FHIR Subscription at /abonnementen/fhir, as Mitz takes
them. A FHIR endpoint: its refusals are OperationOutcomes."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nodes.common.http import HttpError, read_json
from nodes.consent import subscriptions
from nodes.consent.routes import service_of

FHIR_JSON = "application/fhir+json"


async def subscribe(request: Request) -> Response:
    service = service_of(request)
    try:
        created = subscriptions.create(
            service.store,
            await read_json(request),
            check_reason=not service.faulty("subscription-reason-unchecked"),
            bsn_ok=service.bsn_ok,
        )
    except HttpError as error:
        outcome = subscriptions.operation_outcome(error)
        return JSONResponse(outcome, status_code=error.status, headers=error.headers, media_type=FHIR_JSON)
    return JSONResponse(created, status_code=201, media_type=FHIR_JSON)


PUBLIC_ROUTES = [Route("/abonnementen/fhir", subscribe, methods=["POST"])]
