import asyncio
import json
import time

import pytest
from jwcrypto import jwk as jc_jwk
from jwcrypto import jws as jc_jws

from nodes.trust.credentials import verify_signature
from nodes.trust.did import build_document, path_id_for
from nodes.trust.policy import organisation_definition
from nodes.trust.presentation import SubmissionError, check_submission, select
from protocols import vcjwt as vc
from protocols.didweb import did_for, document_url
from protocols.keys import derive_key, public_jwk
from protocols.pex import submission_for

ISSUER = did_for("https://127.0.10.1:8443", path_id_for("seed", "authority-trust", "authority"))
HOLDER = did_for("https://127.0.10.4:8443", path_id_for("seed", "gp-trust", "gp"))
ISSUER_KEY = derive_key("seed", "authority-trust", "authority")
ORG = {"id": HOLDER, "organization": {"name": "GP", "city": "Amersfoort", "ura": "90000003"}}


class FakeResolver:
    """Resolves the one issuer DID to its document, as a trust node would over HTTPS."""

    def __init__(self, documents):
        self.documents = documents

    async def resolve(self, did):
        if did not in self.documents:
            raise LookupError(f"cannot resolve {did}")
        return self.documents[did]


def issued(expires_at=None):
    return vc.issue_credential(ISSUER, ISSUER_KEY, ["NutsOrganizationCredential"], subject=ORG, expires_at=expires_at)[
        1
    ]


def test_did_web_encodes_port_and_maps_to_document_url():
    assert ISSUER.startswith("did:web:127.0.10.1%3A8443:iam:")
    assert document_url(ISSUER) == f"https://127.0.10.1:8443/iam/{ISSUER.rsplit(':', 1)[1]}/did.json"
    assert document_url("did:web:example.com") == "https://example.com/.well-known/did.json"
    with pytest.raises(ValueError):
        document_url("did:key:abc")


def test_keys_are_deterministic_per_seed_node_and_subject():
    assert public_jwk(derive_key("seed", "n", "s")) == public_jwk(derive_key("seed", "n", "s"))
    assert public_jwk(derive_key("seed", "n", "s")) != public_jwk(derive_key("seed", "n", "t"))
    assert "d" not in public_jwk(derive_key("seed", "n", "s"))  # never the private part


def test_issued_credential_verifies_with_an_independent_library():
    token = issued()
    key = jc_jwk.JWK(**public_jwk(ISSUER_KEY))
    signed = jc_jws.JWS()
    signed.deserialize(token)
    signed.verify(key)  # raises if the signature does not hold
    claims = json.loads(signed.payload)
    assert claims["iss"] == ISSUER and claims["sub"] == HOLDER
    assert claims["vc"]["type"] == ["VerifiableCredential", "NutsOrganizationCredential"]


def test_signature_verification_through_the_resolved_document():
    document = build_document(ISSUER, public_jwk(ISSUER_KEY), [])
    resolver = FakeResolver({ISSUER: document})
    asyncio.run(verify_signature(vc.Jwt.read(issued()), resolver))
    other_key = derive_key("seed", "elsewhere", "x")
    forged = vc.issue_credential(ISSUER, other_key, ["NutsOrganizationCredential"], subject=ORG, expires_at=None)[1]
    with pytest.raises(vc.CredentialError, match="does not verify"):
        asyncio.run(verify_signature(vc.Jwt.read(forged), resolver))
    with pytest.raises(vc.CredentialError, match="cannot resolve"):
        asyncio.run(verify_signature(vc.Jwt.read(issued()), FakeResolver({})))


def test_validity_period():
    now = time.time()
    vc.check_validity_period(vc.Jwt.read(issued(int(now) + 60)), now, "credential")
    with pytest.raises(vc.CredentialError, match="has expired"):
        vc.check_validity_period(vc.Jwt.read(issued(int(now) - 60)), now, "credential")


@pytest.mark.parametrize("token", ["", "a.b", "not.a.jwt", 42])
def test_unreadable_jwts_are_refused(token):
    with pytest.raises(vc.CredentialError):
        vc.Jwt.read(token)


def test_presentation_definition_matching_and_claims():
    definition = organisation_definition("bgz")
    view = vc.credential_view(vc.Jwt.read(issued()))
    other = {**view, "type": ["VerifiableCredential", "SomethingElse"]}
    assert select(definition, [other]) is None
    chosen = select(definition, [other, view])
    assert chosen == [("organization_credential", 1)]
    submission = submission_for(definition, [("organization_credential", 0)])
    claims = check_submission(definition, submission, {"verifiableCredential": [view]})
    assert claims == {"organization_name": "GP", "organization_ura": "90000003", "organization_city": "Amersfoort"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: {**s, "definition_id": "other"}, "answers definition 'other'"),
        (lambda s: {**s, "descriptor_map": []}, "is not in the submission"),
        (
            lambda s: {**s, "descriptor_map": [{**s["descriptor_map"][0], "path": "$.verifiableCredential[5]"}]},
            "no item",
        ),
        ("not an object", "not a JSON object"),
    ],
)
def test_submissions_that_do_not_satisfy_are_refused(change, message):
    definition = organisation_definition("bgz")
    view = vc.credential_view(vc.Jwt.read(issued()))
    submission = submission_for(definition, [("organization_credential", 0)])
    broken = change(submission) if callable(change) else change
    with pytest.raises(SubmissionError, match=message):
        check_submission(definition, broken, {"verifiableCredential": [view]})


def test_ura_filter_is_enforced():
    definition = organisation_definition("bgz")
    bad = {"id": HOLDER, "organization": {"name": "GP", "ura": "12"}}
    token = vc.issue_credential(ISSUER, ISSUER_KEY, ["NutsOrganizationCredential"], subject=bad, expires_at=None)[1]
    assert select(definition, [vc.credential_view(vc.Jwt.read(token))]) is None


def test_presentations_verify_with_an_independent_library_and_tampering_is_caught():
    from testbed.scenario.templating import render

    holder_key = derive_key("seed", "gp-trust", "gp")
    token = vc.sign_presentation(
        HOLDER, holder_key, [issued()], audience="https://as.example/oauth2/x", nonce="n-1", nbf=100, exp=105
    )
    key = jc_jwk.JWK(**public_jwk(holder_key))
    signed = jc_jws.JWS()
    signed.deserialize(token)
    signed.verify(key)
    claims = json.loads(signed.payload)
    assert (claims["aud"], claims["nonce"], claims["exp"] - claims["nbf"]) == ("https://as.example/oauth2/x", "n-1", 5)
    tampered = render("{{ vp | tamper }}", {"vp": token})
    assert tampered != token and tampered.split(".")[:2] == token.split(".")[:2]
    broken = jc_jws.JWS()
    broken.deserialize(tampered)
    with pytest.raises(jc_jws.InvalidJWSSignature):
        broken.verify(key)
