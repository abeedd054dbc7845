"""Conditional fetches of status lists: the issuer's ETag and 304, and the verifier that keeps
the last list per URL and revalidates it before every use, sharing a revalidation only with
verifications that began before it was sent. The issuer here is the trust node's own
StatusLists behind httpx.MockTransport, answering as its /statuslist route does."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from nodes.common.storage import DocumentStore
from nodes.trust.credentials import verify_signature
from nodes.trust.did import Resolver, build_document, path_id_for
from nodes.trust.statuslist import StatusListReader, StatusLists, entity_tag, list_url, unchanged
from protocols import vcjwt as vc
from protocols.didweb import did_for
from protocols.keys import derive_key, public_jwk

PUBLIC_URL = "https://127.0.10.1:8443"
ISSUER = did_for(PUBLIC_URL, path_id_for("seed", "authority-trust", "authority"))
OTHER = did_for(PUBLIC_URL, path_id_for("seed", "authority-trust", "other"))
ISSUER_KEY = derive_key("seed", "authority-trust", "authority")
URL = list_url(PUBLIC_URL, ISSUER)


class Issuer:
    """The issuer's status-list endpoint; `seen` records (If-None-Match sent, status answered).
    With `hold` set, each answer is decided when the request arrives and sent once it is set."""

    def __init__(self, tmp_path: Path, *, cache_control: str = "no-cache", weak: bool = False):
        self.lists = StatusLists(DocumentStore(tmp_path / "issuer.sqlite"), PUBLIC_URL)
        self.cache_control = cache_control
        self.weak = weak
        self.seen: list[tuple[str | None, int]] = []
        self.arrivals: list[float] = []  # monotonic clock
        self.hold: asyncio.Event | None = None
        self.arrived = asyncio.Event()
        self.etag_override: str | None = None

    def issue(self) -> int:
        return int(self.lists.new_entry(ISSUER)["statusListIndex"])

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.arrivals.append(time.monotonic())
        signed = self.lists.credential(ISSUER, ISSUER_KEY)
        condition = request.headers.get("if-none-match")
        etag = self.etag_override or signed.etag
        headers = {"Cache-Control": self.cache_control, "ETag": f"W/{etag}" if self.weak else etag}
        if unchanged(condition, signed.etag):
            response = httpx.Response(304, headers=headers)
        else:
            response = httpx.Response(200, json=signed.token, headers=headers)
        self.seen.append((condition, response.status_code))
        if self.hold is not None:
            self.arrived.set()
            await self.hold.wait()
        return response


def reader_for(issuer: Issuer, *, spacing: float = 0.01) -> StatusListReader:
    transport = httpx.MockTransport(issuer)
    document = build_document(ISSUER, public_jwk(ISSUER_KEY), [])
    resolver = Resolver(httpx.AsyncClient(transport=transport), lambda did: document if did == ISSUER else None)
    return StatusListReader(transport, resolver, spacing=spacing)


# --- the issuer's side ----------------------------------------------------------------------
def test_the_entity_tag_is_strong_and_changes_with_the_token():
    tag = entity_tag("a.b.c")
    assert tag.startswith('"') and tag.endswith('"') and not tag.startswith("W/")
    assert tag == entity_tag("a.b.c") and tag != entity_tag("a.b.d")


@pytest.mark.parametrize(
    ("if_none_match", "answer_304"),
    [
        (None, False),
        ("", False),
        ('"abc"', True),
        ('W/"abc"', True),  # If-None-Match compares weakly (RFC 9110, 13.1.2)
        ('"xyz", "abc"', True),
        ("*", True),
        ('"abcd"', False),
        ('"ab"', False),
        ("abc", False),  # not a quoted entity tag
    ],
)
def test_if_none_match_is_answered_304_only_for_the_current_tag(if_none_match, answer_304):
    assert unchanged(if_none_match, '"abc"') is answer_304


def test_a_revocation_gives_the_list_a_new_entity_tag(tmp_path):
    issuer = Issuer(tmp_path)
    index = issuer.issue()
    before = issuer.lists.credential(ISSUER, ISSUER_KEY)
    assert issuer.lists.credential(ISSUER, ISSUER_KEY) == before  # unchanged: not signed anew
    issuer.lists.revoke(ISSUER, index)
    after = issuer.lists.credential(ISSUER, ISSUER_KEY)
    assert after.etag != before.etag and after.token != before.token


# --- the verifier's side --------------------------------------------------------------------
def test_every_verification_revalidates_and_a_304_reuses_the_list_held(tmp_path):
    issuer = Issuer(tmp_path)
    index = issuer.issue()

    async def run() -> None:
        reader = reader_for(issuer)
        first = await reader.current(URL)
        second = await reader.current(URL)
        assert second.bits is first.bits  # the list verified before, not a new one
        assert not await reader.is_revoked(URL, ISSUER, index)

    asyncio.run(run())
    etag = issuer.lists.credential(ISSUER, ISSUER_KEY).etag
    assert issuer.seen == [(None, 200), (etag, 304), (etag, 304)]


def test_a_changed_list_is_fetched_again_and_its_revocation_counts_at_once(tmp_path):
    issuer = Issuer(tmp_path)
    index = issuer.issue()

    async def run() -> None:
        reader = reader_for(issuer)
        assert not await reader.is_revoked(URL, ISSUER, index)
        issuer.lists.revoke(ISSUER, index)
        assert await reader.is_revoked(URL, ISSUER, index)  # the very next verification
        assert await reader.is_revoked(URL, ISSUER, index)

    asyncio.run(run())
    new = issuer.lists.credential(ISSUER, ISSUER_KEY).etag
    assert [status for _, status in issuer.seen] == [200, 200, 304]
    asked = issuer.seen[1][0]
    assert asked is not None and asked != new  # asked with the old tag, answered in full
    assert issuer.seen[2] == (new, 304)


def test_concurrent_verifications_share_one_revalidation(tmp_path):
    issuer = Issuer(tmp_path)
    index = issuer.issue()

    async def run() -> None:
        reader = reader_for(issuer)
        await reader.current(URL)
        answers = await asyncio.gather(*(reader.is_revoked(URL, ISSUER, index) for _ in range(20)))
        assert answers == [False] * 20

    asyncio.run(run())
    assert [status for _, status in issuer.seen] == [200, 304]


def test_a_verification_begun_after_a_request_went_out_waits_for_the_next(tmp_path):
    """The request in flight was answered before the revocation: a verification that began
    after the revocation must not take that answer, but the next request's."""
    issuer = Issuer(tmp_path)
    index = issuer.issue()

    async def run() -> None:
        reader = reader_for(issuer)
        await reader.current(URL)
        issuer.hold = asyncio.Event()
        early = asyncio.create_task(reader.is_revoked(URL, ISSUER, index))
        await issuer.arrived.wait()  # answered from the list before the revocation
        issuer.lists.revoke(ISSUER, index)
        late = asyncio.create_task(reader.is_revoked(URL, ISSUER, index))
        await asyncio.sleep(0)
        issuer.hold.set()
        assert await early is False
        assert await late is True

    asyncio.run(run())
    assert [status for _, status in issuer.seen] == [200, 304, 200]


