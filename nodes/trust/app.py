"""HTTP routes of the trust node, on the Nuts node v6 paths (shared/REFERENCE.md, section 1).

Public: DID documents, authorization-server metadata, presentation definitions, token.
Internal: subjects (VDR v2), credentials (VCR v2), access tokens (auth v2)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nodes.common.app import NodeApps, build_apps
from nodes.common.config import NodeConfig
from nodes.common.http import HttpError, read_body, read_form, read_json, read_json_object, require_fields
from nodes.trust import discovery, dpop, oauth
from nodes.trust.credentials import CredentialError
from nodes.trust.did import key_id
from nodes.trust.node import TrustNode


async def _keep_registrations_fresh(node: TrustNode) -> None:
    """Re-register discovery activations before they expire, for as long as the node runs."""
    while True:
        await asyncio.sleep(discovery.REFRESH_CHECK_SECONDS)
        try:
            await discovery.refresh_due(node)
        except Exception:  # whatever went wrong, the loop must live on to the next round
            logging.getLogger("discovery").exception("refreshing registrations failed")


def build(config: NodeConfig) -> NodeApps:
    node = TrustNode(config)

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        refresher = asyncio.create_task(_keep_registrations_fresh(node))
        yield
        refresher.cancel()
        await node.close()

    # --- public ------------------------------------------------------------------------
    async def did_document(request: Request) -> Response:
        path_id = request.path_params["id"]
        for record in node.store.iterate("subjects"):
            if record["did"].endswith(f":iam:{path_id}"):
                return JSONResponse(node.document(record), media_type="application/did+json")
        raise HttpError(404, "Not Found", f"no DID document for {path_id}")

    async def as_metadata(request: Request) -> Response:
        return JSONResponse(oauth.metadata(node, request.path_params["subject"]))

    async def presentation_definition(request: Request) -> Response:
        node.subject(request.path_params["subject"])
        return JSONResponse(oauth.presentation_definition(node, request.query_params.get("scope", "")))

    async def token(request: Request) -> Response:
        try:
            form = await read_form(request)
            proofs = request.headers.getlist("dpop")
            if len(proofs) > 1:
                raise oauth.OAuthError("invalid_dpop_proof", "more than one DPoP header")
            answer = await oauth.token(node, request.path_params["subject"], form, proofs[0] if proofs else None)
        except oauth.OAuthError:
            raise
        except HttpError as exc:  # RFC 6749, section 5.2: refusals carry an OAuth error code
            raise oauth.OAuthError("invalid_request", exc.detail or exc.title, status=exc.status) from None
        return JSONResponse(answer, headers={"Cache-Control": "no-store"})

    # --- internal: subjects ----------------------------------------------------------------
    async def create_subject(request: Request) -> Response:
        body = await read_json_object(request)
        subject = body.get("subject")
        if not isinstance(subject, str) or not subject:
            raise HttpError(400, "Bad Request", "'subject' is required (a non-empty string)")
        record = node.create_subject(subject)
        return JSONResponse({"subject": subject, "documents": [node.document(record)]})

    async def list_subjects(_: Request) -> Response:
        return JSONResponse({r["subject"]: [r["did"]] for r in node.store.iterate("subjects")})

    async def get_subject(request: Request) -> Response:
        return JSONResponse([node.subject(request.path_params["subject"])["did"]])

    async def add_service(request: Request) -> Response:
        body = await read_json_object(request)
        require_fields(body, "type", "serviceEndpoint")
        return JSONResponse(node.add_service(request.path_params["subject"], body))

    async def list_services(request: Request) -> Response:
        return JSONResponse(node.subject(request.path_params["subject"])["services"])

    async def remove_service(request: Request) -> Response:
        node.remove_service(request.path_params["subject"], request.path_params["service"])
        return Response(status_code=204)

    async def resolve(request: Request) -> Response:
        did = request.path_params["did"]  # already percent-decoded once by the router
        try:
            document = await node.resolver.resolve(did)
        except LookupError as exc:
            raise HttpError(404, "Not Found", str(exc)) from None
        return JSONResponse({"document": document, "documentMetadata": {}})

    # --- internal: credentials -------------------------------------------------------------
    async def issue(request: Request) -> Response:
        return JSONResponse(node.issue(await read_json_object(request)))

    async def revoke(request: Request) -> Response:
        node.revoke(request.path_params["id"])
        return Response(status_code=204)

    async def status_list(request: Request) -> Response:
        if request.path_params["page"] != 1:
            raise HttpError(404, "Not Found", "this node keeps one status list page per issuer")
        token = node.status_list(request.path_params["did"])
        max_age = node.status_list_max_age
        cache = f"max-age={max_age}" if max_age > 0 else "no-cache"
        return Response(token, media_type="application/vc+jwt", headers={"Cache-Control": cache})

    async def create_presentation(request: Request) -> Response:
        return JSONResponse(node.present(await read_json_object(request)))

    async def verify_vp(request: Request) -> Response:
        body = await read_json_object(request)
        try:
            views = await node.verify_presentation(
                body.get("verifiablePresentation"), body.get("verifyCredentials", True) is not False
            )
        except CredentialError as exc:
            return JSONResponse({"validity": False, "message": str(exc)})
        return JSONResponse({"validity": True, "credentials": views})

    async def search(request: Request) -> Response:
        body = await read_json_object(request)
        query = body.get("query")
        if not isinstance(query, dict):
            raise HttpError(400, "Bad Request", "'query' must be an object: a partial credential")
        allow = (body.get("searchOptions") or {}).get("allowUntrustedIssuer") is True
        found = node.search(query, allow_untrusted=allow)
        return JSONResponse({"verifiableCredentials": [{"verifiableCredential": token} for token in found]})

    async def verify_vc(request: Request) -> Response:
        body = await read_json_object(request)
        try:
            await node.verify_credential(body.get("verifiableCredential"))
        except CredentialError as exc:
            return JSONResponse({"validity": False, "message": str(exc)})
        return JSONResponse({"validity": True})

    async def trust(request: Request) -> Response:
        body = await read_json_object(request)
        require_fields(body, "issuer", "credentialType")
        node.trust(body["credentialType"], body["issuer"], trusted=request.method == "POST")
        return Response(status_code=204)

    async def wallet_add(request: Request) -> Response:
        credential = await read_json(request)
        try:
            await node.add_to_wallet(request.path_params["subject"], credential)
        except CredentialError as exc:
            raise HttpError(400, "Bad Request", f"credential refused: {exc}") from None
        return Response(status_code=204)

    async def wallet_list(request: Request) -> Response:
        return JSONResponse(node.wallet(request.path_params["subject"]))

    # --- internal: access tokens -----------------------------------------------------------
    async def request_token(request: Request) -> Response:
        body = await read_json_object(request)
        use_cache = "no-cache" not in request.headers.get("cache-control", "").lower()
        answer = await oauth.request_service_access_token(node, request.path_params["subject"], body, use_cache)
        return JSONResponse(answer)

    async def dpop_proof(request: Request) -> Response:
        body = await read_json_object(request)
        require_fields(body, "htm", "htu")
        kid = request.path_params["kid"]
        did = kid.split("#", 1)[0]
        if kid != key_id(did):
            raise HttpError(404, "Not Found", f"{kid} is not a key of a subject on this node")
        token = body.get("token")
        proof = dpop.make_proof(node.signing_key(did), str(body["htm"]), str(body["htu"]), token)
        return JSONResponse({"dpop": proof})

    async def dpop_validate(request: Request) -> Response:
        body = await read_json_object(request)
        require_fields(body, "dpop_proof", "method", "thumbprint", "token", "url")
        try:
            dpop.verify_proof(
                str(body["dpop_proof"]),
                str(body["method"]),
                str(body["url"]),
                node.one_use,
                access_token=str(body["token"]),
                thumbprint=str(body["thumbprint"]),
            )
        except dpop.DpopError as exc:
            return JSONResponse({"valid": False, "reason": str(exc)})
        return JSONResponse({"valid": True})

    # --- discovery (Nuts RFC022) ------------------------------------------------------------
    async def discovery_list(request: Request) -> Response:
        after = request.query_params.get("timestamp", "0")
        if not after.isdigit():
            raise HttpError(400, "Bad Request", "'timestamp' must be a whole number")
        return JSONResponse(discovery.list_entries(node, request.path_params["service"], int(after)))

    async def discovery_register(request: Request) -> Response:
        token = (await read_body(request)).decode("utf-8", errors="replace").strip().strip('"')
        await discovery.register(node, request.path_params["service"], token)
        return Response(status_code=201)

    async def discovery_search(request: Request) -> Response:
        query = dict(request.query_params)
        return JSONResponse(await discovery.search(node, request.path_params["service"], query))

    async def discovery_activation(request: Request) -> Response:
        service_id, subject = request.path_params["service"], request.path_params["subject"]
        if request.method == "GET":
            return JSONResponse(discovery.activation_of(node, service_id, subject))
        if request.method == "DELETE":
            await discovery.deactivate(node, service_id, subject)
            return Response(status_code=204)
        body = await read_body(request)
        try:
            request_body = json.loads(body) if body else {}
        except ValueError:
            raise HttpError(400, "Bad Request", "the request body is not valid JSON") from None
        parameters = (request_body.get("registrationParameters") or {}) if isinstance(request_body, dict) else None
        if not isinstance(parameters, dict):
            raise HttpError(400, "Bad Request", "'registrationParameters' must be an object")
        await discovery.activate(node, service_id, subject, parameters)
        return JSONResponse({})

    async def discovery_reset(request: Request) -> Response:
        discovery.reset(node, request.path_params["service"])
        return Response(status_code=204)

    async def introspect(request: Request) -> Response:
        form = await read_form(request)
        return JSONResponse(oauth.introspect(node, form.get("token", "")))

    public = [
        Route("/iam/{id}/did.json", did_document),
        Route("/.well-known/oauth-authorization-server/oauth2/{subject}", as_metadata),
        Route("/oauth2/{subject}/presentation_definition", presentation_definition),
        Route("/oauth2/{subject}/token", token, methods=["POST"]),
        Route("/statuslist/{did}/{page:int}", status_list),
        Route("/discovery/{service}", discovery_list, methods=["GET"]),
        Route("/discovery/{service}", discovery_register, methods=["POST"]),
    ]
    internal = [
        Route("/internal/vdr/v2/subject", create_subject, methods=["POST"]),
        Route("/internal/vdr/v2/subject", list_subjects, methods=["GET"]),
        Route("/internal/vdr/v2/subject/{subject}", get_subject, methods=["GET"]),
        Route("/internal/vdr/v2/subject/{subject}/service", add_service, methods=["POST"]),
        Route("/internal/vdr/v2/subject/{subject}/service", list_services, methods=["GET"]),
        Route("/internal/vdr/v2/subject/{subject}/service/{service:path}", remove_service, methods=["DELETE"]),
        Route("/internal/vdr/v2/did/{did:path}", resolve, methods=["GET"]),
        Route("/internal/vcr/v2/issuer/vc", issue, methods=["POST"]),
        Route("/internal/vcr/v2/issuer/vc/{id:path}", revoke, methods=["DELETE"]),
        Route("/internal/vcr/v2/search", search, methods=["POST"]),
        Route("/internal/vcr/v2/verifier/vc", verify_vc, methods=["POST"]),
        Route("/internal/vcr/v2/verifier/vp", verify_vp, methods=["POST"]),
        Route("/internal/vcr/v2/holder/vp", create_presentation, methods=["POST"]),
        Route("/internal/vcr/v2/verifier/trust", trust, methods=["POST", "DELETE"]),
        Route("/internal/vcr/v2/holder/{subject}/vc", wallet_add, methods=["POST"]),
        Route("/internal/vcr/v2/holder/{subject}/vc", wallet_list, methods=["GET"]),
        Route("/internal/auth/v2/{subject}/request-service-access-token", request_token, methods=["POST"]),
        Route("/internal/auth/v2/accesstoken/introspect", introspect, methods=["POST"]),
        Route("/internal/discovery/v1/{service}", discovery_search, methods=["GET"]),
        Route("/internal/discovery/v1/{service}/{subject}", discovery_activation, methods=["GET", "POST", "DELETE"]),
        # Not a Nuts API: lets a test make the server start its list over under a new seed.
        Route("/internal/testbed/v1/discovery/{service}/reset", discovery_reset, methods=["POST"]),
        Route("/internal/auth/v2/dpop/validate", dpop_validate, methods=["POST"]),
        Route("/internal/auth/v2/dpop/{kid:path}", dpop_proof, methods=["POST"]),
    ]
    return build_apps(config, public, internal, lifespan)
