"""What the Nuts VDR v2 does to a subject beyond creating it: services with generated ids
(added, updated, removed by the fragment of their id), extra verification methods,
deactivation, and the metadata a resolution answers with."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from typing import Any

from joserfc.jwk import RSAKey

from nodes.common.http import HttpError
from nodes.trust.node import SUBJECTS, TrustNode
from protocols.keys import derive_key, public_jwk

# A did:web document has no creation history; the Nuts node then answers Go's zero time.
UNKNOWN_CREATION = "0001-01-01T00:00:00Z"


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _live(node: TrustNode, subject: str) -> dict[str, Any]:
    record = node.subject(subject)
    if record.get("deactivated"):
        raise HttpError(404, "Not Found", f"subject {subject!r} is deactivated")
    return record


def service_fragment(service: dict[str, Any]) -> str:
    """As the Nuts node: the id's fragment is a hash of the service's type and endpoint, so
    registering the same service twice gives the same id (and is ignored)."""
    material = json.dumps([service.get("type"), service.get("serviceEndpoint")], sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def fragment_of(service_id: str) -> str:
    """The fragment a path's service id names: `<did>#<fragment>` or `#<fragment>`; an id
    without `#` names no fragment (the Nuts node then finds nothing)."""
    return service_id.partition("#")[2]


def add_service(node: TrustNode, subject: str, request: dict[str, Any]) -> list[dict[str, Any]]:
    record = _live(node, subject)
    service = _service(record, request)
    record["services"] = [s for s in record["services"] if s["id"] != service["id"]] + [service]
    node.store.put(SUBJECTS, subject, _touched(record))
    return [service]  # one per DID document; a subject here has one (did:web)


def update_service(node: TrustNode, subject: str, service_id: str, *, request: dict[str, Any]) -> list[dict[str, Any]]:
    record = _live(node, subject)
    current = _find(record, subject, service_id)
    others = [s for s in record["services"] if s["id"] != current["id"]]
    if any(s.get("type") == request.get("type") for s in others):
        raise HttpError(409, "Conflict", f"subject {subject!r} already has a service of type {request.get('type')!r}")
    service = _service(record, request)
    record["services"] = [*others, service]
    node.store.put(SUBJECTS, subject, _touched(record))
    return [service]


def remove_service(node: TrustNode, subject: str, service_id: str) -> None:
    record = _live(node, subject)
    current = _find(record, subject, service_id)
    if node.faulty("service-not-removed"):
        return
    record["services"] = [s for s in record["services"] if s["id"] != current["id"]]
    node.store.put(SUBJECTS, subject, _touched(record))


def _service(record: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    service = {"type": request["type"], "serviceEndpoint": request["serviceEndpoint"]}
    return {"id": f"{record['did']}#{service_fragment(service)}", **service}


def _find(record: dict[str, Any], subject: str, service_id: str) -> dict[str, Any]:
    fragment = fragment_of(service_id)
    for service in record["services"]:
        if fragment and fragment_of(service["id"]) == fragment:
            return service
    raise HttpError(404, "Not Found", f"subject {subject!r} has no service {service_id!r}")


def add_verification_methods(node: TrustNode, subject: str, *, assertion: bool, encryption: bool) -> list[Any]:
    """New keys for the subject's document: an EC key for signing (assertion, authentication,
    capability invocation and delegation) and/or an RSA key for key agreement. The node keeps
    signing with its first key; these are published for parties that use them."""
    record = _live(node, subject)
    extra: list[dict[str, Any]] = record.setdefault("extra_keys", [])
    added = []
    if assertion:
        number = len(extra) + 1
        key = derive_key(node.config.seed, node.config.name, f"{subject}|key-{number}")
        added.append({"id": f"{record['did']}#{number}", "usage": "assertion", "jwk": public_jwk(key)})
    if encryption:
        number = len(extra) + len(added) + 1
        jwk = RSAKey.generate_key(2048).as_dict(private=False)
        added.append({"id": f"{record['did']}#{number}", "usage": "encryption", "jwk": jwk})
    extra.extend(added)
    node.store.put(SUBJECTS, subject, _touched(record))
    return [verification_method(record["did"], entry) for entry in added]


def verification_method(did: str, entry: dict[str, Any]) -> dict[str, Any]:
    return {"id": entry["id"], "type": "JsonWebKey2020", "controller": did, "publicKeyJwk": entry["jwk"]}


def deactivate(node: TrustNode, subject: str) -> None:
    """As the Nuts node: the documents stay resolvable, without keys and services."""
    record = node.subject(subject)
    if record.get("deactivated"):
        raise HttpError(409, "Conflict", f"subject {subject!r} is already deactivated")
    record["deactivated"] = True
    record["services"] = []
    node.store.put(SUBJECTS, subject, _touched(record))


def _touched(record: dict[str, Any]) -> dict[str, Any]:
    record["updated"] = time.time()
    return record


def metadata(record: dict[str, Any] | None, document: dict[str, Any]) -> dict[str, Any]:
    """Resolution metadata: when the document was made and changed, the SHA-256 (hex) of its
    JSON, whether it is deactivated. `txs` lists network transactions, which did:web has none of."""
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    answer: dict[str, Any] = {
        "created": _rfc3339(record["created"]) if record and "created" in record else UNKNOWN_CREATION,
        "hash": hashlib.sha256(encoded).hexdigest(),
        "deactivated": bool(record and record.get("deactivated")),
        "txs": [],
    }
    if record and "updated" in record:
        answer["updated"] = _rfc3339(record["updated"])
    return answer
