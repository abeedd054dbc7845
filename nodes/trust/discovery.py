"""Discovery service (Nuts RFC022): organisations register a presentation at a discovery
server; every node keeps a copy of the list and searches it.

Server: registrations are JWT presentations whose audience names the service, valid no longer
than the service allows, with credentials that satisfy its presentation definition. Each
accepted entry gets the next Lamport timestamp; clients ask for entries after the timestamp
they have. The server's `seed` changes when its list starts over, telling clients to copy the
whole list again. A RetractedVerifiablePresentation (claim `retract_jti`) removes a
registration. Client: activation per subject (re-registered before it expires), retraction,
and search with `*` wildcards."""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx

from nodes.common.http import HttpError, call_json
from nodes.trust.credentials import verify_signature
from nodes.trust.node import TrustNode
from nodes.trust.policy import organisation_definition
from nodes.trust.presentation import field_claims, satisfies, select
from protocols import jsonpath
from protocols import vcjwt as vc
from protocols.settings import TrustSettings

RETRACTED = "RetractedVerifiablePresentation"
# The problem title of a refused registration: the Nuts node titles a failed operation after its
# operation id, and the detail says which rule refused.
REFUSED = "RegisterPresentation failed"
log = logging.getLogger("discovery")
REGISTRATION_CREDENTIAL = "DiscoveryRegistrationCredential"
DEFAULT_SERVICE = "testbed-care"
DEFAULT_MAX_VALIDITY = 600  # seconds a registration may be valid
REFRESH_CHECK_SECONDS = 30


@dataclass(frozen=True)
class Service:
    id: str
    endpoint: str
    presentation_max_validity: int
    presentation_definition: dict[str, Any]


def services(node: TrustNode) -> dict[str, Service]:
    """The service definitions every node of the network shares; the server is the node
    the harness names as `discovery_server` (by default the credential issuer's)."""
    server = node.config.peers.get("discovery_server", node.config.public_url)
    ids = node.config.role_settings(TrustSettings).discovery_services or [DEFAULT_SERVICE]
    return {
        sid: Service(
            sid, f"{server}/discovery/{sid}", DEFAULT_MAX_VALIDITY, organisation_definition(f"discovery-{sid}")
        )
        for sid in ids
    }


def service(node: TrustNode, service_id: str) -> Service:
    known = services(node)
    if service_id not in known:
        raise HttpError(404, "Not Found", f"no discovery service {service_id!r}")
    return known[service_id]


# --- server ---------------------------------------------------------------------------------


def _server_state(node: TrustNode, service_id: str) -> dict[str, Any]:
    state = node.store.get("discovery_server", service_id)
    if state is None:
        # `log`: every accepted presentation (registrations and retractions) in timestamp order;
        # `current`: holder -> jti of the registration that counts now.
        # `seen`: jti -> exp of every presentation accepted and still acceptable (replay guard).
        state = {"seed": secrets.token_hex(8), "timestamp": 0, "log": [], "current": {}, "seen": {}}
        node.store.put("discovery_server", service_id, state)
    return state


def list_entries(node: TrustNode, service_id: str, after: int) -> dict[str, Any]:
    service(node, service_id)
    state = _server_state(node, service_id)
    log_entries = state["log"][:-1] if node.faulty("discovery-drops-newest") else state["log"]
    entries = {str(e["timestamp"]): e["vp"] for e in log_entries if e["timestamp"] > after}
    return {"seed": state["seed"], "timestamp": state["timestamp"], "entries": entries}


