"""The public API: DID documents, authorization-server metadata, presentation definitions, the
token endpoint (Nuts RFC021) and status lists."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nodes.common.http import HttpError, problem_response, read_form
from nodes.trust import oauth
from nodes.trust.routes import node_of
from nodes.trust.statuslist import unchanged


async def did_document(request: Request) -> Response:
    node = node_of(request)
    path_id = request.path_params["id"]
    for record in node.store.iterate("subjects"):
        if record["did"].endswith(f":iam:{path_id}"):
            # application/json, as the Nuts node's API document and code both answer
            return JSONResponse(node.document(record))
    return Response(status_code=404)  # the Nuts API documents this 404 without a body


async def root_did_document(_: Request) -> Response:
    """This node's subjects all live under /iam/; it owns no root did:web DID of its host."""
    return Response(status_code=404)


async def as_metadata(request: Request) -> Response:
    return JSONResponse(oauth.metadata(node_of(request), request.path_params["subject"]))


async def presentation_definition(request: Request) -> Response:
    node = node_of(request)
    node.subject(request.path_params["subject"])
    return JSONResponse(oauth.presentation_definition(node, request.query_params.get("scope", "")))


async def token(request: Request) -> Response:
    form = await read_form(request)
    proofs = request.headers.getlist("dpop")
    if len(proofs) > 1:
        raise oauth.OAuthError("invalid_dpop_proof", "more than one DPoP header")
    subject = request.path_params["subject"]
    answer = await oauth.token(node_of(request), subject=subject, form=form, dpop_proof=proofs[0] if proofs else None)
    return JSONResponse(answer, headers={"Cache-Control": "no-store"})


async def status_list(request: Request) -> Response:
    node = node_of(request)
    if request.path_params["page"] != 1:
        raise HttpError(404, "Not Found", "this node keeps one status list page per issuer")
    signed = node.status_list(request.path_params["did"])
    max_age = node.status_list_max_age
    # no-cache (the default): verifiers revalidate before every use, cheaply by If-None-Match.
    cache = f"max-age={max_age}" if max_age > 0 else "no-cache"
    headers = {"Cache-Control": cache, "ETag": signed.etag}
    if unchanged(request.headers.get("if-none-match"), signed.etag):
        return Response(status_code=304, headers=headers)  # RFC 9110 (15.4.5): the 200's validators, no body
    # application/json, as the Nuts API documents: the credential in its JWT form is a JSON
    # string (the document's VerifiableCredential is a JSON-LD object or a JWT string).
    return JSONResponse(signed.token, headers=headers)


def render_error(request: Request, error: HttpError) -> Response:
    """Refusals on the OAuth endpoints (/oauth2/...) are RFC 6749 (5.2) error objects in
    application/json, as the Nuts API documents them; elsewhere problem+json."""
    if not request.url.path.startswith("/oauth2/"):
        return problem_response(error)
    code = error.extra.get("error") if isinstance(error, oauth.OAuthError) else "invalid_request"
    description = error.detail or error.title
    return JSONResponse(
        {"error": code, "error_description": description},
        status_code=error.status,
        headers={**error.headers, "Cache-Control": "no-store"},
    )


ROUTES = [
    Route("/iam/{id}/did.json", did_document),
    Route("/.well-known/did.json", root_did_document),
    Route("/.well-known/oauth-authorization-server/oauth2/{subject}", as_metadata),
    Route("/oauth2/{subject}/presentation_definition", presentation_definition),
    Route("/oauth2/{subject}/token", token, methods=["POST"]),
    Route("/statuslist/{did}/{page:int}", status_list),
]
