"""DPoP (RFC 9449): proofs that bind an access token to a key the client holds.

A proof is a JWT with `typ: dpop+jwt` and the public key in its header; its claims name
the request it is for (`htm`, `htu`), when it was made (`iat`), a one-use `jti`, and for
resource requests the hash of the access token (`ath`)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from nodes.trust.replay import OneUseMemory
from protocols.keys import ALGORITHM, public_jwk

PROOF_TYPE = "dpop+jwt"
IAT_WINDOW_SECONDS = 60  # how far a proof's iat may lie from now
JTI_MEMORY_SECONDS = 2 * IAT_WINDOW_SECONDS  # a jti is remembered as long as its proof is acceptable
MAX_JTI_LENGTH = 256  # remembered ids cost memory: a client may not choose them arbitrarily long


class DpopError(ValueError):
    """The proof does not hold; the message says which check failed."""


def token_hash(access_token: str) -> str:
    """`ath`: base64url of the SHA-256 of the access token (RFC 9449, section 4.2)."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def make_proof(key: ECKey, method: str, url: str, *, access_token: str | None = None) -> str:
    header = {"typ": PROOF_TYPE, "alg": ALGORITHM, "jwk": public_jwk(key)}
    claims: dict[str, Any] = {
        "jti": str(uuid.uuid4()),
        "htm": method.upper(),
        "htu": target_uri(url),
        "iat": int(time.time()),
    }
    if access_token is not None:
        claims["ath"] = token_hash(access_token)
    return jws.serialize_compact(header, json.dumps(claims, separators=(",", ":")), key)


def target_uri(url: str) -> str:
    """`htu` compared as RFC 9449 (section 4.3) asks: without query and fragment, scheme and
    host in lower case, and the default port left out (RFC 3986, section 6.2.3)."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    default = {"https": 443, "http": 80}.get(scheme)
    netloc = host if parts.port in (None, default) else f"{host}:{parts.port}"
    return urlunsplit((scheme, netloc, parts.path or "/", "", ""))


@dataclass(frozen=True)
class VerifiedProof:
    jti: str
    thumbprint: str  # of the proof's key: what a DPoP-bound token's cnf.jkt holds


def verify_proof(
    proof: str,
    method: str,
    url: str,
    *,
    seen: OneUseMemory,
    access_token: str | None = None,
    thumbprint: str | None = None,
) -> VerifiedProof:
    """The checks of RFC 9449, section 4.3, that concern the proof itself (the caller checks
    that the request carried exactly one DPoP header)."""
    try:
        compact = jws.extract_compact(proof.encode())
        header = dict(compact.headers())
        claims = json.loads(compact.payload)
    except (JoseError, ValueError, AttributeError, RecursionError) as exc:
        raise DpopError(f"the DPoP proof is not a readable JWT: {exc.__class__.__name__}") from None
    if header.get("typ") != PROOF_TYPE:
        raise DpopError(f"the DPoP proof's typ must be {PROOF_TYPE}")
    if header.get("alg") != ALGORITHM:
        raise DpopError(f"the DPoP proof's alg must be {ALGORITHM}")
    jwk = header.get("jwk")
    if not isinstance(jwk, dict) or "d" in jwk:
        raise DpopError("the DPoP proof must carry a public key in its jwk header")
    try:
        key = ECKey.import_key(jwk)
        jws.deserialize_compact(proof, key, algorithms=[ALGORITHM])
    except (JoseError, ValueError) as exc:
        raise DpopError(f"the DPoP proof's signature does not verify: {exc.__class__.__name__}") from None
    if not isinstance(claims, dict):
        raise DpopError("the DPoP proof's payload is not a JSON object")
    if claims.get("htm") != method.upper():
        raise DpopError(f"method mismatch: the DPoP proof is for method {claims.get('htm')!r}, not {method.upper()}")
    htu = claims.get("htu")
    if not isinstance(htu, str) or target_uri(htu) != target_uri(url):
        raise DpopError(f"url mismatch: the DPoP proof is for {claims.get('htu')!r}, not {target_uri(url)}")
    now = time.time()
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or abs(now - iat) > IAT_WINDOW_SECONDS:
        raise DpopError("the DPoP proof's iat is missing or too far from now")
    if access_token is not None and claims.get("ath") != token_hash(access_token):
        raise DpopError("ath mismatch: the DPoP proof's ath does not match the access token")
    key_thumbprint = key.thumbprint()
    if thumbprint is not None and key_thumbprint != thumbprint:
        raise DpopError("jkt mismatch: the DPoP proof is signed with another key than the token is bound to")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
        raise DpopError(f"the DPoP proof's jti is missing or longer than {MAX_JTI_LENGTH} characters")
    if not seen.first_use(f"dpop|{jti}", now, now + JTI_MEMORY_SECONDS):
        raise DpopError("jti already used: the DPoP proof was used before")
    return VerifiedProof(jti=jti, thumbprint=key_thumbprint)
