"""Service-to-service access tokens (Nuts RFC021): the authorization server with the
`vp_token-bearer` grant, introspection, and the client that obtains tokens for a subject.

The token endpoint checks its rules in the order the Nuts node v6 does, so a request that
breaks one rule is refused for that rule (shared/REFERENCE.md, section 1)."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

from nodes.common.http import HttpError, call_json
from nodes.trust import dpop
from nodes.trust.credentials import verify_signature
from nodes.trust.node import TrustNode
from nodes.trust.policy import organisation_definition
from nodes.trust.presentation import SubmissionError, check_submission
from protocols import vcjwt as vc
from protocols.didweb import key_id
from protocols.pex import submission_for

GRANT_TYPE = "vp_token-bearer"
MAX_VP_WINDOW_SECONDS = 5
NONCE_MEMORY_SECONDS = 10
TOKEN_REUSE_MARGIN_SECONDS = 30  # a cached token is handed out again while it has this much life left
FAILURE_MEMORY_SECONDS = 60  # how long the token-failure-cached defect answers a failure again


class OAuthError(HttpError):
    """An RFC 6749 error response: `{"error": code, "error_description": why}`."""

    def __init__(self, code: str, description: str, status: int = 400):
        super().__init__(status, code, description, error=code, error_description=description)


def issuer_url(node: TrustNode, subject: str) -> str:
    return f"{node.config.public_url}/oauth2/{subject}"


def metadata(node: TrustNode, subject: str) -> dict[str, Any]:
    node.subject(subject)
    issuer = issuer_url(node, subject)
    return {
        "issuer": node.config.public_url if node.faulty("as-metadata-wrong-issuer") else issuer,
        "token_endpoint": f"{issuer}/token",
        "presentation_definition_endpoint": f"{issuer}/presentation_definition",
        "grant_types_supported": [GRANT_TYPE],
        "token_endpoint_auth_methods_supported": ["none"],
        "dpop_signing_alg_values_supported": [dpop.ALGORITHM],
        "vp_formats_supported": {
            "jwt_vp": {"alg_values_supported": ["ES256"]},
            "jwt_vc": {"alg_values_supported": ["ES256"]},
        },
    }


def presentation_definition(node: TrustNode, scope: str) -> dict[str, Any]:
    entry = node.policy.get(scope)
    if entry is None and node.faulty("unknown-scope-accepted"):
        entry = {"organization": organisation_definition(scope)}
    if entry is None:
        raise OAuthError("invalid_scope", f"unsupported scope {scope!r}: it is not in this node's policy")
    return entry["organization"]


async def token(node: TrustNode, *, subject: str, form: dict[str, str], dpop_proof: str | None) -> dict[str, Any]:
    node.subject(subject)
    # A DPoP proof is about the request as a whole, so it is checked before the presentation.
    bound_to = _token_endpoint_proof(node, subject, dpop_proof) if dpop_proof is not None else None
    if node.faulty("token-ignores-dpop-proof"):
        bound_to = None
    if form.get("grant_type") != GRANT_TYPE:
        raise OAuthError("unsupported_grant_type", f"grant_type must be {GRANT_TYPE!r}")
    for name in ("assertion", "presentation_submission", "scope"):
        if not form.get(name):
            raise OAuthError("invalid_request", f"missing form field {name!r}")
    definition = presentation_definition(node, form["scope"])
    now = time.time()
    try:
        vp = vc.Jwt.read(form["assertion"])
        credentials = [vc.Jwt.read(c) for c in vc.presented(vp)]
        if not credentials:
            raise vc.CredentialError("the presentation carries no credentials")
        views = [vc.credential_view(c) for c in credentials]
    except vc.CredentialError as exc:
        raise OAuthError("invalid_request", f"assertion: {exc}") from None

    # 1. The presentation is short-lived: at most 5 seconds between nbf and exp.
    if not node.faulty("token-skips-validity-window"):
        _check_window(vp, now)
    # 2. One signer, who is the subject of every credential presented.
    signer = vp.signer_did
    if not node.faulty("token-skips-signer-check"):
        _check_signer(vp, views)
    # 3. The audience is this authorization server's issuer URL (the node, not RFC021 text).
    audience = vp.claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if issuer_url(node, subject) not in audiences and not node.faulty("token-skips-audience-check"):
        raise OAuthError(
            "invalid_request", f"rule audience: the presentation audience 'aud' must be {issuer_url(node, subject)}"
        )
    # 4. The submission satisfies the scope's presentation definition.
    claims = _submitted_claims(node, definition, form["presentation_submission"], views)
    # 5. The nonce is new.
    _check_nonce(node, vp, signer, now)
    # 6. Signatures, validity and trust of everything presented.
    try:
        await verify_signature(vp, node.resolver)
        for credential in credentials:
            await node.verify_credential(
                credential,
                now,
                check_trust=not node.faulty("token-skips-issuer-trust"),
                check_expiry=not node.faulty("token-skips-credential-expiry"),
                check_revocation=not node.faulty("token-skips-revocation"),
            )
    except vc.CredentialError as exc:
        raise OAuthError("invalid_request", f"rule verification: {exc}") from None
    client = views[0]["issuer"] if node.faulty("introspection-wrong-client") else signer
    answer = _issue_token(node, subject, client, form["scope"], claims, int(now), bound_to)
    evidence = {**_evidence(definition, form), "exp": int(now) + node.token_lifetime}  # kept as long as the token
    node.token_evidence.put(answer["access_token"], evidence)
    return answer


def _evidence(definition: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
    """What extended introspection adds: the definition fulfilled (keyed by the wallet owner
    type), the submission per definition id, and the presentation itself."""
    try:
        submission = json.loads(form["presentation_submission"])
    except (ValueError, RecursionError):
        submission = {}
    return {
        "presentation_definitions": {"organization": definition},
        "presentation_submissions": {definition["id"]: submission if isinstance(submission, dict) else {}},
        "vps": [form["assertion"]],
    }


def _check_signer(vp: vc.Jwt, views: list[dict[str, Any]]) -> None:
    signer = vp.signer_did
    if not signer or vp.claims.get("iss") != signer or vp.claims.get("sub", signer) != signer:
        raise OAuthError(
            "invalid_request", "rule signer: the presentation's 'iss' (and 'sub') must be the signer's DID"
        )
    for view in views:
        if view["credentialSubject"].get("id") != signer:
            raise OAuthError(
                "invalid_request",
                f"rule signer: credential {view['id']} is about another subject than the signer {signer}",
            )


def _submitted_claims(
    node: TrustNode, definition: dict[str, Any], submission_json: str, views: list[dict[str, Any]]
) -> dict[str, Any]:
    """The claims the definition's field ids name, once the submission is found to answer it."""
    if node.faulty("token-skips-presentation-definition"):
        return {}
    try:
        submission = json.loads(submission_json)
        return check_submission(definition, submission, {"verifiableCredential": views})
    except (ValueError, RecursionError, SubmissionError) as exc:
        raise OAuthError("invalid_request", f"rule presentation_definition: {exc}") from None


