"""The trust node's token endpoint (Nuts RFC021 `vp_token-bearer`), driven over HTTPS with
presentations built here: the GP's key is derived from the network seed exactly as its
trust node derives it, and its credential comes from its wallet."""

from __future__ import annotations

import copy
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import combinations
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from joserfc.jwk import ECKey
from jwcrypto import jwk, jws
from jwcrypto.common import JWException, base64url_encode

from protocols import vcjwt as credentials
from protocols.keys import derive_key, public_jwk
from protocols.pex import submission_for
from tests.integration.conftest import Net

pytestmark = pytest.mark.integration

SCOPE = "bgz"
GP_URA = "90000003"
ORGANISATION_CREDENTIAL = "NutsOrganizationCredential"
RULES = ("validity", "signer", "audience", "presentation_definition", "nonce", "verification")


# --- building presentations ---------------------------------------------------------------
@dataclass
class Presentation:
    """Everything a token request carries; tests change one part to break one rule."""

    claims: dict[str, Any]
    credentials: list[str]
    key: ECKey
    submission: dict[str, Any]
    signer_did: str
    scope: str = SCOPE

    def assertion(self) -> str:
        claims = copy.deepcopy(self.claims)
        claims["vp"]["verifiableCredential"] = list(self.credentials)
        return credentials.sign(claims, self.signer_did, self.key)

    def form(self) -> dict[str, str]:
        return {
            "grant_type": "vp_token-bearer",
            "assertion": self.assertion(),
            "presentation_submission": json.dumps(self.submission),
            "scope": self.scope,
        }


@dataclass
class Gp:
    """The GP as a client of the hospital's authorization server."""

    net: Net
    did: str
    key: ECKey
    credential: str
    definition: dict[str, Any]
    audience: str

    def presentation(self, *, nbf: int | None = None, window: int = 5, nonce: str | None = None) -> Presentation:
        """A presentation that passes every rule, valid from `nbf` (default now)."""
        nbf = int(time.time()) if nbf is None else nbf
        claims = {
            "iss": self.did,
            "sub": self.did,
            "aud": self.audience,
            "nonce": nonce or secrets.token_urlsafe(16),
            "jti": str(uuid.uuid4()),
            "nbf": nbf,
            "exp": nbf + window,
            "vp": {"@context": credentials.VC_CONTEXT, "type": ["VerifiablePresentation"]},
        }
        chosen = [(descriptor["id"], 0) for descriptor in self.definition["input_descriptors"]]
        return Presentation(claims, [self.credential], self.key, submission_for(self.definition, chosen), self.did)

    def post(self, form: dict[str, str], client: httpx.Client | None = None) -> httpx.Response:
        return (client or self.net.client).post(f"{self.audience}/token", data=form)

    def post_alone(self, form: dict[str, str]) -> httpx.Response:
        """On a connection of its own: a node that fails with a 500 may drop the connection."""
        with self.net.running.client() as client:
            return self.post(form, client)

    def present(self, presentation: Presentation) -> httpx.Response:
        return self.post(presentation.form())


@pytest.fixture(scope="session")
def gp(net: Net) -> Gp:
    audience = net.org("hospital")["authorization_server"]
    response = net.client.get(f"{audience}/presentation_definition", params={"scope": SCOPE})
    assert response.status_code == 200, response.text
    wallet = net.wallet("gp-trust", "gp")
    assert len(wallet) == 1, wallet
    return Gp(
        net=net,
        did=net.org("gp")["did"],
        key=derive_key(net.seed, "gp-trust", "gp"),
        credential=wallet[0],
        definition=response.json(),
        audience=audience,
    )


def issue(net: Net, node: str, issuer: str, subject_did: str, **extra: Any) -> str:
    """A NutsOrganizationCredential for the GP's organisation, issued on `node` by `issuer`."""
    response = net.client.post(
        f"{net.internal(node)}/internal/vcr/v2/issuer/vc",
        json={
            "type": ORGANISATION_CREDENTIAL,
            "issuer": issuer,
            "credentialSubject": {
                "id": subject_did,
                "organization": {"name": "Huisartsenpraktijk Het Plein", "ura": GP_URA, "city": "Amersfoort"},
            },
            "format": "jwt_vc",
            # A credential without an expiry must be revocable (the Nuts node's rule).
            "withStatusList2021Revocation": "expirationDate" not in extra,
            **extra,
        },
    )
    assert response.status_code == 200, response.text
    return response.json()