async def register(node: TrustNode, service_id: str, token: str) -> None:
    definition = service(node, service_id)
    try:
        presentation = vc.Jwt.read(token)
    except vc.CredentialError as exc:
        raise HttpError(400, REFUSED, f"not a presentation: {exc}") from None
    claims = presentation.claims
    audience = claims.get("aud")
    wrong_audience = service_id not in (audience if isinstance(audience, list) else [audience])
    if wrong_audience and not node.faulty("discovery-accepts-wrong-audience"):
        raise HttpError(400, REFUSED, f"aud claim: the presentation's audience must contain {service_id!r}")
    nbf, exp = claims.get("nbf"), claims.get("exp")
    if not isinstance(nbf, int | float) or not isinstance(exp, int | float) or exp <= nbf:
        raise HttpError(400, REFUSED, "the presentation needs nbf and a later exp")
    too_long = exp - nbf > definition.presentation_max_validity
    if too_long and not node.faulty("discovery-accepts-long-validity"):
        raise HttpError(
            400, REFUSED, f"the presentation is valid for too long (at most {definition.presentation_max_validity} s)"
        )
    holder = presentation.signer_did
    jti = _check_new(node, _server_state(node, service_id), claims.get("jti"))  # before the costly checks
    try:
        views = await node.verify_presentation(token, verify_credentials=False)
        if RETRACTED in vc.presentation_types(presentation):
            _retract(node, service_id, _fresh_state(node, service_id, jti), holder, token, claims, views)
            return
        verified = [
            view
            for credential in vc.presented(presentation)
            if (view := await _verified_credential(node, holder, credential)) is not None
        ]
    except vc.CredentialError as exc:
        raise HttpError(400, REFUSED, f"presentation verification failed: {exc}") from None
    if any(v["credentialSubject"].get("id") != holder for v in views):
        raise HttpError(400, REFUSED, "every credential must be about the presentation's signer")
    # Only credentials from trusted issuers can satisfy the definition.
    if select(definition.presentation_definition, verified) is None:
        raise HttpError(
            400,
            REFUSED,
            "the presentation does not fulfill the service's presentation definition "
            "with credentials of trusted issuers",
        )
    _append(node, service_id, _fresh_state(node, service_id, jti), holder, token, jti, exp)


def _check_new(node: TrustNode, state: dict[str, Any], jti: Any) -> str:
    """The presentation's jti, if the server has not accepted it before."""
    if not isinstance(jti, str) or not jti:
        raise HttpError(400, REFUSED, "the presentation needs a jti")
    if jti in state["seen"] and not node.faulty("discovery-accepts-replayed-registration"):
        # A registration is accepted once: replaying one (the list is public) could bring back
        # a retracted registration or roll a holder back to an older one.
        raise HttpError(400, REFUSED, f"presentation already exists: jti {jti} was accepted before")
    return jti


def _fresh_state(node: TrustNode, service_id: str, jti: str) -> dict[str, Any]:
    """The state as it is after verification (other registrations may have been accepted
    while this one was verified); read and then written without an await in between."""
    state = _server_state(node, service_id)
    _check_new(node, state, jti)
    return state


async def _verified_credential(node: TrustNode, holder: str, token: str) -> dict[str, Any] | None:
    """A credential from a trusted issuer, fully verified (its view); or the holder's own
    registration credential, which carries only registration parameters: it needs the
    holder's signature and is typed DiscoveryRegistrationCredential and nothing else (None)."""
    jwt = vc.Jwt.read(token)
    view = vc.credential_view(jwt)
    if vc.types_of(view) == [REGISTRATION_CREDENTIAL] and view["issuer"] == holder == jwt.signer_did:
        await verify_signature(jwt, node.resolver)
        vc.check_validity_period(jwt, time.time(), "the registration credential")
        return None
    return await node.verify_credential(token, check_trust=not node.faulty("discovery-accepts-untrusted-credentials"))


def _retract(
    node: TrustNode,
    service_id: str,
    state: dict[str, Any],
    holder: str,
    token: str,
    claims: dict[str, Any],
    views: list[Any],
) -> None:
    """RFC022 and the Nuts node name the claim `retract_jti` (the server OpenAPI file says
    `retracted_jti`): this node follows the RFC and the code."""
    if views:
        raise HttpError(400, REFUSED, "a retraction carries no credentials")
    if holder not in state["current"] or claims.get("retract_jti") != state["current"][holder]:
        raise HttpError(400, REFUSED, "retract_jti does not name the signer's current registration")
    _append(node, service_id, state, holder, token, claims["jti"], claims["exp"], retraction=True)


def _append(
    node: TrustNode,
    service_id: str,
    state: dict[str, Any],
    holder: str,
    token: str,
    jti: str,
    exp: float,
    retraction: bool = False,
) -> None:
    """Log an accepted presentation under the next Lamport timestamp. The log keeps what a
    client needs: each holder's current registration and the retractions, not registrations
    that were replaced or have expired (a client that missed those learns nothing from them)."""
    state["timestamp"] += 1
    now = time.time()
    state["seen"][jti] = exp  # kept until the presentation could no longer be accepted anyway
    state["seen"] = {j: e for j, e in state["seen"].items() if e > now}
    replaced = state["current"].pop(holder, None)
    state["log"] = [
        e for e in state["log"] if e.get("jti") != replaced and (e.get("retraction") or e.get("exp", now + 1) > now)
    ]
    state["log"].append(
        {"timestamp": state["timestamp"], "vp": token, "jti": jti, "exp": exp, "retraction": retraction}
    )
    if not retraction:
        state["current"][holder] = jti
    node.store.put("discovery_server", service_id, state)