def _check_nonce(node: TrustNode, vp: vc.Jwt, signer: str, now: float) -> None:
    nonce = vp.claims.get("nonce")
    if not isinstance(nonce, str) or not nonce:
        raise OAuthError("invalid_request", "rule nonce: the presentation has no nonce")
    if node.faulty("token-skips-nonce-check"):
        return
    # Remembered while the presentation could still be accepted, and at least 10 s.
    remember_until = max(now + NONCE_MEMORY_SECONDS, vp.claims["exp"] + vc.CLOCK_SKEW_SECONDS)
    remembered = f"nonce|{signer}" if node.faulty("nonce-remembered-per-signer") else f"nonce|{signer}|{nonce}"
    if not node.one_use.first_use(remembered, now, remember_until):
        raise OAuthError("invalid_request", "rule nonce: this nonce was used before")


def _check_window(vp: vc.Jwt, now: float) -> None:
    nbf, exp = vp.claims.get("nbf"), vp.claims.get("exp")
    if not isinstance(nbf, int | float) or not isinstance(exp, int | float):
        raise OAuthError("invalid_request", "rule validity: the presentation needs 'nbf' and 'exp'")
    if exp <= nbf:
        raise OAuthError("invalid_request", "rule validity: the presentation's 'exp' is not after its 'nbf'")
    if exp - nbf > MAX_VP_WINDOW_SECONDS:
        raise OAuthError(
            "invalid_request",
            f"rule validity: the presentation is valid for {exp - nbf:.0f} s, too long: "
            f"at most {MAX_VP_WINDOW_SECONDS} s is allowed",
        )
    if not nbf - vc.CLOCK_SKEW_SECONDS <= now < exp + vc.CLOCK_SKEW_SECONDS:
        raise OAuthError("invalid_request", "rule validity: the presentation is not valid at this time")