def assert_refused(response: httpx.Response, rule: str, *, mentions: str = "") -> None:
    """An RFC 6749 error whose description names the rule (and `mentions`)."""
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "invalid_request", body
    description = body["error_description"]
    assert f"rule {rule}" in description, description
    assert mentions in description, description


def decode_payload(token: str) -> dict[str, Any]:
    return credentials.Jwt.read(token).claims


def authority_jwk(net: Net) -> jwk.JWK:
    """The credential issuer's public key, read from its DID document as any verifier would."""
    response = net.client.get(f"{net.url('authority-trust')}{net.org('authority')['did_document_path']}")
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["id"] == net.context["network"]["credential_issuer"]
    return jwk.JWK.from_json(json.dumps(document["verificationMethod"][0]["publicKeyJwk"]))


# --- breaking one rule at a time ----------------------------------------------------------
def _break_validity(p: Presentation, gp: Gp) -> None:
    p.claims["exp"] = p.claims["nbf"] + 60


def _break_signer(p: Presentation, gp: Gp) -> None:
    p.credentials = gp.net.wallet("hospital-trust", "hospital")  # about the hospital, presented by the GP


def _break_audience(p: Presentation, gp: Gp) -> None:
    p.claims["aud"] = gp.net.org("gp")["authorization_server"]


def _break_presentation_definition(p: Presentation, gp: Gp) -> None:
    p.submission["definition_id"] = "pd_somethingelse"


def _break_nonce(p: Presentation, gp: Gp) -> None:
    del p.claims["nonce"]


def _break_verification(p: Presentation, gp: Gp) -> None:
    p.key = derive_key(gp.net.seed, "gp-trust", "not-the-gp")  # the GP's kid, another key


BREAK: dict[str, Callable[[Presentation, Gp], None]] = {
    "validity": _break_validity,
    "signer": _break_signer,
    "audience": _break_audience,
    "presentation_definition": _break_presentation_definition,
    "nonce": _break_nonce,
    "verification": _break_verification,
}
# What the error description says besides the rule, for each breaker above.
MENTIONS = {
    "validity": "valid for 60 s, too long",  # "too long", as the Nuts node says it
    "signer": "about another subject",
    "audience": "audience 'aud' must be",
    "presentation_definition": "pd_somethingelse",
    "nonce": "no nonce",
    "verification": "does not verify",
}


# --- the happy path -----------------------------------------------------------------------
def test_the_derived_key_is_the_one_in_the_gps_did_document(net: Net, gp: Gp) -> None:
    response = net.client.get(f"{net.url('gp-trust')}{net.org('gp')['did_document_path']}")
    assert response.status_code == 200
    document = response.json()
    assert document["id"] == gp.did
    assert document["verificationMethod"][0]["publicKeyJwk"] == public_jwk(gp.key)


def test_a_valid_presentation_gets_a_token_that_introspects_to_the_gp(net: Net, gp: Gp) -> None:
    response = gp.present(gp.presentation())

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    answer = response.json()
    assert answer["token_type"] == "Bearer"
    assert answer["scope"] == SCOPE
    assert answer["expires_in"] > 0
    claims = net.introspect(answer["access_token"])
    assert claims["active"] is True
    assert claims["organization_ura"] == GP_URA
    assert claims["client_id"] == gp.did
    assert claims["scope"] == SCOPE
    assert claims["iss"] == gp.audience


def test_an_unknown_token_introspects_as_inactive(net: Net) -> None:
    assert net.introspect(secrets.token_urlsafe(32)) == {"active": False}


# --- each rule on its own -----------------------------------------------------------------
@pytest.mark.parametrize("rule", RULES)
def test_a_presentation_breaking_one_rule_is_refused_for_that_rule(gp: Gp, rule: str) -> None:
    """validity: window of 60 s; signer: the hospital's credential presented by the GP; audience:
    the GP's own AS; presentation_definition: another definition id; nonce: none; verification:
    signed with another key under the GP's kid."""
    presentation = gp.presentation()
    BREAK[rule](presentation, gp)
    assert_refused(gp.present(presentation), rule, mentions=MENTIONS[rule])


def test_a_presentation_no_longer_valid_is_refused(gp: Gp) -> None:
    assert_refused(
        gp.present(gp.presentation(nbf=int(time.time()) - 60)), "validity", mentions="not valid at this time"
    )