def test_an_issuer_that_allows_caching_is_not_asked_again_meanwhile(tmp_path):
    issuer = Issuer(tmp_path, cache_control="max-age=60")
    index = issuer.issue()

    async def run() -> None:
        reader = reader_for(issuer)
        assert not await reader.is_revoked(URL, ISSUER, index)
        issuer.lists.revoke(ISSUER, index)
        assert not await reader.is_revoked(URL, ISSUER, index)  # the issuer allowed 60 s

    asyncio.run(run())
    assert issuer.seen == [(None, 200)]


def test_a_weak_entity_tag_is_not_used_to_reuse_a_list(tmp_path):
    issuer = Issuer(tmp_path, weak=True)
    issuer.issue()

    async def run() -> None:
        reader = reader_for(issuer)
        await reader.current(URL)
        await reader.current(URL)

    asyncio.run(run())
    assert issuer.seen == [(None, 200), (None, 200)]


def test_a_304_for_another_tag_is_refused(tmp_path):
    issuer = Issuer(tmp_path)
    issuer.issue()

    async def run() -> None:
        reader = reader_for(issuer)
        await reader.current(URL)
        issuer.etag_override = '"another"'
        with pytest.raises(vc.CredentialError, match="304 for another ETag"):
            await reader.current(URL)

    asyncio.run(run())


def test_a_list_held_for_one_issuer_does_not_answer_for_another(tmp_path):
    issuer = Issuer(tmp_path)
    index = issuer.issue()

    async def run() -> None:
        reader = reader_for(issuer)
        with pytest.raises(vc.CredentialError, match="not signed by the credential's issuer"):
            await reader.is_revoked(URL, OTHER, index)

    asyncio.run(run())


def test_a_remembered_signature_holds_only_for_the_same_bytes_and_key(tmp_path):
    _, token = vc.issue_credential(ISSUER, ISSUER_KEY, ["X"], subject={"id": OTHER}, expires_at=None)
    right = build_document(ISSUER, public_jwk(ISSUER_KEY), [])
    wrong = build_document(ISSUER, public_jwk(derive_key("seed", "authority-trust", "other")), [])
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(404)))

    async def verify(raw: str, document: dict) -> None:
        await verify_signature(vc.Jwt.read(raw), Resolver(client, lambda _: document), memoize=True)

    async def run() -> None:
        await verify(token, right)
        await verify(token, right)
        with pytest.raises(vc.CredentialError, match="does not verify"):
            await verify(token, wrong)  # the key rotated: remembered for the old key only
        head, payload, signature = token.split(".")
        with pytest.raises(vc.CredentialError, match="does not verify"):
            await verify(f"{head}.{payload}.{signature[:-4]}AAAA", right)

    asyncio.run(run())


def test_verifications_one_after_another_each_ask_at_once(tmp_path):
    """The spacing of revalidations is for overlapping verifications: a lone client's
    verifications each ask the issuer straight away."""
    issuer = Issuer(tmp_path)
    index = issuer.issue()

    async def run() -> float:
        reader = reader_for(issuer, spacing=30.0)
        started = time.monotonic()
        for _ in range(3):
            assert not await reader.is_revoked(URL, ISSUER, index)
        return time.monotonic() - started

    assert asyncio.run(run()) < 5.0
    assert [status for _, status in issuer.seen] == [200, 304, 304]


def test_overlapping_verifications_space_their_revalidations(tmp_path):
    issuer = Issuer(tmp_path)
    index = issuer.issue()

    async def run() -> None:
        reader = reader_for(issuer, spacing=0.3)
        await reader.current(URL)
        issuer.hold = asyncio.Event()
        first = asyncio.create_task(reader.is_revoked(URL, ISSUER, index))
        await issuer.arrived.wait()
        second = [asyncio.create_task(reader.is_revoked(URL, ISSUER, index)) for _ in range(5)]
        await asyncio.sleep(0)
        issuer.hold.set()
        assert await first is False
        assert await asyncio.gather(*second) == [False] * 5

    asyncio.run(run())
    assert len(issuer.arrivals) == 3  # the first fetch, the round in flight, one round for the five
    assert issuer.arrivals[2] - issuer.arrivals[1] >= 0.29