def reset(node: TrustNode, service_id: str) -> None:
    """Start the list over under a new seed (a server that lost its data does this)."""
    service(node, service_id)
    node.store.delete("discovery_server", service_id)
    _server_state(node, service_id)


# --- client ---------------------------------------------------------------------------------


async def activate(node: TrustNode, *, service_id: str, subject: str, parameters: dict[str, Any]) -> dict[str, Any]:
    definition = service(node, service_id)
    holder = node.subject(subject)
    credentials, _ = node.credentials_for(subject, definition.presentation_definition, f"service {service_id!r}")
    key = node.signing_key(holder["did"])
    # As the Nuts node: the subject's authorization server URL is always a registration parameter.
    registered = {"authServerURL": f"{node.config.public_url}/oauth2/{subject}", **parameters}
    _, registration = vc.issue_credential(
        holder["did"], key, [REGISTRATION_CREDENTIAL], subject={**registered, "id": holder["did"]}, expires_at=None
    )
    credentials.append(registration)
    now = int(time.time())
    token = vc.sign_presentation(
        holder["did"],
        key,
        credentials,
        audience=service_id,
        nonce=None,
        nbf=now,
        exp=now + definition.presentation_max_validity,
    )
    await _post(node, definition, token)
    activation = {
        "service": service_id,
        "subject": subject,
        "parameters": parameters,
        "vp": token,
        "exp": now + definition.presentation_max_validity,
    }
    node.store.put("discovery_activations", f"{service_id}|{subject}", activation)
    return activation


async def deactivate(node: TrustNode, service_id: str, subject: str) -> str | None:
    """Stop registering the subject and retract its registration; the reason when the
    server could not be told (the registration then lapses when it expires)."""
    definition = service(node, service_id)
    activation = node.store.get("discovery_activations", f"{service_id}|{subject}")
    if activation is None:
        raise HttpError(404, "Not Found", f"{subject!r} is not registered for {service_id!r}")
    holder = node.subject(subject)
    now = int(time.time())
    retraction = vc.sign_presentation(
        holder["did"],
        node.signing_key(holder["did"]),
        [],
        audience=service_id,
        nonce=None,
        nbf=now,
        exp=now + 60,
        types=(RETRACTED,),
        extra_claims={"retract_jti": vc.Jwt.read(activation["vp"]).claims["jti"]},
    )
    node.store.delete("discovery_activations", f"{service_id}|{subject}")
    try:
        await _post(node, definition, retraction)
    except HttpError as exc:
        return exc.detail or exc.title
    return None


def activation_of(node: TrustNode, service_id: str, subject: str) -> dict[str, Any]:
    service(node, service_id)
    node.subject(subject)
    activation = node.store.get("discovery_activations", f"{service_id}|{subject}")
    if activation is None:
        return {"activated": False, "vp": []}
    return {"activated": True, "status": "active", "vp": [activation["vp"]]}


def definitions(node: TrustNode) -> list[dict[str, Any]]:
    """The service definitions this node knows, in the Nuts ServiceDefinition shape."""
    return [
        {
            "id": s.id,
            "did_methods": ["web"],
            "endpoint": s.endpoint,
            "presentation_definition": s.presentation_definition,
            "presentation_max_validity": s.presentation_max_validity,
        }
        for s in services(node).values()
    ]


def _fields(definition: dict[str, Any], views: list[dict[str, Any]]) -> dict[str, Any]:
    """Input descriptor field ids and their values in the credentials that answer them."""
    found: dict[str, Any] = {}
    for descriptor in definition.get("input_descriptors", []):
        match = next((v for v in views if satisfies(descriptor, v)), None)
        if match is not None:
            found.update(field_claims(descriptor, match))
    return found


async def refresh_due(node: TrustNode) -> None:
    """Register again what would expire within half its validity: activations last."""
    now = time.time()
    for activation in node.store.list("discovery_activations"):
        try:
            validity = service(node, activation["service"]).presentation_max_validity
            if activation["exp"] - now < validity / 2:
                await activate(
                    node,
                    service_id=activation["service"],
                    subject=activation["subject"],
                    parameters=activation["parameters"],
                )
        except HttpError as exc:  # one failing registration must not hold up the others
            log.warning("refreshing %s for %s failed: %s", activation["service"], activation["subject"], exc.detail)