def _token_endpoint_proof(node: TrustNode, subject: str, proof: str) -> str:
    """The thumbprint of the key a valid proof for this token endpoint was signed with."""
    try:
        verified = dpop.verify_proof(
            proof, "POST", f"{issuer_url(node, subject)}/token", seen=node.dpop_memory("token")
        )
    except dpop.DpopError as exc:
        raise OAuthError("invalid_dpop_proof", str(exc)) from None
    return verified.thumbprint


def _issue_token(
    node: TrustNode,
    subject: str,
    client: str,
    scope: str,
    claims: dict[str, Any],
    now: int,
    bound_to: str | None,
) -> dict[str, Any]:
    """An opaque token kept server side; DPoP-bound (cnf.jkt) when the request had a proof."""
    access_token = secrets.token_urlsafe(32)
    if node.faulty("introspection-omits-policy-claims"):
        claims = {}
    record = {
        **claims,  # first: a policy field id may not overwrite what the node itself vouches for
        "iss": issuer_url(node, subject),
        "client_id": client,
        "scope": scope,
        "iat": now,
        "exp": now + node.token_lifetime,
    }
    if bound_to is not None:
        record["cnf"] = {"jkt": bound_to}
    node.access_tokens.put(access_token, record)
    token_type = "DPoP" if bound_to is not None else "Bearer"
    return {"access_token": access_token, "token_type": token_type, "expires_in": node.token_lifetime, "scope": scope}


def introspect_extended(node: TrustNode, access_token: str) -> dict[str, Any]:
    answer = introspect(node, access_token)
    evidence = node.token_evidence.get(access_token) if answer["active"] else None
    if evidence is None:
        return answer
    return {**answer, **{k: v for k, v in evidence.items() if k != "exp"}}


def introspect(node: TrustNode, access_token: str) -> dict[str, Any]:
    record = node.access_tokens.get(access_token) if access_token else None
    if record is None and node.faulty("introspection-always-active"):
        return {"active": True}
    if record is None:  # unknown or expired
        return {"active": False}
    return {**record, "active": True}


async def request_service_access_token(
    node: TrustNode, subject: str, body: dict[str, Any], *, use_cache: bool = True
) -> dict[str, Any]:
    """Client side: find the authorization server, present the wallet, and get a token;
    a token obtained before is handed out again while it lasts, unless `use_cache` is off."""
    holder = node.subject(subject)
    server, scope = body.get("authorization_server"), body.get("scope")
    if not isinstance(server, str) or not server.startswith("https://"):
        raise HttpError(400, "Bad Request", "'authorization_server' must be an https URL")
    if not isinstance(scope, str) or not scope:
        raise HttpError(400, "Bad Request", "'scope' is required")
    token_type = body.get("token_type", "DPoP")  # the Nuts node's default
    if token_type not in ("DPoP", "Bearer"):
        raise HttpError(400, "Bad Request", "'token_type' must be 'DPoP' or 'Bearer'")
    cache_key = (subject, server, scope, token_type)
    remembered = node.client_failures.get(cache_key) if use_cache else None
    if remembered is not None and remembered[0] > time.time():
        raise remembered[1]  # only a faulty node remembers failures (token-failure-cached)
    cached = node.client_tokens.get(cache_key) if use_cache else None
    if cached is not None and cached[0] - TOKEN_REUSE_MARGIN_SECONDS > time.time():
        return {**cached[1], "expires_in": int(cached[0] - time.time())}
    try:
        answer = await _obtain_token(node, holder, subject, server, scope, token_type)
    except HttpError as failure:
        if failure.status >= 500 and node.faulty("token-failure-cached"):
            node.client_failures[cache_key] = (time.time() + FAILURE_MEMORY_SECONDS, failure)
        raise
    expires_in = answer.get("expires_in")
    if isinstance(expires_in, int) and expires_in > TOKEN_REUSE_MARGIN_SECONDS:
        node.client_tokens[cache_key] = (time.time() + expires_in, answer)
    return answer


