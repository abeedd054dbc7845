"""Credentials (Nuts VCR v2, internal API): issuing and revoking, the wallet, presentations,
search, verification and the trusted issuers."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nodes.common.http import HttpError, read_json, read_json_object, require_fields
from nodes.trust import holdings
from nodes.trust.node import TrustNode
from nodes.trust.routes import node_of
from protocols import vcjwt as vc
from protocols.vcjwt import CredentialError


def _verifier_checks(node: TrustNode) -> dict[str, bool]:
    """What the verifier API checks: everything, except where a self-test defect skips a check."""
    return {
        "check_signature": not node.faulty("verifier-ignores-signature"),
        "check_trust": not node.faulty("verifier-ignores-trust"),
        "check_expiry": not node.faulty("verifier-ignores-expiry"),
        "check_revocation": not node.faulty("verifier-ignores-revocation"),
    }


def _jwt(value: object) -> str:
    """A credential or presentation as this node reads them: a JWT string (anything else then
    fails verification as unreadable, rather than failing the handler)."""
    return value if isinstance(value, str) else ""


async def issue(request: Request) -> Response:
    return JSONResponse(node_of(request).issue(await read_json_object(request)))


async def revoke(request: Request) -> Response:
    node_of(request).revoke(request.path_params["id"])
    return Response(status_code=204)


async def create_presentation(request: Request) -> Response:
    return JSONResponse(node_of(request).present(await read_json_object(request)))


async def verify_vp(request: Request) -> Response:
    node = node_of(request)
    body = await read_json_object(request)
    token = _jwt(body.get("verifiablePresentation"))
    try:
        await node.verify_presentation(
            token, body.get("verifyCredentials", True) is not False, **_verifier_checks(node)
        )
    except CredentialError as exc:
        return JSONResponse({"validity": False, "message": str(exc)})
    # The credentials as they were presented: JWT strings (the API's VerifiableCredential).
    return JSONResponse({"validity": True, "credentials": vc.presented(vc.Jwt.read(token))})


async def verify_vc(request: Request) -> Response:
    node = node_of(request)
    body = await read_json_object(request)
    try:
        await node.verify_credential(_jwt(body.get("verifiableCredential")), **_verifier_checks(node))
    except CredentialError as exc:
        return JSONResponse({"validity": False, "message": str(exc)})
    return JSONResponse({"validity": True})


async def search(request: Request) -> Response:
    body = await read_json_object(request)
    query = body.get("query")
    if not isinstance(query, dict):
        raise HttpError(400, "Bad Request", "'query' must be an object: a partial credential")
    allow = (body.get("searchOptions") or {}).get("allowUntrustedIssuer") is True
    found = node_of(request).search(query, allow_untrusted=allow)
    return JSONResponse(_results(found))


async def trust(request: Request) -> Response:
    body = await read_json_object(request)
    require_fields(body, "issuer", "credentialType")
    node_of(request).trust(body["credentialType"], body["issuer"], trusted=request.method == "POST")
    return Response(status_code=204)


async def wallet_add(request: Request) -> Response:
    credential = await read_json(request)
    try:
        await node_of(request).add_to_wallet(request.path_params["subject"], credential)
    except CredentialError as exc:
        raise HttpError(400, "Bad Request", f"credential refused: {exc}") from None
    return Response(status_code=204)


async def wallet_list(request: Request) -> Response:
    return JSONResponse(node_of(request).wallet(request.path_params["subject"]))


async def resolve(request: Request) -> Response:
    return JSONResponse(holdings.resolve(node_of(request), request.path_params["id"]))


async def search_issued(request: Request) -> Response:
    credential_type, issuer = request.query_params.get("credentialType"), request.query_params.get("issuer")
    if not credential_type or not issuer:
        raise HttpError(400, "Bad Request", "'credentialType' and 'issuer' are required query parameters")
    found = holdings.issued(
        node_of(request), credential_type=credential_type, issuer=issuer, subject=request.query_params.get("subject")
    )
    return JSONResponse(_results(found))


def _results(tokens: list[str]) -> dict[str, object]:
    return {"verifiableCredentials": [{"verifiableCredential": token} for token in tokens]}


async def trusted(request: Request) -> Response:
    return JSONResponse(holdings.trusted_issuers(node_of(request), request.path_params["type"]))


async def untrusted(request: Request) -> Response:
    return JSONResponse(holdings.untrusted_issuers(node_of(request), request.path_params["type"]))


async def wallet_remove(request: Request) -> Response:
    holdings.remove_from_wallet(node_of(request), request.path_params["subject"], request.path_params["id"])
    return Response(status_code=204)


async def wallet_search(request: Request) -> Response:
    return JSONResponse(_results(holdings.wallet_search(node_of(request), request.path_params["subject"])))


ROUTES = [
    Route("/internal/vcr/v2/vc/{id:path}", resolve, methods=["GET"]),
    Route("/internal/vcr/v2/issuer/vc/search", search_issued, methods=["GET"]),
    Route("/internal/vcr/v2/verifier/{type}/trusted", trusted, methods=["GET"]),
    Route("/internal/vcr/v2/verifier/{type}/untrusted", untrusted, methods=["GET"]),
    Route("/internal/vcr/v2/holder/{subject}/vc/search", wallet_search, methods=["GET"]),
    Route("/internal/vcr/v2/holder/{subject}/vc/{id:path}", wallet_remove, methods=["DELETE"]),
    Route("/internal/vcr/v2/issuer/vc", issue, methods=["POST"]),
    Route("/internal/vcr/v2/issuer/vc/{id:path}", revoke, methods=["DELETE"]),
    Route("/internal/vcr/v2/search", search, methods=["POST"]),
    Route("/internal/vcr/v2/verifier/vc", verify_vc, methods=["POST"]),
    Route("/internal/vcr/v2/verifier/vp", verify_vp, methods=["POST"]),
    Route("/internal/vcr/v2/holder/vp", create_presentation, methods=["POST"]),
    Route("/internal/vcr/v2/verifier/trust", trust, methods=["POST", "DELETE"]),
    Route("/internal/vcr/v2/holder/{subject}/vc", wallet_add, methods=["POST"]),
    Route("/internal/vcr/v2/holder/{subject}/vc", wallet_list, methods=["GET"]),
]
