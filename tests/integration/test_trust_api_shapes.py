"""Every operation of the trust node's API documents (protocols/openapi/trust-*.yaml), called on
a live reference node: each request the test sends and each answer the node gives is checked
against the document, and the last test asserts that no operation was left out. When the Nuts
node's repository is mirrored here, every path and method of the documents is also looked up in
the Nuts node v6.2.10 API files."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
import yaml

from protocols.didweb import document_url
from protocols.openapi import check_request, check_response, find_operation, load_document, operations
from protocols.pex import submission_for
from tests.integration.conftest import Net

pytestmark = pytest.mark.integration

DOCUMENTS = ("trust-public", "trust-internal")
NUTS_MIRROR = Path("/work/.mirror/nuts-foundation+nuts-node/repo")
NUTS_TAG = "v6.2.10"
NUTS_FILES = (
    "docs/_static/vdr/v2.yaml",
    "docs/_static/vcr/vcr_v2.yaml",
    "docs/_static/auth/v2.yaml",
    "docs/_static/auth/iam.partial.yaml",
    "docs/_static/discovery/server.yaml",
    "docs/_static/discovery/v1.yaml",
)
AREAS = ("vdr", "vcr", "auth", "oauth", "discovery")
exercised: set[str] = set()  # "<document> <METHOD> <template>"
areas_done: set[str] = set()


def enc(value: str) -> str:
    return quote(value, safe="")


def call(net: Net, node: str, method: str, path: str, *, internal: bool = True, **kwargs: Any) -> httpx.Response:
    """Send the request, check it and the answer against the listener's document, record the
    operation; returns the answer for the test's own assertions."""
    document_name = "trust-internal" if internal else "trust-public"
    document = load_document(document_name)
    base = net.internal(node) if internal else net.url(node)
    sent_type, sent_body = _sent(kwargs)
    assert check_request(document, method=method, path=path, content_type=sent_type, body=sent_body) == []
    response = net.client.request(method, f"{base}{path}", **kwargs)
    content_type = response.headers.get("content-type")
    body = _received(response, content_type)
    mismatches = check_response(
        document, method=method, path=path, status=response.status_code, content_type=content_type, body=body
    )
    assert mismatches == [], f"{method} {path} -> {response.status_code}: {mismatches}\n{response.text[:500]}"
    template = _template(document, method, path)
    exercised.add(f"{document_name} {method.upper()} {template}")
    return response


def _sent(kwargs: dict[str, Any]) -> tuple[str | None, Any]:
    if "json" in kwargs:
        return "application/json", kwargs["json"]
    if "data" in kwargs:
        return "application/x-www-form-urlencoded", kwargs["data"]
    return None, None


def _received(response: httpx.Response, content_type: str | None) -> Any:
    if not response.content:
        return None
    return response.json() if "json" in (content_type or "") else response.text


def _template(document: dict[str, Any], method: str, path: str) -> str:
    operation = find_operation(document, method=method, path=path)
    assert operation is not None
    return operation.template


