"""eOverdracht routes (nodes/station/handover.py holds the rules): the notification endpoint
the sender calls on the receiver, the Task and Composition the receiver reads from the sender
and the Task update, and the sending system's own publication of a handover."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nodes.common.http import HttpError, read_body, read_json_object
from nodes.station import handover
from nodes.station.routes import fhir_response, station_of
from nodes.station.station import Station

Handle = Callable[[Station, dict[str, Any]], Awaitable[Response]]


async def _guarded(action: str, request: Request, scope: str, handle: Handle) -> Response:
    """Authorise, handle, and audit whatever the outcome."""
    station = station_of(request)
    token: dict[str, Any] | None = None
    try:
        if action == "handover-notification" and station.faulty("notification-without-token"):
            token = {}
        else:
            token = await station.resources.authorise(request, {scope})
        response = await handle(station, token)
    except HttpError as exc:
        _audited(station, action, request, token, exc.status, exc.detail)
        raise
    _audited(station, action, request, token, response.status_code)
    return response


def _audited(
    station: Station, action: str, request: Request, token: dict[str, Any] | None, outcome: int, detail: str = ""
) -> None:
    station.audit.append(
        action=action,
        resource=request.url.path,
        client=(token or {}).get("client_id"),
        requester_ura=(token or {}).get("organization_ura"),
        scope=(token or {}).get("scope"),
        outcome=outcome,
        detail=detail,
    )


async def notified(request: Request) -> Response:
    async def handle(station: Station, token: dict[str, Any]) -> Response:
        if await read_body(request):
            detail = "an eOverdracht notification has an empty body"
            raise HttpError(400, "Bad Request", detail, code="notification-not-empty")
        notification = {
            "task": request.path_params["task_id"],
            "sender_ura": token.get("organization_ura"),
            "sender": token.get("client_id"),
            "received": time.time(),
        }
        if not station.faulty("notification-not-stored"):
            station.store.put(handover.NOTIFICATIONS, str(uuid.uuid4()), notification)
        return Response(status_code=202)

    return await _guarded("handover-notification", request, handover.RECEIVER_SCOPE, handle)


async def read_task(request: Request) -> Response:
    async def handle(station: Station, token: dict[str, Any]) -> Response:
        return fhir_response(handover.owned_open_task(station, request.path_params["id"], token))

    return await _guarded("handover-read", request, handover.SENDER_SCOPE, handle)


async def read_composition(request: Request) -> Response:
    async def handle(station: Station, token: dict[str, Any]) -> Response:
        return fhir_response(handover.readable_composition(station, request.path_params["id"], token))

    return await _guarded("handover-read", request, handover.SENDER_SCOPE, handle)


async def update_task(request: Request) -> Response:
    async def handle(station: Station, token: dict[str, Any]) -> Response:
        task = handover.owned_open_task(station, request.path_params["id"], token)
        status = handover.status_from_patch(await read_body(request))
        return fhir_response(handover.moved(station, task, status))

    return await _guarded("handover-update", request, handover.SENDER_SCOPE, handle)


async def publish(request: Request) -> Response:
    """The sending organisation's own system publishes a handover for a receiver."""
    task = handover.published(station_of(request), await read_json_object(request))
    return fhir_response(task, status_code=201)


async def notifications(request: Request) -> Response:
    return JSONResponse(station_of(request).store.list(handover.NOTIFICATIONS))


PUBLIC_ROUTES = [
    Route("/fhir/notifications/eoverdracht/{task_id}", notified, methods=["POST"]),
    Route("/fhir/Task/{id}", read_task, methods=["GET"]),
    Route("/fhir/Task/{id}", update_task, methods=["PATCH"]),
    Route("/fhir/Composition/{id}", read_composition, methods=["GET"]),
]
INTERNAL_ROUTES = [
    Route("/internal/station/v1/handovers", publish, methods=["POST"]),
    Route("/internal/station/v1/handovers/notifications", notifications),
]
