"""Fresh revocation with conditional fetches, on the reference network (where issuers answer
`Cache-Control: no-cache`, the default): the issuer's status list carries a strong ETag and
answers a matching If-None-Match with 304; the hospital's trust node, verifying at its token
endpoint and verifier API, revalidates the authority's list for every verification, so that
a revocation counts from the very next one, also for verifications running side by side."""

from __future__ import annotations

import json
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from protocols import vcjwt as vc
from protocols.keys import derive_key
from protocols.pex import submission_for
from tests.integration.conftest import Net

pytestmark = pytest.mark.integration

SCOPE = "bgz"
SIDE_BY_SIDE = 12


def issue_revocable(net: Net) -> tuple[str, str]:
    """A fresh revocable organisation credential of the authority for the GP: (id, JWT)."""
    response = net.client.post(
        f"{net.internal('authority-trust')}/internal/vcr/v2/issuer/vc",
        json={
            "type": "NutsOrganizationCredential",
            "issuer": net.context["network"]["credential_issuer"],
            "credentialSubject": {
                "id": net.org("gp")["did"],
                "organization": {"name": "Huisartsenpraktijk Het Plein", "ura": "90000003", "city": "Amersfoort"},
            },
            "format": "jwt_vc",
            "withStatusList2021Revocation": True,
        },
    )
    assert response.status_code == 200, response.text
    token = response.json()
    return vc.Jwt.read(token).claims["jti"], token


def revoke(net: Net, credential_id: str) -> None:
    response = net.client.delete(
        f"{net.internal('authority-trust')}/internal/vcr/v2/issuer/vc/{quote(credential_id, safe='')}"
    )
    assert response.status_code == 204, response.text


def status_list_url(net: Net) -> str:
    return f"{net.url('authority-trust')}/statuslist/{quote(net.context['network']['credential_issuer'], safe='')}/1"


def token_form(net: Net, credential: str) -> dict[str, str]:
    """A fresh presentation of `credential` by the GP (its own nonce), as a token request."""
    server = net.org("hospital")["authorization_server"]
    definition = net.client.get(f"{server}/presentation_definition", params={"scope": SCOPE}).json()
    now = int(time.time())
    gp = net.org("gp")["did"]
    assertion = vc.sign_presentation(
        gp,
        derive_key(net.seed, "gp-trust", "gp"),
        [credential],
        audience=server,
        nonce=secrets.token_urlsafe(16),
        nbf=now,
        exp=now + 5,
    )
    submission = submission_for(definition, [(definition["input_descriptors"][0]["id"], 0)])
    return {
        "grant_type": "vp_token-bearer",
        "assertion": assertion,
        "presentation_submission": json.dumps(submission),
        "scope": SCOPE,
    }


def ask_token(net: Net, credential: str, client: httpx.Client | None = None) -> httpx.Response:
    server = net.org("hospital")["authorization_server"]
    return (client or net.client).post(f"{server}/token", data=token_form(net, credential))


def side_by_side(net: Net, credential: str) -> list[httpx.Response]:
    """SIDE_BY_SIDE token requests at once, each on its own connection."""

    def one(_: int) -> httpx.Response:
        with net.running.client() as client:
            return ask_token(net, credential, client)

    with ThreadPoolExecutor(SIDE_BY_SIDE) as pool:
        return list(pool.map(one, range(SIDE_BY_SIDE)))


def verify(net: Net, credential: str) -> dict[str, Any]:
    response = net.client.post(
        f"{net.internal('hospital-trust')}/internal/vcr/v2/verifier/vc", json={"verifiableCredential": credential}
    )
    assert response.status_code == 200, response.text
    return response.json()


def assert_refused_as_revoked(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert "revoked" in response.json()["error_description"], response.text


def test_the_status_list_has_a_strong_etag_and_answers_304_when_unchanged(net: Net) -> None:
    url = status_list_url(net)
    first = net.client.get(url)
    assert first.status_code == 200, first.text
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"'), etag  # strong: no W/
    assert first.headers["cache-control"] == "no-cache"  # revalidate before every use
    again = net.client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag and again.headers["cache-control"] == "no-cache"
    assert net.client.get(url, headers={"If-None-Match": f'W/{etag}, "other"'}).status_code == 304


def test_an_other_etag_gets_the_list_in_full(net: Net) -> None:
    answer = net.client.get(status_list_url(net), headers={"If-None-Match": '"not-the-current-list"'})
    assert answer.status_code == 200 and "StatusList2021Credential" in json.dumps(
        vc.credential_view(vc.Jwt.read(answer.json()))
    )


def test_a_revocation_counts_at_the_very_next_token_request(net: Net) -> None:
    credential_id, credential = issue_revocable(net)
    before = side_by_side(net, credential)
    assert [r.status_code for r in before] == [200] * SIDE_BY_SIDE, [r.text for r in before if r.status_code != 200]
    assert ask_token(net, credential).status_code == 200
    revoke(net, credential_id)
    assert_refused_as_revoked(ask_token(net, credential))  # the very next verification
    for response in side_by_side(net, credential):
        assert_refused_as_revoked(response)


def test_the_list_is_revalidated_by_304_and_a_changed_list_is_fetched_again(net: Net) -> None:
    """The issuer answers the verifier's kind of request (If-None-Match with the tag held) 304
    while nothing changed, and the verifier still sees a revocation at once: after it the tag
    asked about is no longer current, and the list comes in full with a new tag."""
    credential_id, credential = issue_revocable(net)
    assert verify(net, credential)["validity"] is True  # the verifier holds the list, with its tag
    url = status_list_url(net)
    held = net.client.get(url).headers["etag"]
    assert net.client.get(url, headers={"If-None-Match": held}).status_code == 304
    assert verify(net, credential)["validity"] is True  # revalidated: unchanged
    revoke(net, credential_id)
    changed = net.client.get(url, headers={"If-None-Match": held})
    assert changed.status_code == 200 and changed.headers["etag"] != held
    refused = verify(net, credential)
    assert refused["validity"] is False and "revoked" in refused["message"], refused
    assert net.client.get(url, headers={"If-None-Match": changed.headers["etag"]}).status_code == 304
