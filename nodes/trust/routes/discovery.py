"""The discovery service (Nuts RFC022): the server's list and registrations (public API) and
the client's services, search and activations (internal API)."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nodes.common.http import HttpError, read_body
from nodes.trust import discovery
from nodes.trust.routes import node_of


async def list_entries(request: Request) -> Response:
    after = request.query_params.get("timestamp", "0")
    if not after.isdigit():
        raise HttpError(400, "Bad Request", "'timestamp' must be a whole number")
    return JSONResponse(discovery.list_entries(node_of(request), request.path_params["service"], int(after)))


async def register(request: Request) -> Response:
    """The Nuts API documents the presentation as JSON (a JWT VP is a JSON string) and the
    Nuts server binds only JSON bodies: another media type is refused with 415, as there."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise HttpError(415, "Unsupported Media Type", "send the presentation as application/json")
    try:
        presentation = json.loads(await read_body(request))
    except (ValueError, RecursionError):  # bad JSON, a huge integer, nesting past the parser's depth
        raise HttpError(400, discovery.REFUSED, "the request body is not valid JSON") from None
    if not isinstance(presentation, str):
        raise HttpError(400, discovery.REFUSED, "only JWT presentations (a JSON string) are offered by this server")
    await discovery.register(node_of(request), request.path_params["service"], presentation.strip())
    return Response(status_code=201)


async def service_list(request: Request) -> Response:
    return JSONResponse(discovery.definitions(node_of(request)))


async def search(request: Request) -> Response:
    query = dict(request.query_params)
    return JSONResponse(await discovery.search(node_of(request), request.path_params["service"], query))


async def activation(request: Request) -> Response:
    node = node_of(request)
    service_id, subject = request.path_params["service"], request.path_params["subject"]
    if request.method == "GET":
        return JSONResponse(discovery.activation_of(node, service_id, subject))
    if request.method == "DELETE":
        reason = await discovery.deactivate(node, service_id, subject)
        return Response(status_code=200) if reason is None else JSONResponse({"reason": reason}, status_code=202)
    parameters = await _registration_parameters(request)
    await discovery.activate(node, service_id=service_id, subject=subject, parameters=parameters)
    return Response(status_code=200)


async def _registration_parameters(request: Request) -> dict[str, object]:
    body = await read_body(request)
    try:
        request_body = json.loads(body) if body else {}
    except (ValueError, RecursionError):  # bad JSON, a huge integer, nesting past the parser's depth
        raise HttpError(400, "Bad Request", "the request body is not valid JSON") from None
    parameters = (request_body.get("registrationParameters") or {}) if isinstance(request_body, dict) else None
    if not isinstance(parameters, dict):
        raise HttpError(400, "Bad Request", "'registrationParameters' must be an object")
    return parameters


async def reset(request: Request) -> Response:
    discovery.reset(node_of(request), request.path_params["service"])
    return Response(status_code=204)


PUBLIC_ROUTES = [
    Route("/discovery/{service}", list_entries, methods=["GET"]),
    Route("/discovery/{service}", register, methods=["POST"]),
]
INTERNAL_ROUTES = [
    Route("/internal/discovery/v1", service_list, methods=["GET"]),
    Route("/internal/discovery/v1/{service}", search, methods=["GET"]),
    Route("/internal/discovery/v1/{service}/{subject}", activation, methods=["GET", "POST", "DELETE"]),
    # Not a Nuts API: lets a test make the server start its list over under a new seed.
    Route("/internal/testbed/v1/discovery/{service}/reset", reset, methods=["POST"]),
]