def _rfc3339(seconds_from_now: int) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds_from_now)).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- VDR v2 and the did:web documents ----------------------------------------------------------
def test_subjects_dids_services_and_keys(net: Net) -> None:
    subject = f"shapes-{uuid.uuid4().hex[:8]}"
    created = call(net, "gp-trust", "POST", "/internal/vdr/v2/subject", json={"subject": subject})
    did = created.json()["documents"][0]["id"]
    assert call(net, "gp-trust", "GET", "/internal/vdr/v2/subject").json()[subject] == [did]
    assert call(net, "gp-trust", "GET", f"/internal/vdr/v2/subject/{subject}").json() == [did]
    services = f"/internal/vdr/v2/subject/{subject}/service"
    added = call(net, "gp-trust", "POST", services, json={"type": "fhir", "serviceEndpoint": "https://x.example/fhir"})
    service_id = added.json()[0]["id"]
    assert service_id.startswith(f"{did}#")
    again = call(net, "gp-trust", "POST", services, json={"type": "fhir", "serviceEndpoint": "https://x.example/fhir"})
    assert again.json()[0]["id"] == service_id  # the same service again changes nothing
    assert len(call(net, "gp-trust", "GET", services, params={"type": "fhir"}).json()) == 1
    assert call(net, "gp-trust", "GET", services, params={"endpointType": "object"}).json() == []
    short_form = enc("#" + service_id.partition("#")[2])
    updated = call(
        net, "gp-trust", "POST", f"{services}/{short_form}", json={"type": "fhir", "serviceEndpoint": ["https://y"]}
    )
    new_id = updated.json()[0]["id"]
    assert new_id != service_id
    assert call(net, "gp-trust", "DELETE", f"{services}/{enc(service_id)}").status_code == 404  # replaced
    # The long form as the Nuts API asks for it: only `#` encoded.
    assert call(net, "gp-trust", "DELETE", f"{services}/{new_id.replace('#', '%23')}").status_code == 204
    assert call(net, "gp-trust", "DELETE", f"{services}/fhir").status_code == 404  # a bare name is no service id
    methods = call(
        net,
        "gp-trust",
        "POST",
        f"/internal/vdr/v2/subject/{subject}/verificationmethod",
        json={"assertionKey": True, "encryptionKey": True},
    ).json()
    assert [m["publicKeyJwk"]["kty"] for m in methods] == ["EC", "RSA"]
    _documents_and_resolution(net, subject, did, methods)
    areas_done.add("vdr")


def _documents_and_resolution(net: Net, subject: str, did: str, methods: list[dict[str, Any]]) -> None:
    path = urlsplit(document_url(did)).path
    document = call(net, "gp-trust", "GET", path, internal=False).json()
    assert [m["id"] for m in document["verificationMethod"]][1:] == [m["id"] for m in methods]
    assert call(net, "gp-trust", "GET", "/iam/no-such-id/did.json", internal=False).status_code == 404
    assert call(net, "gp-trust", "GET", "/.well-known/did.json", internal=False).status_code == 404
    resolved = call(net, "hospital-trust", "GET", f"/internal/vdr/v2/did/{enc(did)}").json()
    assert resolved["documentMetadata"]["deactivated"] is False
    local = call(net, "gp-trust", "GET", f"/internal/vdr/v2/did/{enc(did)}").json()["documentMetadata"]
    assert len(local["hash"]) == 64 and local["created"].endswith("Z")
    assert call(net, "gp-trust", "DELETE", f"/internal/vdr/v2/subject/{subject}").status_code == 204
    assert call(net, "gp-trust", "DELETE", f"/internal/vdr/v2/subject/{subject}").status_code == 409
    after = call(net, "gp-trust", "GET", f"/internal/vdr/v2/did/{enc(did)}").json()
    assert after["documentMetadata"]["deactivated"] is True
    assert after["document"]["verificationMethod"] == []


# --- VCR v2 ------------------------------------------------------------------------------------
def test_credentials_issue_find_verify_trust_and_wallet(net: Net) -> None:
    issuer = net.context["network"]["credential_issuer"]
    gp = net.org("gp")
    credential = call(
        net,
        "authority-trust",
        "POST",
        "/internal/vcr/v2/issuer/vc",
        json={
            "type": ["VerifiableCredential", "ShapesProbeCredential"],
            "issuer": issuer,
            "credentialSubject": {"id": gp["did"], "probe": "yes"},
            "format": "jwt_vc",
            "withStatusList2021Revocation": True,
        },
    ).json()
    credential_id = json.loads(_payload(credential))["jti"]
    assert call(net, "authority-trust", "GET", f"/internal/vcr/v2/vc/{enc(credential_id)}").json() == credential
    issued = call(
        net,
        "authority-trust",
        "GET",
        "/internal/vcr/v2/issuer/vc/search",
        params={"credentialType": "ShapesProbeCredential", "issuer": issuer},
    ).json()
    assert [r["verifiableCredential"] for r in issued["verifiableCredentials"]] == [credential]
    _trust_round(net, issuer, credential)
    _wallet_round(net, gp["subject"], credential, credential_id)
    assert call(net, "authority-trust", "DELETE", f"/internal/vcr/v2/issuer/vc/{enc(credential_id)}").status_code == 204
    status = call(net, "authority-trust", "GET", f"/statuslist/{enc(issuer)}/1", internal=False)
    assert status.headers["content-type"] == "application/json"
    assert "StatusList2021Credential" in _payload(status.json())
    assert call(net, "authority-trust", "GET", f"/statuslist/{enc(issuer)}/2", internal=False).status_code == 404
    areas_done.add("vcr")


