"""Revocation with StatusList2021 (W3C VC Status List 2021): every revocable credential
gets an index in its issuer's status list; revoking sets that bit; the list is a credential
itself, signed by the issuer and served publicly at `/statuslist/{did}/{page}`.

The issuer serves its list with a strong ETag (RFC 9110, section 8.8.3) and answers a matching
If-None-Match with 304. By default it also answers `Cache-Control: no-cache`, so a verifier
revalidates the list before every use and a revocation counts from the next verification on.
What makes that cheap on the verifier's side (StatusListReader):
- the list is kept per URL as last verified (signer, bitstring, strong ETag), and a 304 reuses
  it: no new list to read, no signature to check, no bitstring to unpack;
- concurrent verifications of one URL share a revalidation (RFC 9111, section 4 allows a cache
  to collapse requests), but only one sent after they began, so each is answered by the
  issuer's state at a moment after it started: a revocation that returned before a
  verification began is always seen by it;
- while verifications overlap, revalidations of one list are at least REVALIDATION_SPACING
  apart, so that those of a few milliseconds share one request (a round trip costs about as
  much CPU as a whole verification); a verification that finds no request under way asks at
  once, so one after another (a lone client) wait for nothing;
- requests go straight to a pooled HTTP transport of their own, which keeps the connection to
  the issuer open, without the client layer's per-request work (and its log line).
An issuer that allows caching (`max-age=N`) is not asked again for N seconds.

When the list cannot be had (the issuer unreachable, or answering anything but the list or a
304), the verifier fails closed: the credential is refused, with an error that names the list
and says why (StatusListUnavailable), whether or not a copy is held. A copy past the freshness
the issuer allowed cannot be trusted to be current (a revocation may have happened meanwhile),
so it is not used instead: RFC 9111 (section 4.2.4) lets a cache serve a stale answer while
disconnected, and the Nuts node keeps using its stored list then, but for revocation this node
follows the fail-safe rule (W3C VC Status List 2021, validate algorithm: a list that cannot be
retrieved is an error, not a result). A failure is not remembered: the next verification asks
again, so credentials are accepted again as soon as the issuer is back."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import httpx
from joserfc.jwk import ECKey

from nodes.common.storage import DocumentStore
from nodes.trust.credentials import verify_signature
from nodes.trust.did import Resolver
from protocols import vcjwt as vc

LIST_BITS = 131072  # 16 KiB: the spec's minimum list size, so one index does not stand out
PAGE = 1  # one page holds LIST_BITS credentials, more than a test network issues
COUNTERS = "statuslist_counters"
REVOKED = "statuslist_revoked"
STATUS_CONTEXT = "https://w3id.org/vc/status-list/2021/v1"
HELD_LISTS = 1024  # lists a verifier keeps (least recently used dropped): URLs come from presented credentials
# The longest a verification waits for the next revalidation of a list beyond its round trip;
# also the most requests per second one verifier sends an issuer for one list (100).
REVALIDATION_SPACING = 0.01
TIMEOUT = httpx.Timeout(10.0).as_dict()  # as the node's own client waits


_ENTITY_TAG = re.compile(r'(?:W/)?"([^"]*)"')


def list_url(public_url: str, issuer: str, page: int = PAGE) -> str:
    return f"{public_url}/statuslist/{quote(issuer, safe='')}/{page}"


@dataclass(frozen=True)
class SignedList:
    """An issuer's list as last signed, with the strong ETag verifiers revalidate it by."""

    token: str
    etag: str


def entity_tag(token: str) -> str:
    """A digest of the exact token served: every new signature (a revocation, a restart that
    signs anew) gives a new tag, and only byte-identical lists share one."""
    digest = hashlib.sha256(token.encode()).digest()[:18]
    return f'"{base64.urlsafe_b64encode(digest).decode()}"'