def test_an_iss_other_than_the_signing_key_is_refused_for_the_signer(gp: Gp) -> None:
    presentation = gp.presentation()
    presentation.claims["iss"] = gp.net.org("hospital")["did"]
    assert_refused(gp.present(presentation), "signer")


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda s: s.update(definition_id="pd_eOverdracht-receiver"), id="wrong-definition-id"),
        pytest.param(lambda s: s.update(descriptor_map=[]), id="missing-descriptor"),
        pytest.param(lambda s: s["descriptor_map"][0].update(path="$.verifiableCredential[3]"), id="path-to-nothing"),
    ],
)
def test_a_submission_that_does_not_answer_the_definition_is_refused(gp: Gp, change: Callable) -> None:
    presentation = gp.presentation()
    change(presentation.submission)
    assert_refused(gp.present(presentation), "presentation_definition")


def test_a_nonce_is_accepted_once(gp: Gp) -> None:
    nonce = secrets.token_urlsafe(16)
    first = gp.present(gp.presentation(nonce=nonce))
    second = gp.present(gp.presentation(nonce=nonce))  # a new presentation, the same nonce

    assert first.status_code == 200, first.text
    assert_refused(second, "nonce", mentions="used before")


def test_a_captured_presentation_cannot_be_replayed_while_it_is_still_accepted(gp: Gp) -> None:
    presentation = gp.presentation(nbf=int(time.time()) + 4)  # accepted from now on, thanks to the clock skew
    form = presentation.form()
    first = gp.post(form)
    assert first.status_code == 200, first.text
    used = time.time()
    time.sleep(10.5)
    assert time.time() < presentation.claims["exp"] + credentials.CLOCK_SKEW_SECONDS - 1
    assert time.time() - used > 10

    assert_refused(gp.post(form), "nonce")


def test_a_credential_from_an_untrusted_issuer_is_refused(net: Net, gp: Gp) -> None:
    self_issued = issue(net, "gp-trust", issuer=gp.did, subject_did=gp.did)
    assert decode_payload(self_issued)["iss"] == gp.did
    presentation = gp.presentation()
    presentation.credentials = [self_issued]

    assert_refused(gp.present(presentation), "verification", mentions="not trusted")