def _payload(token: str) -> str:
    part = token.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode()


def _trust_round(net: Net, issuer: str, credential: str) -> None:
    kind = "ShapesProbeCredential"
    verify = {"verifiableCredential": credential}
    untrusted = call(net, "authority-trust", "GET", f"/internal/vcr/v2/verifier/{kind}/untrusted").json()
    assert issuer in untrusted
    refused = call(net, "hospital-trust", "POST", "/internal/vcr/v2/verifier/vc", json=verify).json()
    assert refused["validity"] is False and "trust" in refused["message"]
    pair = {"issuer": issuer, "credentialType": kind}
    assert call(net, "hospital-trust", "POST", "/internal/vcr/v2/verifier/trust", json=pair).status_code == 204
    assert call(net, "hospital-trust", "GET", f"/internal/vcr/v2/verifier/{kind}/trusted").json() == [issuer]
    assert call(net, "hospital-trust", "POST", "/internal/vcr/v2/verifier/vc", json=verify).json()["validity"] is True
    found = call(
        net,
        "authority-trust",
        "POST",
        "/internal/vcr/v2/search",
        json={"query": {"type": kind}, "searchOptions": {"allowUntrustedIssuer": True}},
    ).json()
    assert [r["verifiableCredential"] for r in found["verifiableCredentials"]] == [credential]
    assert call(net, "hospital-trust", "DELETE", "/internal/vcr/v2/verifier/trust", json=pair).status_code == 204


def _wallet_round(net: Net, subject: str, credential: str, credential_id: str) -> None:
    wallet = f"/internal/vcr/v2/holder/{subject}/vc"
    # The GP's own node must trust the issuer for the type before the wallet takes it.
    pair = {"issuer": net.context["network"]["credential_issuer"], "credentialType": "ShapesProbeCredential"}
    call(net, "gp-trust", "POST", "/internal/vcr/v2/verifier/trust", json=pair)
    assert call(net, "gp-trust", "POST", wallet, json=credential).status_code == 204
    assert credential in call(net, "gp-trust", "GET", wallet).json()
    searched = call(net, "gp-trust", "GET", f"{wallet}/search").json()["verifiableCredentials"]
    assert credential in [r["verifiableCredential"] for r in searched]
    presentation = call(
        net,
        "gp-trust",
        "POST",
        "/internal/vcr/v2/holder/vp",
        json={"verifiableCredentials": [credential], "format": "jwt_vp", "expires": _rfc3339(60)},
    ).json()
    verdict = call(
        net, "gp-trust", "POST", "/internal/vcr/v2/verifier/vp", json={"verifiablePresentation": presentation}
    ).json()
    assert verdict == {"validity": True, "credentials": [credential]}  # as presented: JWT strings
    assert call(net, "gp-trust", "DELETE", f"{wallet}/{enc(credential_id)}").status_code == 204
    assert call(net, "gp-trust", "DELETE", f"{wallet}/{enc(credential_id)}").status_code == 404
    call(net, "gp-trust", "DELETE", "/internal/vcr/v2/verifier/trust", json=pair)


