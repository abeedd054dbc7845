"""Verifying the signature of a JWT credential or presentation: with the key its `kid` names,
in the signer's DID document as this node resolves it. The data model itself is in
protocols/vcjwt.py."""

from __future__ import annotations

import json
from functools import lru_cache

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from nodes.trust.did import Resolver, verification_key
from protocols.keys import ALGORITHM
from protocols.vcjwt import CredentialError, Jwt


async def verify_signature(token: Jwt, resolver: Resolver, *, memoize: bool = False) -> None:
    """The JWS verifies with the key its `kid` names, in the signer's resolved DID document.

    `memoize` for what is verified again and again unchanged (a credential presented many
    times, a status list): the outcome for these exact bytes and this exact key is kept.
    The DID is still resolved each time, so a key rotated out stops verifying as before."""
    kid = token.header.get("kid")
    if not isinstance(kid, str) or "#" not in kid:
        raise CredentialError("the JWT header has no DID URL in 'kid'")
    if token.header.get("alg") != ALGORITHM:
        raise CredentialError(f"unsupported signature algorithm {token.header.get('alg')!r}")
    try:
        document = await resolver.resolve(token.signer_did)
        jwk = verification_key(document, kid)
    except LookupError as exc:
        raise CredentialError(str(exc)) from None
    check = _remembered_failure if memoize else _failure
    failure = check(token.raw, json.dumps(jwk, sort_keys=True))
    if failure is not None:
        raise CredentialError(f"signature of {kid} does not verify: {failure}")


def _failure(raw: str, jwk: str) -> str | None:
    """None when the compact JWS `raw` verifies with `jwk`, else what went wrong."""
    try:
        jws.deserialize_compact(raw, _public_key(jwk), algorithms=[ALGORITHM])
    except (JoseError, ValueError) as exc:
        return exc.__class__.__name__
    return None


# A pure function of its arguments (token bytes and key), so keeping its answers is safe.
_remembered_failure = lru_cache(maxsize=1024)(_failure)


@lru_cache(maxsize=1024)
def _public_key(jwk: str) -> ECKey:
    """The same few keys sign most of what a node verifies: import each once."""
    return ECKey.import_key(json.loads(jwk))