async def _obtain_token(
    node: TrustNode, holder: dict[str, Any], subject: str, server: str, scope: str, token_type: str
) -> dict[str, Any]:
    token_endpoint, definition_endpoint = await _server_metadata(node, server)
    definition = await call_json(
        node.client, "GET", definition_endpoint, what="presentation definition", params={"scope": scope}
    )
    if not isinstance(definition.get("id"), str) or not isinstance(definition.get("input_descriptors"), list):
        raise HttpError(502, "Bad Gateway", f"the presentation definition at {definition_endpoint} is malformed")
    credentials, chosen = node.credentials_for(subject, definition, f"scope {scope!r}")
    now = int(time.time())
    key = node.signing_key(holder["did"])
    assertion = vc.sign_presentation(
        holder["did"],
        key,
        credentials,
        audience=server,
        nonce=secrets.token_urlsafe(16),
        nbf=now,
        exp=now + MAX_VP_WINDOW_SECONDS,
    )
    submission = submission_for(definition, chosen)
    form = {
        "grant_type": GRANT_TYPE,
        "assertion": assertion,
        "presentation_submission": json.dumps(submission),
        "scope": scope,
    }
    headers = {"DPoP": dpop.make_proof(key, "POST", token_endpoint)} if token_type == "DPoP" else {}
    answer = await call_json(
        node.client,
        "POST",
        token_endpoint,
        what="the authorization server's token endpoint",
        data=form,
        headers=headers,
    )
    if not isinstance(answer.get("access_token"), str):
        raise HttpError(502, "Bad Gateway", f"{token_endpoint} answered without an access_token")
    if answer.get("token_type") != token_type:
        raise HttpError(502, "Bad Gateway", f"asked for a {token_type} token, got {answer.get('token_type')!r}")
    if token_type == "DPoP":
        answer["dpop_kid"] = key_id(holder["did"])  # the key to make resource-request proofs with
    return answer


async def _server_metadata(node: TrustNode, server: str) -> tuple[str, str]:
    """The token and presentation-definition endpoints of `server`, from metadata whose
    issuer is `server` itself (RFC 8414, section 3.3): a node only follows endpoints that
    the server it was asked to use vouches for."""
    meta = await call_json(node.client, "GET", _metadata_url(server), what="authorization server metadata")
    if meta.get("issuer") != server:
        raise HttpError(502, "Bad Gateway", f"the metadata of {server} names another issuer: {meta.get('issuer')!r}")
    if GRANT_TYPE not in meta.get("grant_types_supported", []):
        raise HttpError(502, "Bad Gateway", f"{server} does not support the {GRANT_TYPE} grant")
    token, definition = meta.get("token_endpoint"), meta.get("presentation_definition_endpoint")
    if not (isinstance(token, str) and isinstance(definition, str)) or not all(
        e.startswith("https://") for e in (token, definition)
    ):
        raise HttpError(502, "Bad Gateway", f"the metadata of {server} lacks https token or definition endpoints")
    return token, definition


def _metadata_url(issuer: str) -> str:
    """RFC 8414 section 3: the well-known segment goes between host and path."""
    parts = urlsplit(issuer)
    return f"{parts.scheme}://{parts.netloc}/.well-known/oauth-authorization-server{parts.path}"
