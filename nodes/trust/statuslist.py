"""Revocation with StatusList2021 (W3C VC Status List 2021): every revocable credential
gets an index in its issuer's status list; revoking sets that bit; the list is a credential
itself, signed by the issuer and served publicly at `/statuslist/{did}/{page}`."""

from __future__ import annotations

import base64
import gzip
import time
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import httpx
from joserfc.jwk import ECKey

from nodes.common.storage import DocumentStore
from nodes.trust.credentials import verify_signature
from nodes.trust.did import Resolver
from protocols import vcjwt as vc

LIST_BITS = 131072  # 16 KiB: the spec's minimum list size, so one index does not stand out
PAGE = 1  # one page holds LIST_BITS credentials, more than a test network issues
COUNTERS = "statuslist_counters"
REVOKED = "statuslist_revoked"
STATUS_CONTEXT = "https://w3id.org/vc/status-list/2021/v1"


def list_url(public_url: str, issuer: str, page: int = PAGE) -> str:
    return f"{public_url}/statuslist/{quote(issuer, safe='')}/{page}"


class StatusLists:
    def __init__(self, store: DocumentStore, public_url: str):
        self._store = store
        self._public_url = public_url
        self._signed: dict[str, str] = {}  # issuer -> its list as last signed; dropped on a revocation

    def new_entry(self, issuer: str) -> dict[str, Any]:
        """Reserve the next index of the issuer's list: the credentialStatus to embed."""
        counter = self._store.get(COUNTERS, issuer) or {"next": 0}
        index = counter["next"]
        if index >= LIST_BITS:
            raise ValueError(f"the status list of {issuer} is full")
        self._store.put(COUNTERS, issuer, {"next": index + 1})
        url = list_url(self._public_url, issuer)
        return {
            "id": f"{url}#{index}",
            "type": "StatusList2021Entry",
            "statusPurpose": "revocation",
            "statusListIndex": str(index),
            "statusListCredential": url,
        }

    def revoke(self, issuer: str, index: int) -> bool:
        """Set the bit; False when it was set already."""
        revoked = set(self._revoked(issuer))
        if index in revoked:
            return False
        self._store.put(REVOKED, issuer, {"indices": sorted(revoked | {index})})
        self._signed.pop(issuer, None)
        return True

    def credential(self, issuer: str, key: ECKey) -> str:
        """The issuer's status list as a signed JWT credential, signed anew after a change."""
        if issuer not in self._signed:
            self._signed[issuer] = self._sign(issuer, key)
        return self._signed[issuer]

    def _sign(self, issuer: str, key: ECKey) -> str:
        url = list_url(self._public_url, issuer)
        subject = {
            "id": url,  # the list's own URL: the Nuts node refuses any other (the W3C example adds #list)
            "type": "StatusList2021",
            "statusPurpose": "revocation",
            "encodedList": encode(self._revoked(issuer)),
        }
        now = int(time.time())
        claims = {
            "iss": issuer,
            "sub": subject["id"],
            "jti": url,
            "nbf": now,
            "vc": {
                "@context": [*vc.VC_CONTEXT, STATUS_CONTEXT],
                "type": ["VerifiableCredential", "StatusList2021Credential"],
                "credentialSubject": subject,
            },
        }
        return vc.sign(claims, issuer, key)

    def _revoked(self, issuer: str) -> list[int]:
        return (self._store.get(REVOKED, issuer) or {"indices": []})["indices"]


class StatusListReader:
    """The verifier's side: fetch an issuer's status list, check it is the issuer's, and keep
    it as long as the issuer's Cache-Control max-age allows (by default not at all)."""

    def __init__(self, client: httpx.AsyncClient, resolver: Resolver):
        self._client = client
        self._resolver = resolver
        self._cache: dict[str, tuple[float, str, str]] = {}  # url -> (fresh until, issuer, encoded list)

    async def encoded_list(self, url: str, issuer: str) -> str:
        cached = self._cache.get(url)
        if cached and cached[0] > time.monotonic() and cached[1] == issuer:
            return cached[2]
        try:
            response = await self._client.get(url)
        except httpx.HTTPError as exc:
            raise vc.CredentialError(f"the status list {url} is unreachable: {exc.__class__.__name__}") from None
        if response.status_code != 200:
            raise vc.CredentialError(f"the status list {url} answered {response.status_code}")
        status_list = vc.Jwt.read(response.text.strip().strip('"'))
        if status_list.claims.get("iss") != issuer or status_list.signer_did != issuer:
            raise vc.CredentialError("the status list is not signed by the credential's issuer")
        await verify_signature(status_list, self._resolver)
        view = vc.credential_view(status_list)
        subject = view["credentialSubject"]
        if "StatusList2021Credential" not in vc.types_of(view) or subject.get("id") != url:
            raise vc.CredentialError(f"{url} is not a StatusList2021Credential for that URL")
        if subject.get("statusPurpose") != "revocation":
            raise vc.CredentialError(f"the status list at {url} is not a revocation list")
        encoded = str(subject.get("encodedList", ""))
        max_age = _max_age(response.headers.get("cache-control", ""))
        if max_age > 0:
            self._cache[url] = (time.monotonic() + max_age, issuer, encoded)
        return encoded


def _max_age(cache_control: str) -> int:
    for directive in cache_control.split(","):
        name, _, value = directive.strip().partition("=")
        if name.lower() == "max-age" and value.isdigit():
            return int(value)
    return 0


@lru_cache(maxsize=16)
def _decoded(encoded: str) -> bytes:
    """A list is checked for many credentials between changes: unpack it once."""
    try:
        return gzip.decompress(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (ValueError, OSError, EOFError) as exc:
        raise vc.CredentialError(f"the status list cannot be decoded: {exc.__class__.__name__}") from None


def encode(indices: list[int]) -> str:
    """GZIP-compressed bitstring, base64url without padding; index 0 is the first byte's
    most significant bit."""
    bits = bytearray(LIST_BITS // 8)
    for index in indices:
        bits[index // 8] |= 0x80 >> (index % 8)
    return base64.urlsafe_b64encode(gzip.compress(bytes(bits), mtime=0)).rstrip(b"=").decode()


def is_set(encoded: str, index: int) -> bool:
    bits = _decoded(encoded)
    if not 0 <= index < len(bits) * 8:
        raise vc.CredentialError(f"status list index {index} is outside the list")
    return bool(bits[index // 8] & (0x80 >> (index % 8)))
