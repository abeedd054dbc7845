"""Looking up what the node holds (Nuts VCR v2): one credential by id, the credentials an
issuer issued here, a wallet's contents, removal from a wallet, and the issuers trusted and
not trusted for a credential type."""

from __future__ import annotations

from typing import Any

from nodes.common.http import HttpError
from nodes.trust.node import ISSUED, TRUST, WALLET, TrustNode
from protocols import vcjwt as vc


def _view(token: str) -> dict[str, Any]:
    return vc.credential_view(vc.Jwt.read(token))


def resolve(node: TrustNode, credential_id: str) -> str:
    """A credential this node issued or holds, whatever its revocation or trust state."""
    issued = node.store.get(ISSUED, credential_id)
    if issued is not None:
        return str(issued["jwt"])
    for entry in node.store.iterate(WALLET):
        if _view(entry["jwt"])["id"] == credential_id:
            return str(entry["jwt"])
    raise HttpError(404, "Not Found", f"no credential {credential_id} on this node")


def issued(node: TrustNode, *, credential_type: str, issuer: str, subject: str | None) -> list[str]:
    """Credentials issued here by `issuer` of `credential_type` (about `subject`, if given)."""
    found = []
    for entry in node.store.iterate(ISSUED):
        view = _view(entry["jwt"])
        about = view["credentialSubject"].get("id")
        if view["issuer"] == issuer and credential_type in view["type"] and subject in (None, about):
            found.append(str(entry["jwt"]))
    return found


def wallet_search(node: TrustNode, subject: str) -> list[str]:
    """Everything in the wallet, expired and revoked credentials too."""
    return node.wallet(subject)


def remove_from_wallet(node: TrustNode, subject: str, credential_id: str) -> None:
    node.subject(subject)
    if not node.store.delete(WALLET, f"{subject}|{credential_id}"):
        raise HttpError(404, "Not Found", f"the wallet of {subject!r} holds no credential {credential_id}")


def trusted_issuers(node: TrustNode, credential_type: str) -> list[str]:
    return sorted(e["issuer"] for e in node.store.iterate(TRUST) if e["credentialType"] == credential_type)


def untrusted_issuers(node: TrustNode, credential_type: str) -> list[str]:
    """Issuers of credentials of that type this node has seen (issued here or held in a
    wallet) that it does not trust for it."""
    seen = {entry["jwt"] for entry in node.store.iterate(ISSUED)} | {e["jwt"] for e in node.store.iterate(WALLET)}
    issuers = {view["issuer"] for view in map(_view, seen) if credential_type in view["type"]}
    return sorted(issuer for issuer in issuers if not node.is_trusted(credential_type, issuer))
