"""Access tokens and DPoP (Nuts auth v2, internal API): obtaining a token from another
organisation, introspection, making and validating DPoP proofs."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nodes.common.http import HttpError, read_form, read_json_object, require_fields
from nodes.trust import dpop, oauth
from nodes.trust.routes import node_of
from protocols.didweb import key_id


async def request_token(request: Request) -> Response:
    body = await read_json_object(request)
    use_cache = "no-cache" not in request.headers.get("cache-control", "").lower()
    subject = request.path_params["subject"]
    return JSONResponse(await oauth.request_service_access_token(node_of(request), subject, body, use_cache=use_cache))


async def introspect(request: Request) -> Response:
    form = await read_form(request)
    return JSONResponse(oauth.introspect(node_of(request), form.get("token", "")))


async def introspect_extended(request: Request) -> Response:
    form = await read_form(request)
    return JSONResponse(oauth.introspect_extended(node_of(request), form.get("token", "")))


async def dpop_proof(request: Request) -> Response:
    body = await read_json_object(request)
    require_fields(body, "htm", "htu")
    kid = request.path_params["kid"]
    did = kid.split("#", 1)[0]
    if kid != key_id(did):
        raise HttpError(404, "Not Found", f"{kid} is not a key of a subject on this node")
    access_token = body.get("token")
    proof = dpop.make_proof(
        node_of(request).signing_key(did),
        str(body["htm"]),
        str(body["htu"]),
        access_token=access_token if isinstance(access_token, str) else None,
    )
    return JSONResponse({"dpop": proof})


async def dpop_validate(request: Request) -> Response:
    node = node_of(request)
    body = await read_json_object(request)
    require_fields(body, "dpop_proof", "method", "thumbprint", "token", "url")
    if node.faulty("dpop-validate-always-valid"):
        return JSONResponse({"valid": True})
    try:
        dpop.verify_proof(
            str(body["dpop_proof"]),
            str(body["method"]),
            str(body["url"]),
            seen=node.dpop_memory("validate"),
            access_token=str(body["token"]),
            thumbprint=str(body["thumbprint"]),
        )
    except dpop.DpopError as exc:
        return JSONResponse({"valid": False, "reason": str(exc)})
    return JSONResponse({"valid": True})


ROUTES = [
    Route("/internal/auth/v2/{subject}/request-service-access-token", request_token, methods=["POST"]),
    Route("/internal/auth/v2/accesstoken/introspect", introspect, methods=["POST"]),
    Route("/internal/auth/v2/accesstoken/introspect_extended", introspect_extended, methods=["POST"]),
    Route("/internal/auth/v2/dpop/validate", dpop_validate, methods=["POST"]),
    Route("/internal/auth/v2/dpop/{kid:path}", dpop_proof, methods=["POST"]),
]