async def search(node: TrustNode, service_id: str, query: dict[str, str]) -> list[dict[str, Any]]:
    definition = service(node, service_id)
    copy = await _synchronise(node, definition)
    defect = "substring" if node.faulty("discovery-search-substring") else None
    defect = "case" if node.faulty("discovery-search-case-sensitive") else defect
    results = []
    now = time.time()
    for entry in copy["entries"].values():
        presentation = vc.Jwt.read(entry["vp"])
        if presentation.claims.get("exp", 0) <= now:
            continue  # an expired registration no longer says anything
        views = [vc.credential_view(vc.Jwt.read(c)) for c in vc.presented(presentation)]
        if all(any(_matches(_lookup(v, path), pattern, defect) for v in views) for path, pattern in query.items()):
            registration = next((v for v in views if REGISTRATION_CREDENTIAL in v["type"]), None)
            parameters = {k: v for k, v in (registration or {}).get("credentialSubject", {}).items() if k != "id"}
            results.append(
                {
                    "id": presentation.claims.get("jti"),
                    "credential_subject_id": presentation.signer_did,
                    "vp": entry["vp"],
                    "registrationParameters": parameters,
                    "fields": _fields(definition.presentation_definition, views),
                }
            )
    return results


async def _synchronise(node: TrustNode, definition: Service) -> dict[str, Any]:
    """Fetch what is new since the timestamp of the local copy; copy all again when the
    server's seed is not the one the copy was made under."""
    copy = node.store.get("discovery_copies", definition.id) or {"seed": None, "timestamp": 0, "entries": {}}
    answer = await _get(node, definition, copy["timestamp"])
    if answer.get("seed") != copy["seed"]:
        copy = {"seed": answer.get("seed"), "timestamp": 0, "entries": {}}
        answer = await _get(node, definition, 0)
    new = answer.get("entries", {})
    for timestamp in sorted(new, key=int):  # in order: a later retraction undoes a registration
        presentation = vc.Jwt.read(new[timestamp])
        if RETRACTED in vc.presentation_types(presentation):
            if not node.faulty("discovery-ignores-retraction"):
                copy["entries"].pop(presentation.signer_did, None)
        else:
            copy["entries"][presentation.signer_did] = {"vp": new[timestamp]}
    copy["timestamp"] = int(answer.get("timestamp", copy["timestamp"]))
    node.store.put("discovery_copies", definition.id, copy)
    return copy


def _lookup(view: dict[str, Any], dotted: str) -> Any:
    """A search key such as `credentialSubject.organization.name`, or None where absent."""
    try:
        return jsonpath.find(view, f"$.{dotted}")
    except (jsonpath.PathNotFound, jsonpath.JsonPathError):
        return None


def _matches(value: Any, pattern: str, defect: str | None = None) -> bool:
    """Case-insensitive; a `*` at the start or end stands for any text. `defect` is a self-test
    fault: "substring" matches any part of the value without a wildcard, "case" compares case."""
    if not isinstance(value, str):
        return False
    text, pattern = (value, pattern) if defect == "case" else (value.lower(), pattern.lower())
    if defect == "substring":
        return pattern.strip("*") in text
    if pattern.startswith("*") and pattern.endswith("*") and len(pattern) > 1:
        return pattern[1:-1] in text
    if pattern.endswith("*"):
        return text.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return text.endswith(pattern[1:])
    return text == pattern


async def _get(node: TrustNode, definition: Service, after: int) -> dict[str, Any]:
    return await call_json(
        node.client, "GET", definition.endpoint, what="discovery server", params={"timestamp": after}
    )


async def _post(node: TrustNode, definition: Service, token: str) -> None:
    try:
        # The Nuts API documents the presentation as JSON: a JWT VP is a JSON string.
        response = await node.client.post(definition.endpoint, json=token)
    except httpx.HTTPError as exc:
        raise HttpError(
            502, "Bad Gateway", f"discovery server {definition.endpoint}: {exc.__class__.__name__}"
        ) from None
    if response.status_code != 201:
        raise HttpError(
            502, "Bad Gateway", f"the discovery server refused: {response.status_code} {response.text[:300]}"
        )