# --- the authorization server (public) and auth v2 (internal) -----------------------------------
def test_token_flow_introspection_and_dpop(net: Net) -> None:
    hospital = net.org("hospital")
    subject, audience = hospital["subject"], hospital["authorization_server"]
    metadata = call(
        net, "hospital-trust", "GET", f"/.well-known/oauth-authorization-server/oauth2/{subject}", internal=False
    )
    assert metadata.json()["issuer"] == audience
    definition = call(
        net,
        "hospital-trust",
        "GET",
        f"/oauth2/{subject}/presentation_definition",
        internal=False,
        params={"scope": "bgz"},
    ).json()
    unknown = call(
        net,
        "hospital-trust",
        "GET",
        f"/oauth2/{subject}/presentation_definition",
        internal=False,
        params={"scope": "x"},
    )
    assert unknown.json()["error"] == "invalid_scope"
    form = _token_form(net, definition, audience)
    refused = call(
        net, "hospital-trust", "POST", f"/oauth2/{subject}/token", internal=False, data={**form, "scope": ""}
    )
    assert refused.headers["content-type"] == "application/json" and refused.json()["error"] == "invalid_request"
    granted = call(net, "hospital-trust", "POST", f"/oauth2/{subject}/token", internal=False, data=form).json()
    replayed = call(net, "hospital-trust", "POST", f"/oauth2/{subject}/token", internal=False, data=form).json()
    assert replayed["error"] == "invalid_request" and "rule nonce" in replayed["error_description"]
    token = granted["access_token"]
    plain = call(net, "hospital-trust", "POST", "/internal/auth/v2/accesstoken/introspect", data={"token": token})
    assert plain.json()["active"] is True and "vps" not in plain.json()
    extended = call(
        net, "hospital-trust", "POST", "/internal/auth/v2/accesstoken/introspect_extended", data={"token": token}
    ).json()
    assert extended["vps"] == [form["assertion"]]
    assert extended["presentation_definitions"]["organization"]["id"] == definition["id"]
    assert call(
        net, "hospital-trust", "POST", "/internal/auth/v2/accesstoken/introspect_extended", data={"token": "nope"}
    ).json() == {"active": False}
    _client_side_and_dpop(net, audience)
    areas_done.update({"auth", "oauth"})


def _token_form(net: Net, definition: dict[str, Any], audience: str) -> dict[str, str]:
    gp = net.org("gp")
    wallet = call(net, "gp-trust", "GET", f"/internal/vcr/v2/holder/{gp['subject']}/vc").json()
    organisation = [c for c in wallet if "NutsOrganizationCredential" in _payload(c)][:1]
    presentation = call(
        net,
        "gp-trust",
        "POST",
        "/internal/vcr/v2/holder/vp",
        json={
            "verifiableCredentials": organisation,
            "domain": audience,
            "challenge": uuid.uuid4().hex,
            "expires": _rfc3339(4),
            "format": "jwt_vp",
        },
    ).json()
    chosen = [(descriptor["id"], 0) for descriptor in definition["input_descriptors"]]
    return {
        "grant_type": "vp_token-bearer",
        "assertion": presentation,
        "presentation_submission": json.dumps(submission_for(definition, chosen)),
        "scope": "bgz",
    }


def _client_side_and_dpop(net: Net, audience: str) -> None:
    gp = net.org("gp")
    answer = call(
        net,
        "gp-trust",
        "POST",
        f"/internal/auth/v2/{gp['subject']}/request-service-access-token",
        json={"authorization_server": audience, "scope": "bgz", "token_type": "DPoP"},
        headers={"Cache-Control": "no-cache"},
    ).json()
    url = "https://hospital.example/fhir/Patient"
    proof = call(
        net,
        "gp-trust",
        "POST",
        f"/internal/auth/v2/dpop/{enc(answer['dpop_kid'])}",
        json={"htm": "GET", "htu": url, "token": answer["access_token"]},
    ).json()["dpop"]
    thumbprint = call(
        net,
        "hospital-trust",
        "POST",
        "/internal/auth/v2/accesstoken/introspect",
        data={"token": answer["access_token"]},
    ).json()["cnf"]["jkt"]
    check = {
        "dpop_proof": proof,
        "method": "GET",
        "thumbprint": thumbprint,
        "token": answer["access_token"],
        "url": url,
    }
    assert call(net, "hospital-trust", "POST", "/internal/auth/v2/dpop/validate", json=check).json() == {"valid": True}
    again = call(net, "hospital-trust", "POST", "/internal/auth/v2/dpop/validate", json=check).json()
    assert again["valid"] is False and "jti" in again["reason"]


