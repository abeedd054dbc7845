"""Who may call the vault's app API: the shared resource server (introspection at the vault
provider's trust node, the DPoP binding, the scope), narrowed to what Solid-OIDC asks of a pod.
Every token is bound to the app's key, so a token without a binding is refused whatever scheme
it comes with, and every challenge names the DPoP scheme alone (RFC 9449, sections 7.1 and 7.2):
a client must not be told that a Bearer token would do."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.requests import Request

from nodes.common.faults import FaultSwitch
from nodes.common.http import HttpError
from nodes.common.resource import ResourceServer
from nodes.trust.policy import DEFAULT_SCOPES
from protocols.nodeconfig import NodeConfig

SCOPE = "welldata"
ALGS = 'algs="ES256"'
INVALID_TOKEN = f'DPoP error="invalid_token", {ALGS}'
# The shared resource server's refusals whose challenge names Bearer, as the vault words them.
DPOP_ONLY_CHALLENGES = {
    "token-missing": f"DPoP {ALGS}",
    "token-inactive": INVALID_TOKEN,
    "token-other-organisation": INVALID_TOKEN,
    "token-scope": f'DPoP error="insufficient_scope", {ALGS}',
}
DPOP_VALIDATION = "/internal/auth/v2/dpop/validate"
# What the trust node's DPoP verdict says for each check a faulty vault overlooks (self-test only).
OVERLOOKED = {
    "dpop-replay-accepted": ("used before",),
    "dpop-request-unchecked": ("is for method", "DPoP proof is for '"),
    "dpop-binding-unchecked": ("another key", "ath does not match"),
}


def dpop_required() -> HttpError:
    detail = "this vault accepts DPoP-bound tokens only (Solid-OIDC): this token is not bound to a key"
    return HttpError(401, "Unauthorized", detail, headers={"WWW-Authenticate": INVALID_TOKEN}, code="dpop-required")


def dpop_only(error: HttpError) -> HttpError:
    """The shared refusal with the vault's challenge; an unbound token is `dpop-required` here
    whether it came with the Bearer or the DPoP scheme."""
    if error.code == "token-not-dpop-bound":
        return dpop_required()
    challenge = DPOP_ONLY_CHALLENGES.get(error.code or "")
    if challenge is None:
        return error
    headers = {**error.headers, "WWW-Authenticate": challenge}
    return HttpError(error.status, error.title, error.detail, headers, code=error.code, **error.extra)


class VaultResources(ResourceServer):
    def __init__(self, config: NodeConfig, client: httpx.AsyncClient, faulty: FaultSwitch):
        super().__init__(config, client)
        self.faulty = faulty

    async def app_token(self, request: Request) -> dict[str, Any]:
        """The introspection answer of the app's DPoP-bound welldata token."""
        scopes = set(DEFAULT_SCOPES) if self.faulty("any-scope-accepted") else {SCOPE}
        try:
            token = await self.authorise(request, scopes)
        except HttpError as exc:
            raise dpop_only(exc) from None
        if not (token.get("cnf") or {}).get("jkt") and not self.faulty("bearer-accepted"):
            raise dpop_required()
        return token

    async def _check_binding(self, request: Request, scheme: str, token: str, answer: dict[str, Any]) -> None:
        bound = bool((answer.get("cnf") or {}).get("jkt"))
        if bound and scheme != "dpop" and self.faulty("dpop-token-as-bearer"):
            return
        if bound and scheme == "dpop" and not request.headers.getlist("dpop") and self.faulty("dpop-proof-optional"):
            return
        await super()._check_binding(request, scheme, token, answer)

    async def ask_trust_node(self, path: str, what: str, **kwargs: Any) -> dict[str, Any]:
        answer = await super().ask_trust_node(path, what, **kwargs)
        if path == DPOP_VALIDATION and not answer.get("valid") and self._overlooks(str(answer.get("reason", ""))):
            return {"valid": True}
        return answer

    def _overlooks(self, reason: str) -> bool:
        """A faulty vault does not make one of the proof's checks: it takes a failure of that
        check for a valid proof."""
        return any(self.faulty(fault) and any(s in reason for s in says) for fault, says in OVERLOOKED.items())