def unchanged(if_none_match: str | None, etag: str) -> bool:
    """Whether a request's If-None-Match names the current list (RFC 9110, section 13.1.2:
    `*` or a list of tags, compared weakly), so that 304 is the answer."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return etag.strip('"') in _ENTITY_TAG.findall(if_none_match)


class StatusLists:
    def __init__(self, store: DocumentStore, public_url: str):
        self._store = store
        self._public_url = public_url
        self._signed: dict[str, SignedList] = {}  # issuer -> its list as last signed; dropped on a revocation

    def new_entry(self, issuer: str) -> dict[str, Any]:
        """Reserve the next index of the issuer's list: the credentialStatus to embed."""
        counter = self._store.get(COUNTERS, issuer) or {"next": 0}
        index = counter["next"]
        if index >= LIST_BITS:
            raise ValueError(f"the status list of {issuer} is full")
        self._store.put(COUNTERS, issuer, {"next": index + 1})
        url = list_url(self._public_url, issuer)
        return {
            "id": f"{url}#{index}",
            "type": "StatusList2021Entry",
            "statusPurpose": "revocation",
            "statusListIndex": str(index),
            "statusListCredential": url,
        }

    def revoke(self, issuer: str, index: int) -> bool:
        """Set the bit; False when it was set already."""
        revoked = set(self._revoked(issuer))
        if index in revoked:
            return False
        self._store.put(REVOKED, issuer, {"indices": sorted(revoked | {index})})
        self._signed.pop(issuer, None)
        return True

    def credential(self, issuer: str, key: ECKey) -> SignedList:
        """The issuer's status list as a signed JWT credential, signed anew after a change."""
        signed = self._signed.get(issuer)
        if signed is None:
            token = self._sign(issuer, key)
            signed = self._signed[issuer] = SignedList(token, entity_tag(token))
        return signed

    def _sign(self, issuer: str, key: ECKey) -> str:
        url = list_url(self._public_url, issuer)
        subject = {
            "id": url,  # the list's own URL: the Nuts node refuses any other (the W3C example adds #list)
            "type": "StatusList2021",
            "statusPurpose": "revocation",
            "encodedList": encode(self._revoked(issuer)),
        }
        now = int(time.time())
        claims = {
            "iss": issuer,
            "sub": subject["id"],
            "jti": url,
            "nbf": now,
            "vc": {
                "@context": [*vc.VC_CONTEXT, STATUS_CONTEXT],
                "type": ["VerifiableCredential", "StatusList2021Credential"],
                "credentialSubject": subject,
            },
        }
        return vc.sign(claims, issuer, key)

    def _revoked(self, issuer: str) -> list[int]:
        return (self._store.get(REVOKED, issuer) or {"indices": []})["indices"]


class StatusListUnavailable(vc.CredentialError):
    """The status list could not be had, so a credential's revocation cannot be established."""

    def __init__(self, url: str, reason: str, *, held_for: float | None = None):
        self.url = url
        held = "" if held_for is None else f"; the copy verified {held_for:.0f} s ago is not taken as current"
        super().__init__(
            f"the status list {url} could not be fetched ({reason}): the credential's revocation cannot be "
            f"checked, so it is refused{held}"
        )


@dataclass(frozen=True)
class HeldList:
    """A status list as last verified, which a 304 lets the verifier use again."""

    signer: str  # the issuer whose signature it carries, compared with each credential's issuer
    bits: bytes
    etag: str | None  # strong ETag to revalidate with; None: every revalidation fetches it whole
    fresh_until: float  # monotonic clock; until then it is used without asking (max-age)
    asked: float  # monotonic clock: when the request that confirmed it was sent


@dataclass
class _Round:
    """One request for a URL's list, shared by the verifications that join it before it is sent."""

    sent: bool = False