# --- discovery (server public, client internal) --------------------------------------------------
def test_discovery_server_and_client(net: Net) -> None:
    gp = net.org("gp")
    services = call(net, "gp-trust", "GET", "/internal/discovery/v1").json()
    service = next(s for s in services if s["id"] == "testbed-care")
    activation = f"/internal/discovery/v1/testbed-care/{gp['subject']}"
    call(net, "gp-trust", "DELETE", activation)  # whatever an earlier test left; 404 when nothing was
    assert call(net, "gp-trust", "GET", activation).json() == {"activated": False, "vp": []}
    activated = call(net, "gp-trust", "POST", activation, json={"registrationParameters": {"endpoint": "https://e"}})
    assert activated.status_code == 200 and activated.content == b""
    state = call(net, "gp-trust", "GET", activation).json()
    assert state["activated"] is True and state["vp"][0].startswith("ey")
    listed = call(net, "authority-trust", "GET", "/discovery/testbed-care", internal=False, params={"timestamp": 0})
    assert state["vp"][0] in listed.json()["entries"].values()
    replay = call(net, "authority-trust", "POST", "/discovery/testbed-care", internal=False, json=state["vp"][0])
    assert replay.status_code == 400 and "already exists" in replay.json()["detail"]
    unsupported = net.client.post(
        f"{net.url('authority-trust')}/discovery/testbed-care",
        content=state["vp"][0],
        headers={"Content-Type": "application/jwt"},
    )
    assert unsupported.status_code == 415  # as the Nuts server, which binds JSON bodies only
    found = call(
        net,
        "hospital-trust",
        "GET",
        "/internal/discovery/v1/testbed-care",
        params={"credentialSubject.organization.name": "huisartsenpraktijk*"},
    ).json()
    assert found[0]["fields"]["organization_ura"] == gp["ura"]
    assert found[0]["registrationParameters"]["authServerURL"] == gp["authorization_server"]
    assert service["endpoint"].endswith("/discovery/testbed-care")
    assert call(net, "gp-trust", "DELETE", activation).status_code == 200
    reset = call(net, "authority-trust", "POST", "/internal/testbed/v1/discovery/testbed-care/reset")
    assert reset.status_code == 204
    areas_done.add("discovery")


# --- coverage, and the Nuts files themselves ------------------------------------------------------
def test_every_operation_of_both_documents_was_exercised() -> None:
    if set(AREAS) - areas_done:
        pytest.skip(f"run the whole module: {sorted(set(AREAS) - areas_done)} did not run or did not finish")
    documented = {f"{name} {op.key}" for name in DOCUMENTS for op in operations(load_document(name))}
    assert documented - exercised == set()


def _nuts_operations() -> set[str]:
    found: set[str] = set()
    for name in NUTS_FILES:
        shown = subprocess.run(
            ["git", f"--git-dir={NUTS_MIRROR}", "show", f"{NUTS_TAG}:{name}"],
            capture_output=True,
            text=True,
            check=True,
        )
        for template, item in (yaml.safe_load(shown.stdout).get("paths") or {}).items():
            found.update(
                f"{method.upper()} {template}" for method in item if method in ("get", "post", "delete", "put")
            )
    return found


def test_every_documented_operation_is_a_nuts_v6_operation() -> None:
    if not NUTS_MIRROR.is_dir():
        pytest.skip(f"the Nuts node repository is not mirrored at {NUTS_MIRROR}")
    nuts = {_normalised(key) for key in _nuts_operations()}
    ours = {
        _normalised(op.key)
        for name in DOCUMENTS
        for op in operations(load_document(name))
        if not load_document(name)["paths"][op.template].get("x-testbed-extension")
    }
    assert ours - nuts == set()


def _normalised(key: str) -> str:
    """Parameter names differ between documents ({id} or {subjectID}): compare the shape."""
    return re.sub(r"\{[^}]+\}", "{}", key)
