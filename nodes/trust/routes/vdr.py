"""Subjects, their DIDs, services and keys, and DID resolution (Nuts VDR v2, internal API)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nodes.common.http import HttpError, read_json_object, require_fields
from nodes.trust import subjects
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


async def deactivate_subject(request: Request) -> Response:
    subjects.deactivate(node_of(request), request.path_params["subject"])
    return Response(status_code=204)


async def _service_request(request: Request) -> dict[str, object]:
    body = await read_json_object(request)
    require_fields(body, "type", "serviceEndpoint")
    if not isinstance(body["type"], str):
        raise HttpError(400, "Bad Request", "'type' must be a string")
    return body


async def add_service(request: Request) -> Response:
    body = await _service_request(request)
    return JSONResponse(subjects.add_service(node_of(request), request.path_params["subject"], body))


async def update_service(request: Request) -> Response:
    body = await _service_request(request)
    subject, service_id = request.path_params["subject"], request.path_params["service"]
    return JSONResponse(subjects.update_service(node_of(request), subject, service_id, request=body))


async def list_services(request: Request) -> Response:
    services = node_of(request).subject(request.path_params["subject"])["services"]
    wanted = request.query_params.get("type")
    shape = request.query_params.get("endpointType")  # string | array | object
    if shape not in (None, "string", "array", "object"):
        raise HttpError(400, "Bad Request", "'endpointType' must be string, array or object")
    kinds = {"string": str, "array": list, "object": dict}
    return JSONResponse(
        [
            s
            for s in services
            if (wanted is None or s.get("type") == wanted)
            and (shape is None or isinstance(s.get("serviceEndpoint"), kinds[shape]))
        ]
    )


async def remove_service(request: Request) -> Response:
    subjects.remove_service(node_of(request), request.path_params["subject"], request.path_params["service"])
    return Response(status_code=204)


async def add_verification_method(request: Request) -> Response:
    body = await read_json_object(request)
    assertion, encryption = body.get("assertionKey", False), body.get("encryptionKey", False)
    if not isinstance(assertion, bool) or not isinstance(encryption, bool):
        raise HttpError(400, "Bad Request", "'assertionKey' and 'encryptionKey' must be booleans")
    added = subjects.add_verification_methods(
        node_of(request), request.path_params["subject"], assertion=assertion, encryption=encryption
    )
    return JSONResponse(added)


async def resolve(request: Request) -> Response:
    node = node_of(request)
    did = request.path_params["did"]  # already percent-decoded once by the router
    if not did.startswith("did:"):
        raise HttpError(400, "Bad Request", f"{did!r} is not a DID")
    try:
        document = await node.resolver.resolve(did)
    except LookupError as exc:
        raise HttpError(404, "Not Found", str(exc)) from None
    metadata = subjects.metadata(node.subject_of_did(did), document)
    return JSONResponse({"document": document, "documentMetadata": metadata})


ROUTES = [
    Route("/internal/vdr/v2/subject", create_subject, methods=["POST"]),
    Route("/internal/vdr/v2/subject", list_subjects, methods=["GET"]),
    Route("/internal/vdr/v2/subject/{subject}", get_subject, methods=["GET"]),
    Route("/internal/vdr/v2/subject/{subject}", deactivate_subject, methods=["DELETE"]),
    Route("/internal/vdr/v2/subject/{subject}/service", add_service, methods=["POST"]),
    Route("/internal/vdr/v2/subject/{subject}/service", list_services, methods=["GET"]),
    Route("/internal/vdr/v2/subject/{subject}/service/{service:path}", remove_service, methods=["DELETE"]),
    Route("/internal/vdr/v2/subject/{subject}/service/{service:path}", update_service, methods=["POST"]),
    Route("/internal/vdr/v2/subject/{subject}/verificationmethod", add_verification_method, methods=["POST"]),
    Route("/internal/vdr/v2/did/{did:path}", resolve, methods=["GET"]),
]
