"""What a verifier does when an issuer's status list cannot be had: it fails closed. A list
never fetched, and a copy past the freshness the issuer allowed, are both refused while the
issuer is away (unreachable, or answering an error), with an error naming the list; a copy the
issuer allowed to be reused (max-age) still serves meanwhile; nothing of the failure is kept, so
the credential is accepted as soon as the issuer answers again. The issuer is the trust node's
own StatusLists behind httpx.MockTransport (tests/unit/test_statuslist_revalidation.py), with a
switch that takes it away."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from nodes.trust.did import Resolver, build_document
from nodes.trust.statuslist import StatusListReader, StatusListUnavailable
from protocols import vcjwt as vc
from protocols.keys import public_jwk
from tests.unit.test_statuslist_revalidation import ISSUER, ISSUER_KEY, URL, Issuer


class Flaky:
    """The issuer's endpoint, which can be taken away: `down` makes every request fail to
    connect, `status` answers that status instead of the list."""

    def __init__(self, tmp_path: Path, *, cache_control: str = "no-cache"):
        self.issuer = Issuer(tmp_path, cache_control=cache_control)
        self.down = False
        self.status: int | None = None
        self.asked = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.asked += 1
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if self.status is not None:
            return httpx.Response(self.status)
        return await self.issuer(request)


def reader_for(endpoint: Flaky, *, fail_open: bool = False) -> StatusListReader:
    transport = httpx.MockTransport(endpoint)
    document = build_document(ISSUER, public_jwk(ISSUER_KEY), [])
    # The issuer's DID document is at hand (as a verifier that resolved it a moment ago has it):
    # only the status list is away.
    resolver = Resolver(httpx.AsyncClient(transport=transport), lambda did: document if did == ISSUER else None)
    return StatusListReader(transport, resolver, fail_open=fail_open)


def test_a_list_never_fetched_that_cannot_be_fetched_refuses_the_credential_naming_the_list(tmp_path):
    endpoint = Flaky(tmp_path)
    index = endpoint.issuer.issue()
    endpoint.down = True
    with pytest.raises(StatusListUnavailable) as refused:
        asyncio.run(reader_for(endpoint).is_revoked(URL, ISSUER, index))
    assert refused.value.url == URL
    message = str(refused.value)
    assert URL in message and "could not be fetched (unreachable: ConnectError)" in message
    assert "so it is refused" in message and "copy" not in message  # no copy was held
    assert isinstance(refused.value, vc.CredentialError)  # what the token endpoint and verifier API refuse on


@pytest.mark.parametrize("status", [404, 500, 503])
def test_an_issuer_answering_an_error_is_as_good_as_unreachable(tmp_path, status):
    endpoint = Flaky(tmp_path)
    index = endpoint.issuer.issue()
    endpoint.status = status
    with pytest.raises(StatusListUnavailable, match=f"could not be fetched \\(answered {status}\\)"):
        asyncio.run(reader_for(endpoint).is_revoked(URL, ISSUER, index))


def test_a_copy_that_cannot_be_revalidated_is_not_taken_as_current(tmp_path):
    endpoint = Flaky(tmp_path)  # no-cache: every use revalidates
    index = endpoint.issuer.issue()

    async def run() -> str:
        reader = reader_for(endpoint)
        assert not await reader.is_revoked(URL, ISSUER, index)  # fetched and held
        endpoint.down = True
        with pytest.raises(StatusListUnavailable) as refused:
            await reader.is_revoked(URL, ISSUER, index)
        return str(refused.value)

    message = asyncio.run(run())
    assert "s ago is not taken as current" in message


def test_a_copy_past_its_max_age_is_refused_too_but_within_it_serves_while_the_issuer_is_away(tmp_path):
    endpoint = Flaky(tmp_path, cache_control="max-age=60")
    index = endpoint.issuer.issue()

    async def run() -> None:
        reader = reader_for(endpoint)
        assert not await reader.is_revoked(URL, ISSUER, index)
        endpoint.down = True
        assert not await reader.is_revoked(URL, ISSUER, index)  # the issuer allowed 60 s: not asked
        reader._held[URL] = replace(reader._held[URL], fresh_until=0.0)  # as 60 s later
        with pytest.raises(StatusListUnavailable):
            await reader.is_revoked(URL, ISSUER, index)

    asyncio.run(run())
    assert endpoint.asked == 2  # the fetch, and the revalidation once the copy was stale


def test_no_failure_is_remembered_so_the_credential_counts_again_once_the_issuer_is_back(tmp_path):
    endpoint = Flaky(tmp_path)
    index = endpoint.issuer.issue()

    async def run() -> None:
        reader = reader_for(endpoint)
        endpoint.down = True
        for _ in range(2):
            with pytest.raises(StatusListUnavailable):
                await reader.is_revoked(URL, ISSUER, index)
        endpoint.down = False
        assert not await reader.is_revoked(URL, ISSUER, index)
        endpoint.issuer.lists.revoke(ISSUER, index)
        assert await reader.is_revoked(URL, ISSUER, index)  # and a revocation meanwhile counts at once

    asyncio.run(run())
    assert endpoint.asked == 4  # every verification asked: the failures were not kept


def test_verifications_sharing_a_failed_revalidation_are_all_refused(tmp_path):
    endpoint = Flaky(tmp_path)
    index = endpoint.issuer.issue()
    endpoint.down = True

    async def run() -> list[BaseException | bool]:
        reader = reader_for(endpoint)
        return await asyncio.gather(*(reader.is_revoked(URL, ISSUER, index) for _ in range(5)), return_exceptions=True)

    outcomes = asyncio.run(run())
    assert all(isinstance(o, StatusListUnavailable) for o in outcomes), outcomes


def test_the_fail_open_defect_takes_an_unreachable_list_as_revoking_nothing(tmp_path):
    """The self-test's variant (status-list-unreachable-taken-as-unrevoked): the mistake the
    trust profile's status-list-outage scenario must catch, here even for a revoked credential."""
    endpoint = Flaky(tmp_path)
    index = endpoint.issuer.issue()
    endpoint.issuer.lists.revoke(ISSUER, index)

    async def run() -> tuple[bool, bool]:
        reader = reader_for(endpoint, fail_open=True)
        reachable = await reader.is_revoked(URL, ISSUER, index)
        endpoint.down = True
        return reachable, await reader.is_revoked(URL, ISSUER, index)

    assert asyncio.run(run()) == (True, False)
