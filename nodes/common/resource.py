"""The resource-server side of Nuts RFC021, shared by every node that serves data behind
access tokens (data stations, the permit authority): a token is checked by introspection at
the organisation's own trust node, its DPoP binding is enforced, and its scope must be one the
endpoint serves."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
from starlette.requests import Request

from nodes.common.http import HttpError, call_json
from protocols.nodeconfig import NodeConfig

# Challenges name what was wrong in the standard's own terms: no token at all gets a bare
# challenge (RFC 6750, section 3.1), a token that does not hold `invalid_token`, a bad or
# missing proof for a DPoP-bound token `invalid_dpop_proof` (RFC 9449, section 7.1).
NO_TOKEN_CHALLENGE = {"WWW-Authenticate": 'Bearer, DPoP algs="ES256"'}
CHALLENGE = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
DPOP_TOKEN_CHALLENGE = {"WWW-Authenticate": 'DPoP error="invalid_token", algs="ES256"'}
DPOP_CHALLENGE = {"WWW-Authenticate": 'DPoP error="invalid_dpop_proof", algs="ES256"'}
SCOPE_CHALLENGE = {"WWW-Authenticate": 'Bearer error="insufficient_scope"'}


class ResourceServer:
    def __init__(self, config: NodeConfig, client: httpx.AsyncClient, overlooks: Callable[[str], bool] | None = None):
        """`overlooks(rule)`: true for a rule this node lets pass anyway (a deliberately faulty
        node of the mutation self-test: token-scope, token-other-organisation, token-dpop-bound,
        dpop-proof-invalid); None, as normally, for none."""
        self.config = config
        self.client = client
        self.overlooks = overlooks or (lambda _rule: False)

    async def authorise(self, request: Request, scopes: set[str]) -> dict[str, Any]:
        """The introspection answer of the request's token, when it may use this endpoint."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        scheme, token = scheme.lower(), token.strip()
        if scheme not in ("bearer", "dpop") or not token:
            detail = "an access token is required (Authorization: Bearer or DPoP)"
            raise HttpError(401, "Unauthorized", detail, headers=NO_TOKEN_CHALLENGE, code="token-missing")
        answer = await self.ask_trust_node(
            "/internal/auth/v2/accesstoken/introspect", "token introspection", data={"token": token}
        )
        if not answer.get("active"):
            detail = "the access token is not active"
            raise HttpError(401, "Unauthorized", detail, headers=CHALLENGE, code="token-inactive")
        await self._check_binding(request, scheme, token, answer)
        expected_issuer = self.config.peers.get("authorization_server")
        if expected_issuer and answer.get("iss") != expected_issuer and not self.overlooks("token-other-organisation"):
            # The trust node may serve several subjects; only this organisation's tokens count.
            detail = "the access token was issued for another organisation"
            raise HttpError(401, "Unauthorized", detail, headers=CHALLENGE, code="token-other-organisation")
        if answer.get("scope") not in scopes and not self.overlooks("token-scope"):
            detail = f"scope {answer.get('scope')!r} does not give access to this endpoint"
            raise HttpError(403, "Forbidden", detail, headers=SCOPE_CHALLENGE, code="token-scope")
        return answer

    async def ask_trust_node(self, path: str, what: str, **kwargs: Any) -> dict[str, Any]:
        """A call to the organisation's trust node; if it cannot answer, neither can we (503)."""
        url = f"{self.config.peers['trust_internal']}{path}"
        return await call_json(self.client, "POST", url, what=what, failure_status=503, **kwargs)

    async def _check_binding(self, request: Request, scheme: str, token: str, answer: dict[str, Any]) -> None:
        """A DPoP-bound token (cnf.jkt) is usable only with the DPoP scheme and a fresh proof
        for this very request, signed by the bound key (RFC 9449, section 7); a Bearer token
        only with the Bearer scheme."""
        jkt = (answer.get("cnf") or {}).get("jkt")
        if jkt is None:
            if scheme == "dpop":
                detail = "this token is not DPoP-bound: use Bearer"
                raise HttpError(401, "Unauthorized", detail, headers=CHALLENGE, code="token-not-dpop-bound")
            return
        if scheme != "dpop" and self.overlooks("token-dpop-bound"):
            return
        if scheme != "dpop":
            detail = "this token is DPoP-bound: use the DPoP scheme"
            raise HttpError(401, "Unauthorized", detail, headers=DPOP_TOKEN_CHALLENGE, code="token-dpop-bound")
        proofs = request.headers.getlist("dpop")
        if len(proofs) != 1:
            detail = "exactly one DPoP proof is required with this token"
            raise HttpError(401, "Unauthorized", detail, headers=DPOP_CHALLENGE, code="dpop-proof-missing")
        # The URL the proof must name is the one this node serves, not what the client's Host
        # header claims.
        url = self.config.public_url + request.url.path
        body = {"dpop_proof": proofs[0], "method": request.method, "url": url, "thumbprint": jkt, "token": token}
        verdict = await self.ask_trust_node("/internal/auth/v2/dpop/validate", "DPoP validation", json=body)
        if not verdict.get("valid") and not self.overlooks("dpop-proof-invalid"):
            detail = f"the DPoP proof is not valid: {verdict.get('reason', 'no reason given')}"
            raise HttpError(401, "Unauthorized", detail, headers=DPOP_CHALLENGE, code="dpop-proof-invalid")


MAX_INT_PARAM = 1_000_000  # a count or offset beyond any collection a node keeps


def int_param(request: Request, name: str, default: int) -> int:
    """A whole-number query parameter of at most MAX_INT_PARAM. ASCII digits only: `str.isdigit`
    also takes digits such as '²' that `int` refuses, and a number of many digits overflows the
    storage's integers further down; both would be a server error, not the caller's."""
    value = request.query_params.get(name, str(default))
    if not re.fullmatch(r"[0-9]{1,7}", value) or int(value) > MAX_INT_PARAM:
        raise HttpError(400, "Bad Request", f"query parameter {name!r} must be a whole number up to {MAX_INT_PARAM}")
    return int(value)
