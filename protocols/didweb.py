"""did:web identifiers as the network uses them (W3C did:web method; the Nuts node v6's paths):
a subject's DID is `did:web:<host>%3A<port>:iam:<id>`, its document lives at the URL the DID
encodes, and its one key is `<did>#0`."""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit


def did_for(public_url: str, path_id: str) -> str:
    netloc = urlsplit(public_url).netloc
    return f"did:web:{quote(netloc, safe='')}:iam:{path_id}"


def document_url(did: str) -> str:
    """Where a did:web document lives (W3C did:web method, "Read (Resolve)")."""
    if not did.startswith("did:web:"):
        raise ValueError(f"not a did:web DID: {did}")
    host, *path = did.removeprefix("did:web:").split(":")
    if not host or any(not part for part in path):
        raise ValueError(f"malformed did:web DID: {did}")
    base = f"https://{unquote(host)}"
    if not path:
        return f"{base}/.well-known/did.json"
    return f"{base}/{'/'.join(unquote(p) for p in path)}/did.json"


def key_id(did: str) -> str:
    return f"{did}#0"
