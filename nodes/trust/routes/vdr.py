"""Subjects, their DIDs and services, and DID resolution (Nuts VDR v2, internal API)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nodes.common.http import HttpError, read_json_object, require_fields
from nodes.trust.routes import node_of


async def create_subject(request: Request) -> Response:
    node = node_of(request)
    body = await read_json_object(request)
    subject = body.get("subject")
    if not isinstance(subject, str) or not subject:
        raise HttpError(400, "Bad Request", "'subject' is required (a non-empty string)")
    record = node.create_subject(subject)
    return JSONResponse({"subject": subject, "documents": [node.document(record)]})


async def list_subjects(request: Request) -> Response:
    return JSONResponse({r["subject"]: [r["did"]] for r in node_of(request).store.iterate("subjects")})


async def get_subject(request: Request) -> Response:
    return JSONResponse([node_of(request).subject(request.path_params["subject"])["did"]])


async def add_service(request: Request) -> Response:
    body = await read_json_object(request)
    require_fields(body, "type", "serviceEndpoint")
    return JSONResponse(node_of(request).add_service(request.path_params["subject"], body))


async def list_services(request: Request) -> Response:
    services = node_of(request).subject(request.path_params["subject"])["services"]
    wanted = request.query_params.get("type")  # the Nuts API's filter on the service type
    return JSONResponse([s for s in services if wanted is None or s.get("type") == wanted])


async def remove_service(request: Request) -> Response:
    node_of(request).remove_service(request.path_params["subject"], request.path_params["service"])
    return Response(status_code=204)


async def resolve(request: Request) -> Response:
    did = request.path_params["did"]  # already percent-decoded once by the router
    try:
        document = await node_of(request).resolver.resolve(did)
    except LookupError as exc:
        raise HttpError(404, "Not Found", str(exc)) from None
    return JSONResponse({"document": document, "documentMetadata": {}})


ROUTES = [
    Route("/internal/vdr/v2/subject", create_subject, methods=["POST"]),
    Route("/internal/vdr/v2/subject", list_subjects, methods=["GET"]),
    Route("/internal/vdr/v2/subject/{subject}", get_subject, methods=["GET"]),
    Route("/internal/vdr/v2/subject/{subject}/service", add_service, methods=["POST"]),
    Route("/internal/vdr/v2/subject/{subject}/service", list_services, methods=["GET"]),
    Route("/internal/vdr/v2/subject/{subject}/service/{service:path}", remove_service, methods=["DELETE"]),
    Route("/internal/vdr/v2/did/{did:path}", resolve, methods=["GET"]),
]
