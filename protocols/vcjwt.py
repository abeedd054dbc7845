"""Verifiable credentials and presentations as JWTs (W3C VC Data Model 1.1, "JWT encoding").

A credential's claims: `iss` issuer DID, `sub` subject DID, `jti` credential id, `nbf`,
optional `exp`, and `vc` with the type and credentialSubject. A presentation's claims:
`iss`/`sub` holder DID, `aud`, `nonce`, `jti`, `nbf`, `exp`, and `vp` with the credentials.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from protocols.didweb import key_id
from protocols.keys import ALGORITHM

VC_CONTEXT = ["https://www.w3.org/2018/credentials/v1"]
CLOCK_SKEW_SECONDS = 5


class CredentialError(ValueError):
    """A credential or presentation that does not hold; the message says why."""


@dataclass(frozen=True)
class Jwt:
    """A compact JWS read without verifying it: rules are checked before signatures."""

    raw: str
    header: dict[str, Any]
    claims: dict[str, Any]

    @classmethod
    def read(cls, token: str) -> Jwt:
        if not isinstance(token, str) or token.count(".") != 2:
            raise CredentialError("not a compact JWT")
        try:
            compact = jws.extract_compact(token.encode())
            claims = json.loads(compact.payload)
        except (JoseError, ValueError) as exc:
            raise CredentialError(f"not a readable JWT: {exc}") from None
        if not isinstance(claims, dict):
            raise CredentialError("the JWT payload is not a JSON object")
        return cls(raw=token, header=dict(compact.headers()), claims=claims)

    @property
    def signer_did(self) -> str:
        kid = self.header.get("kid", "")
        return kid.split("#", 1)[0] if isinstance(kid, str) else ""


def sign(claims: dict[str, Any], did: str, key: ECKey) -> str:
    header = {"alg": ALGORITHM, "typ": "JWT", "kid": key_id(did)}
    return jws.serialize_compact(header, json.dumps(claims, separators=(",", ":")), key)


def issue_credential(
    issuer_did: str,
    key: ECKey,
    types: list[str],
    *,
    subject: dict[str, Any],
    expires_at: int | None,
    context: list[str] | None = None,
    status: dict[str, Any] | None = None,
) -> tuple[str, str]:
    """Returns (credential id, JWT). `status` is a credentialStatus entry (revocation)."""
    now = int(time.time())
    credential_id = f"{issuer_did}#{uuid.uuid4()}"
    vc = {
        "@context": context or VC_CONTEXT,
        "type": ["VerifiableCredential", *[t for t in types if t != "VerifiableCredential"]],
        "credentialSubject": subject,
    }
    if status is not None:
        vc["credentialStatus"] = status
    claims: dict[str, Any] = {"iss": issuer_did, "sub": subject["id"], "jti": credential_id, "nbf": now, "vc": vc}
    if expires_at is not None:
        claims["exp"] = expires_at
    return credential_id, sign(claims, issuer_did, key)


def sign_presentation(
    holder_did: str,
    key: ECKey,
    credentials: list[str],
    *,
    audience: str | None,
    nonce: str | None,
    nbf: int,
    exp: int | None,
    types: tuple[str, ...] = (),
    extra_claims: dict[str, Any] | None = None,
) -> str:
    """A JWT presentation of `credentials`, signed by the holder. `types` are added to
    VerifiablePresentation (e.g. a retraction); `extra_claims` to the JWT (e.g. retract_jti)."""
    vp: dict[str, Any] = {"@context": VC_CONTEXT, "type": ["VerifiablePresentation", *types]}
    if credentials:
        vp["verifiableCredential"] = credentials
    claims: dict[str, Any] = {"iss": holder_did, "sub": holder_did, "jti": str(uuid.uuid4()), "nbf": nbf, "vp": vp}
    optional = {"aud": audience, "nonce": nonce, "exp": exp}
    claims.update({name: value for name, value in optional.items() if value is not None})
    claims.update(extra_claims or {})
    return sign(claims, holder_did, key)


def presented(token: Jwt) -> list[str]:
    """The JWT credentials a presentation carries (none for, say, a retraction)."""
    body = token.claims.get("vp")
    if not isinstance(body, dict):
        raise CredentialError("the presentation has no 'vp' claim")
    inner = body.get("verifiableCredential", [])
    inner = inner if isinstance(inner, list) else [inner]
    if not all(isinstance(c, str) for c in inner):
        raise CredentialError("the presentation must carry JWT credentials")
    return inner


def presentation_types(token: Jwt) -> list[str]:
    body = token.claims.get("vp")
    types = body.get("type", []) if isinstance(body, dict) else []
    return types if isinstance(types, list) else [types]


def credential_view(token: Jwt) -> dict[str, Any]:
    """The W3C JSON view of a JWT credential, which presentation definitions are matched on."""
    claims = token.claims
    vc = claims.get("vc")
    if not isinstance(vc, dict) or not isinstance(vc.get("credentialSubject"), dict):
        raise CredentialError("the JWT has no 'vc' claim with a credentialSubject")
    subject = dict(vc["credentialSubject"])
    subject.setdefault("id", claims.get("sub"))
    if "sub" in claims and subject["id"] != claims["sub"]:
        raise CredentialError("the JWT's 'sub' and credentialSubject.id disagree")
    view: dict[str, Any] = {
        "@context": vc.get("@context", VC_CONTEXT),
        "id": claims.get("jti"),
        "type": vc.get("type", []),
        "issuer": claims.get("iss"),
        "issuanceDate": _iso(claims.get("nbf")),
        "credentialSubject": subject,
    }
    if "exp" in claims:
        view["expirationDate"] = _iso(claims["exp"])
    if isinstance(vc.get("credentialStatus"), dict | list):
        view["credentialStatus"] = vc["credentialStatus"]
    return view


def check_validity_period(token: Jwt, now: float, what: str) -> None:
    nbf, exp = token.claims.get("nbf"), token.claims.get("exp")
    if isinstance(nbf, int | float) and now + CLOCK_SKEW_SECONDS < nbf:
        raise CredentialError(f"{what} is not valid yet")
    if isinstance(exp, int | float) and now - CLOCK_SKEW_SECONDS >= exp:
        raise CredentialError(f"{what} has expired")


def types_of(view: dict[str, Any]) -> list[str]:
    types = view.get("type", [])
    return [t for t in (types if isinstance(types, list) else [types]) if t != "VerifiableCredential"]


def _iso(epoch: Any) -> str | None:
    if not isinstance(epoch, int | float):
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
