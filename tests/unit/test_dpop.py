import json

import pytest
from joserfc import jws

from nodes.trust import dpop
from nodes.trust.replay import OneUseMemory
from protocols.keys import derive_key, public_jwk

KEY = derive_key("seed", "node", "holder")
OTHER = derive_key("seed", "node", "someone-else")
URL = "https://127.0.10.3:8443/fhir/Patient/1"


def proof(**claims_override):
    claims = json.loads(jws.extract_compact(dpop.make_proof(KEY, "GET", URL, access_token="tok").encode()).payload)
    claims.update(claims_override)
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": public_jwk(KEY)}
    return jws.serialize_compact(header, json.dumps(claims), KEY)


def test_a_proof_holds_once_for_its_request_token_and_key():
    seen = OneUseMemory()
    made = dpop.make_proof(KEY, "get", URL + "?x=1", access_token="tok")  # query and case do not matter
    verified = dpop.verify_proof(made, "GET", URL, seen=seen, access_token="tok", thumbprint=KEY.thumbprint())
    assert verified.thumbprint == KEY.thumbprint()
    with pytest.raises(dpop.DpopError, match="jti already used"):
        dpop.verify_proof(made, "GET", URL, seen=seen, access_token="tok")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        # Each reason starts with the words the Nuts node uses for it, so one check fits both.
        ({"method": "POST"}, "^method mismatch: .* is for method 'GET'"),
        ({"url": URL + "/other"}, "^url mismatch: .* is for 'https"),
        ({"access_token": "another"}, "^ath mismatch: .*ath does not match"),
        ({"thumbprint": OTHER.thumbprint()}, "^jkt mismatch: .*another key"),
    ],
)
def test_a_proof_for_something_else_is_refused(kwargs, message):
    arguments = {"method": "GET", "url": URL, "access_token": "tok", **kwargs}
    with pytest.raises(dpop.DpopError, match=message):
        dpop.verify_proof(dpop.make_proof(KEY, "GET", URL, access_token="tok"), seen=OneUseMemory(), **arguments)


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (lambda: proof(iat=1), "iat"),
        (lambda: proof(jti=""), "jti is missing"),
        (lambda: proof(jti="x" * 300), "longer than 256"),
        (lambda: jws.serialize_compact({"typ": "JWT", "alg": "ES256", "jwk": public_jwk(KEY)}, "{}", KEY), "typ"),
        (
            lambda: jws.serialize_compact(
                {"typ": "dpop+jwt", "alg": "ES256", "jwk": KEY.as_dict(private=True)}, "{}", KEY
            ),
            "public key",
        ),
        (
            lambda: jws.serialize_compact({"typ": "dpop+jwt", "alg": "ES256", "jwk": public_jwk(OTHER)}, "{}", KEY),
            "signature",
        ),
        (lambda: "not-a-proof", "not a readable JWT"),
    ],
)
def test_malformed_proofs_are_refused(token, message):
    with pytest.raises(dpop.DpopError, match=message):
        dpop.verify_proof(token(), "GET", URL, seen=OneUseMemory(), access_token="tok")


def test_a_refused_proof_does_not_use_up_its_jti():
    seen = OneUseMemory()
    made = dpop.make_proof(KEY, "GET", URL, access_token="tok")
    with pytest.raises(dpop.DpopError):
        dpop.verify_proof(made, "POST", URL, seen=seen, access_token="tok")
    dpop.verify_proof(made, "GET", URL, seen=seen, access_token="tok")


def test_target_uri_normalisation():
    assert dpop.target_uri("HTTPS://Station.Example:443/fhir?x=1#f") == "https://station.example/fhir"
    assert dpop.target_uri("https://127.0.10.3:8443/fhir/") == "https://127.0.10.3:8443/fhir/"
    proof_ = dpop.make_proof(KEY, "GET", "https://STATION.example:443/a", access_token="tok")
    dpop.verify_proof(proof_, "GET", "https://station.example/a", seen=OneUseMemory(), access_token="tok")
