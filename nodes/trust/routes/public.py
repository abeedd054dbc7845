"""The public API: DID documents, authorization-server metadata, presentation definitions, the
token endpoint (Nuts RFC021) and status lists."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nodes.common.http import HttpError, read_form
from nodes.trust import oauth
from nodes.trust.routes import node_of


async def did_document(request: Request) -> Response:
    node = node_of(request)
    path_id = request.path_params["id"]
    for record in node.store.iterate("subjects"):
        if record["did"].endswith(f":iam:{path_id}"):
            return JSONResponse(node.document(record), media_type="application/did+json")
    raise HttpError(404, "Not Found", f"no DID document for {path_id}")


async def as_metadata(request: Request) -> Response:
    return JSONResponse(oauth.metadata(node_of(request), request.path_params["subject"]))


async def presentation_definition(request: Request) -> Response:
    node = node_of(request)
    node.subject(request.path_params["subject"])
    return JSONResponse(oauth.presentation_definition(node, request.query_params.get("scope", "")))


async def token(request: Request) -> Response:
    try:
        form = await read_form(request)
        proofs = request.headers.getlist("dpop")
        if len(proofs) > 1:
            raise oauth.OAuthError("invalid_dpop_proof", "more than one DPoP header")
        subject = request.path_params["subject"]
        answer = await oauth.token(node_of(request), subject, form, proofs[0] if proofs else None)
    except oauth.OAuthError:
        raise
    except HttpError as exc:  # RFC 6749, section 5.2: refusals carry an OAuth error code
        raise oauth.OAuthError("invalid_request", exc.detail or exc.title, status=exc.status) from None
    return JSONResponse(answer, headers={"Cache-Control": "no-store"})


async def status_list(request: Request) -> Response:
    node = node_of(request)
    if request.path_params["page"] != 1:
        raise HttpError(404, "Not Found", "this node keeps one status list page per issuer")
    token = node.status_list(request.path_params["did"])
    max_age = node.status_list_max_age
    cache = f"max-age={max_age}" if max_age > 0 else "no-cache"
    return Response(token, media_type="application/vc+jwt", headers={"Cache-Control": cache})


ROUTES = [
    Route("/iam/{id}/did.json", did_document),
    Route("/.well-known/oauth-authorization-server/oauth2/{subject}", as_metadata),
    Route("/oauth2/{subject}/presentation_definition", presentation_definition),
    Route("/oauth2/{subject}/token", token, methods=["POST"]),
    Route("/statuslist/{did}/{page:int}", status_list),
]