def test_an_expired_credential_is_refused(net: Net, gp: Gp) -> None:
    expired = issue(
        net,
        "authority-trust",
        issuer=net.context["network"]["credential_issuer"],
        subject_did=gp.did,
        expirationDate=datetime.fromtimestamp(time.time() - 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    presentation = gp.presentation()
    presentation.credentials = [expired]

    assert_refused(gp.present(presentation), "verification", mentions="expired")


# --- rule order ---------------------------------------------------------------------------
@pytest.mark.parametrize(("first", "later"), list(combinations(RULES, 2)), ids=lambda r: r)
def test_a_presentation_breaking_two_rules_is_refused_for_the_first_in_order(gp: Gp, first: str, later: str) -> None:
    """Every pair of rules, e.g. validity-audience: a 60 s window to the wrong audience is
    refused for the window, the first rule the node checks."""
    presentation = gp.presentation()
    BREAK[first](presentation, gp)
    BREAK[later](presentation, gp)
    assert_refused(gp.present(presentation), first)


# --- the token endpoint's request checks ---------------------------------------------------
@pytest.mark.parametrize(
    ("change", "error"),
    [
        pytest.param(
            {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer"}, "unsupported_grant_type", id="grant"
        ),
        pytest.param({"scope": ""}, "invalid_request", id="no-scope"),
        pytest.param({"scope": "no-such-scope"}, "invalid_scope", id="unknown-scope"),
        pytest.param({"assertion": "not-a-jwt"}, "invalid_request", id="not-a-jwt"),
    ],
)
def test_malformed_token_requests_get_an_oauth_error(gp: Gp, change: dict[str, str], error: str) -> None:
    response = gp.post({**gp.presentation().form(), **change})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error


@pytest.mark.parametrize("descriptor_map", [None, 5])
def test_a_descriptor_map_that_is_not_a_list_is_refused(gp: Gp, descriptor_map: Any) -> None:
    presentation = gp.presentation()
    presentation.submission["descriptor_map"] = descriptor_map
    assert_refused(gp.post_alone(presentation.form()), "presentation_definition")


def self_signed(gp: Gp, did: str) -> Presentation:
    """A presentation by `did`, with a credential `did` issued to itself (signed with the GP's key)."""
    presentation = gp.presentation()
    presentation.claims.update(iss=did, sub=did)
    subject = {"id": did, "organization": {"name": "Self", "ura": GP_URA}}
    presentation.credentials = [
        credentials.issue_credential(did, gp.key, [ORGANISATION_CREDENTIAL], subject=subject, expires_at=None)[1]
    ]
    presentation.signer_did = did
    return presentation


def test_a_signer_that_is_not_a_did_web_is_refused_for_verification(gp: Gp) -> None:
    assert_refused(gp.post_alone(self_signed(gp, "did:key:z6MkNotAWebDid").form()), "verification")


def test_a_did_document_that_is_not_an_object_is_refused_for_verification(net: Net, gp: Gp) -> None:
    # A subject named "did.json" makes GET .../internal/vdr/v2/subject/did.json answer a JSON array,
    # which is where did:web:<gp-trust internal host>:internal:vdr:v2:subject resolves to.
    gp_internal = net.internal("gp-trust")
    created = net.client.post(f"{gp_internal}/internal/vdr/v2/subject", json={"subject": "did.json"})
    assert created.status_code in (200, 409), created.text
    assert isinstance(net.client.get(f"{gp_internal}/internal/vdr/v2/subject/did.json").json(), list)
    did = f"did:web:{quote(urlsplit(gp_internal).netloc, safe='')}:internal:vdr:v2:subject"

    assert_refused(gp.post_alone(self_signed(gp, did).form()), "verification")


# --- DID resolution through the internal API -----------------------------------------------
def test_the_internal_api_resolves_another_nodes_did(net: Net, gp: Gp) -> None:
    response = net.client.get(f"{net.internal('hospital-trust')}/internal/vdr/v2/did/{quote(gp.did, safe='')}")
    assert response.status_code == 200, response.text
    assert response.json()["document"]["id"] == gp.did


# --- an independent JOSE implementation agrees ----------------------------------------------
def test_the_gp_credential_verifies_with_jwcrypto(net: Net, gp: Gp) -> None:
    assert decode_payload(gp.credential)["iss"] == net.context["network"]["credential_issuer"]

    token = jws.JWS()
    token.deserialize(gp.credential)
    token.verify(authority_jwk(net), alg="ES256")  # raises when it does not verify

    claims = json.loads(token.payload)
    assert claims["sub"] == gp.did
    assert claims["vc"]["credentialSubject"]["organization"]["ura"] == GP_URA


def test_jwcrypto_rejects_the_gp_credential_with_a_changed_payload(net: Net, gp: Gp) -> None:
    header, _, signature = gp.credential.split(".")
    claims = decode_payload(gp.credential)
    claims["vc"]["credentialSubject"]["organization"]["ura"] = "90000002"
    forged_payload = base64url_encode(json.dumps(claims).encode())

    token = jws.JWS()
    token.deserialize(f"{header}.{forged_payload}.{signature}")
    with pytest.raises(JWException):
        token.verify(authority_jwk(net), alg="ES256")


# --- the client side: request-service-access-token ----------------------------------------
def test_request_service_access_token_gets_a_token_for_a_known_scope(net: Net) -> None:
    response = net.request_token(SCOPE)
    assert response.status_code == 200, response.text
    assert net.introspect(response.json()["access_token"])["organization_ura"] == GP_URA


def test_request_service_access_token_with_an_unknown_scope_is_an_error(net: Net) -> None:
    response = net.request_token("no-such-scope")
    assert response.status_code == 502 or 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "presentation definition" in response.json()["detail"]


def test_request_service_access_token_for_an_unknown_subject_is_404(net: Net) -> None:
    response = net.request_token(SCOPE, subject="no-such-subject")
    assert response.status_code == 404, response.text
    assert "no-such-subject" in response.json()["detail"]


# --- services: listed by type, removed by the id the DID document gives them ----------------
def test_a_service_is_listed_by_type_published_and_removed_by_its_document_id(net: Net) -> None:
    internal = net.internal("gp-trust")
    subject = f"services-{uuid.uuid4()}"
    created = net.client.post(f"{internal}/internal/vdr/v2/subject", json={"subject": subject})
    assert created.status_code == 200, created.text
    did = created.json()["documents"][0]["id"]
    services = f"{internal}/internal/vdr/v2/subject/{subject}/service"
    endpoint = f"{net.url('gp-station')}/fhir"
    assert net.client.post(services, json={"type": "probe", "serviceEndpoint": endpoint}).status_code == 200
    assert net.client.post(services, json={"type": "other", "serviceEndpoint": endpoint}).status_code == 200

    listed = net.client.get(services, params={"type": "probe"}).json()
    assert [s["type"] for s in listed] == ["probe"]  # the Nuts API's type filter
    assert len(net.client.get(services).json()) == 2
    resolved = net.client.get(f"{net.internal('hospital-trust')}/internal/vdr/v2/did/{quote(did, safe='')}")
    service_id = next(s["id"] for s in resolved.json()["document"]["service"] if s["type"] == "probe")

    removed = net.client.delete(f"{services}/{quote(service_id, safe='')}")
    assert removed.status_code == 204, removed.text
    assert net.client.get(services, params={"type": "probe"}).json() == []


# --- refusals carry the words a Nuts node uses for the same rule ----------------------------
def _dpop_proof(net: Net, gp: Gp, method: str = "POST", url: str | None = None) -> str:
    kid = quote(f"{gp.did}#0", safe="")
    response = net.client.post(
        f"{net.internal('gp-trust')}/internal/auth/v2/dpop/{kid}",
        json={"htm": method, "htu": url or f"{gp.audience}/token"},
    )
    assert response.status_code == 200, response.text
    return response.json()["dpop"]


def _with_proof(gp: Gp, proof: str) -> httpx.Response:
    return gp.net.client.post(f"{gp.audience}/token", data=gp.presentation().form(), headers={"DPoP": proof})


def test_a_token_endpoint_dpop_proof_is_accepted_once(net: Net, gp: Gp) -> None:
    proof = _dpop_proof(net, gp)
    first = _with_proof(gp, proof)
    assert first.status_code == 200, first.text
    assert first.json()["token_type"] == "DPoP"

    again = _with_proof(gp, proof)  # a fresh presentation, the same proof
    assert again.status_code == 400, again.text
    assert again.json()["error"] == "invalid_dpop_proof"
    assert "already used" in again.json()["error_description"]


@pytest.mark.parametrize(
    ("method", "url", "words"),
    [("GET", None, "method mismatch"), ("POST", "https://elsewhere.example/oauth2/x/token", "url mismatch")],
)
def test_a_dpop_proof_for_another_request_is_refused_at_the_token_endpoint(
    net: Net, gp: Gp, method: str, url: str | None, words: str
) -> None:
    response = _with_proof(gp, _dpop_proof(net, gp, method, url))
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_dpop_proof"
    assert response.json()["error_description"].startswith(words)


def test_a_token_of_another_node_introspects_as_inactive(net: Net) -> None:
    token = net.gp_token()
    assert net.introspect(token, node="hospital-trust")["active"] is True
    assert net.introspect(token, node="nursing-trust") == {"active": False}


def _registration(net: Net, gp: Gp, audience: str, expires_in: int) -> str:
    expires = datetime.fromtimestamp(time.time() + expires_in, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    response = net.client.post(
        f"{net.internal('gp-trust')}/internal/vcr/v2/holder/vp",
        json={"verifiableCredentials": [gp.credential], "domain": audience, "expires": expires, "format": "jwt_vp"},
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(
    ("audience", "expires_in", "words"),
    [("another-service", 60, "aud claim"), ("testbed-care", 3600, "valid for too long")],
)
def test_a_discovery_registration_is_refused_for_its_rule(
    net: Net, gp: Gp, audience: str, expires_in: int, words: str
) -> None:
    response = net.client.post(
        f"{net.url('authority-trust')}/discovery/testbed-care",
        json=_registration(net, gp, audience, expires_in),
    )
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["title"] == "RegisterPresentation failed"  # the operation, titled as the Nuts node does
    assert words in problem["detail"]


def test_a_discovery_registration_is_accepted_once(net: Net, gp: Gp) -> None:
    registration = _registration(net, gp, "testbed-care", 60)
    url = f"{net.url('authority-trust')}/discovery/testbed-care"
    assert net.client.post(url, json=registration).status_code == 201
    again = net.client.post(url, json=registration)
    assert again.status_code == 400, again.text
    assert "already exists" in again.json()["detail"]