class StatusListReader:
    """The verifier's side: whether a credential's bit is set in its issuer's list as the
    issuer has it now (see the module's notes for how that stays cheap)."""

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        resolver: Resolver,
        *,
        capacity: int = HELD_LISTS,
        spacing: float = REVALIDATION_SPACING,
        fail_open: bool = False,
    ):
        self._transport = transport  # pooled: one open connection per issuer
        self._resolver = resolver
        self._capacity = capacity
        self._spacing = spacing
        # True only in a deliberately faulty node (the mutation self-test): a list that cannot
        # be had counts as revoking nothing, the fail-open mistake the checks must catch.
        self._fail_open = fail_open
        self._held: OrderedDict[str, HeldList] = OrderedDict()
        self._rounds: dict[str, tuple[_Round, asyncio.Task[HeldList]]] = {}  # url -> its newest request

    async def is_revoked(self, url: str, issuer: str, index: int) -> bool:
        try:
            held = await self.current(url)
        except StatusListUnavailable:
            if self._fail_open:
                return False
            raise
        if held.signer != issuer:
            raise vc.CredentialError("the status list is not signed by the credential's issuer")
        return bit_set(held.bits, index)

    async def current(self, url: str) -> HeldList:
        """The list at `url` as the issuer has it now: as held while fresh, else revalidated
        by a request sent after this call began."""
        held = self._held.get(url)
        if held is not None and held.fresh_until > time.monotonic():
            self._held.move_to_end(url)
            return held
        # Shielded: a verification given up (its client went away) leaves the round to the others.
        return await asyncio.shield(self._round(url))

    def _round(self, url: str) -> asyncio.Task[HeldList]:
        """Join the URL's next request if it has not gone out yet; else queue a new one behind
        the request in flight (one at a time per URL: those arriving meanwhile share the next)."""
        newest = self._rounds.get(url)
        if newest is not None and not newest[0].sent:
            return newest[1]
        joinable = _Round()
        task = asyncio.create_task(self._when_turn(url, joinable, newest[1] if newest else None))
        self._rounds[url] = (joinable, task)
        task.add_done_callback(lambda done: self._retire(url, done))
        return task

    async def _when_turn(self, url: str, joinable: _Round, previous: asyncio.Task[HeldList] | None) -> HeldList:
        if previous is not None:  # verifications overlap: space the rounds, so that more share each
            await asyncio.wait({previous})  # its outcome is for the verifications that shared it
            held = self._held.get(url)
            if held is not None and (wait := held.asked + self._spacing - time.monotonic()) > 0:
                await asyncio.sleep(wait)  # newcomers join this round meanwhile
        joinable.sent = True  # from here on, a newcomer queues the next round
        return await self._fetch(url)

    def _retire(self, url: str, task: asyncio.Task[HeldList]) -> None:
        if not task.cancelled():
            task.exception()  # marked as retrieved: the verifications that shared it have it
        newest = self._rounds.get(url)
        if newest is not None and newest[1] is task:
            del self._rounds[url]

    async def _fetch(self, url: str) -> HeldList:
        held = self._held.get(url)
        condition = {"If-None-Match": held.etag} if held is not None and held.etag else {}
        asked = time.monotonic()
        held_for = None if held is None else asked - held.asked
        try:
            response = await self._get(url, condition)
        except httpx.HTTPError as exc:
            raise StatusListUnavailable(url, f"unreachable: {exc.__class__.__name__}", held_for=held_for) from None
        if response.status_code == 304 and held is not None and condition:
            renewed = _revalidated(held, response, url, asked)
        elif response.status_code == 200:
            renewed = await self._verified(url, response, asked)
        else:
            raise StatusListUnavailable(url, f"answered {response.status_code}", held_for=held_for)
        self._held[url] = renewed
        self._held.move_to_end(url)
        if len(self._held) > self._capacity:
            self._held.popitem(last=False)
        return renewed

    async def _get(self, url: str, headers: dict[str, str]) -> httpx.Response:
        request = httpx.Request("GET", url, headers=headers, extensions={"timeout": TIMEOUT})
        response = await self._transport.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    async def _verified(self, url: str, response: httpx.Response, asked: float) -> HeldList:
        """A list answered in full: its signer's signature, its type and URL, its bitstring."""
        status_list = vc.Jwt.read(response.text.strip().strip('"'))
        signer = status_list.signer_did
        if status_list.claims.get("iss") != signer:
            raise vc.CredentialError(f"the status list at {url} is not signed by its issuer 'iss'")
        # Keyed by content: a list unchanged but answered in full is not verified again.
        await verify_signature(status_list, self._resolver, memoize=True)
        view = vc.credential_view(status_list)
        subject = view["credentialSubject"]
        if "StatusList2021Credential" not in vc.types_of(view) or subject.get("id") != url:
            raise vc.CredentialError(f"{url} is not a StatusList2021Credential for that URL")
        if subject.get("statusPurpose") != "revocation":
            raise vc.CredentialError(f"the status list at {url} is not a revocation list")
        bits = decoded(str(subject.get("encodedList", "")))
        return HeldList(signer, bits, _strong_etag(response), _fresh_until(response), asked)


def _revalidated(held: HeldList, response: httpx.Response, url: str, asked: float) -> HeldList:
    """A 304 confirms the list held, for the tag it was asked about; it may renew max-age."""
    etag = response.headers.get("etag")
    if etag is not None and etag.strip() != held.etag:
        raise vc.CredentialError(f"the status list {url} answered 304 for another ETag than the one asked about")
    return replace(held, fresh_until=_fresh_until(response), asked=asked)


def _strong_etag(response: httpx.Response) -> str | None:
    """Only a strong tag promises the very same bytes: a weak one is not trusted for revocation."""
    etag = (response.headers.get("etag") or "").strip()
    return etag if etag.startswith('"') and etag.endswith('"') and len(etag) > 2 else None


def _fresh_until(response: httpx.Response) -> float:
    max_age = _max_age(response.headers.get("cache-control", ""))
    return time.monotonic() + max_age if max_age > 0 else 0.0


def _max_age(cache_control: str) -> int:
    """The max-age of a Cache-Control value; 0 also where no-cache or no-store say "ask every time"."""
    seconds = 0
    for directive in cache_control.split(","):
        name, _, value = directive.strip().partition("=")
        if name.lower() in ("no-cache", "no-store"):
            return 0
        if name.lower() == "max-age" and value.strip().isdigit():
            seconds = int(value)
    return seconds


@lru_cache(maxsize=16)
def decoded(encoded: str) -> bytes:
    """The list's bitstring. A list is checked for many credentials between changes: unpack it once."""
    try:
        return gzip.decompress(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (ValueError, OSError, EOFError) as exc:
        raise vc.CredentialError(f"the status list cannot be decoded: {exc.__class__.__name__}") from None


def encode(indices: list[int]) -> str:
    """GZIP-compressed bitstring, base64url without padding; index 0 is the first byte's
    most significant bit."""
    bits = bytearray(LIST_BITS // 8)
    for index in indices:
        bits[index // 8] |= 0x80 >> (index % 8)
    return base64.urlsafe_b64encode(gzip.compress(bytes(bits), mtime=0)).rstrip(b"=").decode()


def is_set(encoded: str, index: int) -> bool:
    return bit_set(decoded(encoded), index)


def bit_set(bits: bytes, index: int) -> bool:
    if not 0 <= index < len(bits) * 8:
        raise vc.CredentialError(f"status list index {index} is outside the list")
    return bool(bits[index // 8] & (0x80 >> (index % 8)))
