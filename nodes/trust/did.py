"""did:web identifiers, DID documents and their resolution.

A subject's DID is `did:web:<host>%3A<port>:iam:<id>` and its document is served at
`https://<host>:<port>/iam/<id>/did.json`, the paths the Nuts node v6 uses."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from protocols.didweb import document_url, key_id

DID_CONTEXT = ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/suites/jws-2020/v1"]
CACHE_SECONDS = 60.0


def path_id_for(seed: str, node: str, subject: str) -> str:
    """The id in the DID's path: stable for one seed, node and subject."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"testbed:{seed}:{node}:{subject}"))


def build_document(
    did: str,
    jwk: dict[str, str] | None,
    services: list[dict[str, Any]],
    *,
    extra_keys: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The subject's document: its signing key `<did>#0` (none once deactivated), keys added
    later (`extra_keys`: {id, usage: assertion|encryption, jwk}) and its services."""
    keys = [] if jwk is None else [{"id": key_id(did), "usage": "assertion", "jwk": jwk}, *(extra_keys or [])]
    signing = [k["id"] for k in keys if k["usage"] == "assertion"]
    document: dict[str, Any] = {
        "@context": DID_CONTEXT,
        "id": did,
        "verificationMethod": [
            {"id": k["id"], "type": "JsonWebKey2020", "controller": did, "publicKeyJwk": k["jwk"]} for k in keys
        ],
        "assertionMethod": signing,
        "authentication": signing,
        "capabilityInvocation": signing,
        "service": services,
    }
    agreement = [k["id"] for k in keys if k["usage"] == "encryption"]
    if agreement:
        document["keyAgreement"] = agreement
    return document


def verification_key(document: dict[str, Any], kid: str) -> dict[str, Any]:
    """The public JWK of `kid`, which must be an assertion method of the document."""
    if kid not in document.get("assertionMethod", []):
        raise LookupError(f"{kid} is not an assertion method of {document.get('id')}")
    for method in document.get("verificationMethod", []):
        jwk = method.get("publicKeyJwk")
        if method.get("id") == kid and isinstance(jwk, dict):
            return jwk
    raise LookupError(f"{document.get('id')} has no verification method {kid}")


class Resolver:
    """Resolves DIDs over HTTPS (trusting the network CA), with a short cache."""

    def __init__(self, client: httpx.AsyncClient, local: Callable[[str], dict[str, Any] | None]):
        self._client = client
        self._local = local  # this node's own subjects' documents
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}

    async def resolve(self, did: str) -> dict[str, Any]:
        # The cache first: it only ever holds other nodes' DIDs (this node's own are answered
        # from its storage below and never fetched), and a verification resolves two of them.
        cached = self._cache.get(did)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        own = self._local(did)
        if own is not None:
            return own
        try:
            url = document_url(did)
        except ValueError as exc:
            raise LookupError(f"cannot resolve {did}: {exc}") from None
        try:
            response = await self._client.get(url)
        except httpx.HTTPError as exc:
            raise LookupError(f"cannot resolve {did}: {url} unreachable ({exc.__class__.__name__})") from None
        if response.status_code != 200:
            raise LookupError(f"cannot resolve {did}: {url} answered {response.status_code}")
        try:
            document = response.json()
        except ValueError:
            raise LookupError(f"cannot resolve {did}: {url} did not answer JSON") from None
        if not isinstance(document, dict):
            raise LookupError(f"cannot resolve {did}: the document at {url} is not a JSON object")
        if document.get("id") != did:
            raise LookupError(f"cannot resolve {did}: the document at {url} is for {document.get('id')}")
        self._cache[did] = (time.monotonic() + CACHE_SECONDS, document)
        return document
