"""Subscriptions (FHIR Subscription at /abonnementen/fhir, as Mitz offers them): a care
provider asks to hear when a citizen's consent that concerns it changes. Notifications are
FHIR transaction Bundles of Consent resources posted to the subscriber's rest-hook endpoint.

Delivery goes through an outbox in the service's own storage (Outbox): a change is written
there, with the notification it makes, before the change is acknowledged, so that neither a
subscriber that is away nor a restart of the service loses it. A background task posts what is
due; a notification the endpoint does not take (no answer, or anything but 2xx) is tried again
after a pause that doubles each time, up to MAX_PAUSE, until the endpoint takes it or it is a
day old (then it is set apart, GIVEN_UP, and logged). One endpoint gets its notifications one
at a time, oldest first, so a withdrawal never overtakes the consent it withdraws, and a
subscriber that is down is not flooded when it returns.

A notification keeps its id (Bundle.id) on every attempt: a subscriber that took it but whose
answer was lost sees the same id again and can keep it once. Its entries are PUTs of Consent
resources, which give the same result when applied twice (RFC 9110, section 9.2.2)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Collection
from typing import Any
from urllib.parse import parse_qs

import httpx

from nodes.common.bsn import is_valid_bsn
from nodes.common.http import HttpError
from nodes.common.storage import DocumentStore
from nodes.consent.model import ANY

SUBSCRIPTIONS = "subscriptions"
OUTBOX = "notification_outbox"  # notification id -> what to post where, attempts, when next
GIVEN_UP = "notifications_given_up"  # notifications no attempt delivered within GIVE_UP_AFTER
BSN_SYSTEM = "http://fhir.nl/fhir/NamingSystem/bsn"
FIRST_PAUSE = 0.25  # seconds before the second attempt; each further pause is twice the one before
MAX_PAUSE = 300.0  # the pause stops growing here: a subscriber back from a long outage waits at most this
GIVE_UP_AFTER = 86_400.0  # seconds: a notification no attempt delivered in a day is set apart
# Only a deliberately faulty node (notifications-dropped-after-outage) delivers in memory, with
# these few pauses (seconds), and drops what they did not deliver.
RETRY_PAUSES = (0.2, 0.5, 1.0, 2.0)
log = logging.getLogger("subscriptions")

Sender = Callable[[str, dict[str, Any]], Awaitable[bool]]
# The rule that refused a subscription, as a coding of the OperationOutcome's issue (the same
# rule names the service's other refusals carry in their problem type).
REFUSAL_SYSTEM = "urn:health-testbed:refusal"
ISSUE_TYPES = {400: "structure", 422: "business-rule"}  # FHIR issue types (IssueType value set)


def operation_outcome(error: HttpError) -> dict[str, Any]:
    """A refusal as FHIR answers it: an OperationOutcome, with the rule as the issue's details."""
    issue: dict[str, Any] = {"severity": "error", "code": ISSUE_TYPES.get(error.status, "processing")}
    if error.code:
        issue["details"] = {"coding": [{"system": REFUSAL_SYSTEM, "code": error.code}]}
    issue["diagnostics"] = error.detail or error.title
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def create(
    store: DocumentStore, resource: Any, *, check_reason: bool = True, bsn_ok: Callable[[str], bool] = is_valid_bsn
) -> dict[str, Any]:
    """Validate a FHIR Subscription and keep it, active. `check_reason` and `bsn_ok` differ
    from the defaults only in a deliberately faulty node (the mutation self-test)."""
    if not isinstance(resource, dict) or resource.get("resourceType") != "Subscription":
        raise HttpError(400, "Bad Request", "the body must be a FHIR Subscription resource", code="not-a-subscription")
    if check_reason and resource.get("reason") != "OTV":
        raise HttpError(422, "Unprocessable Entity", "reason must be 'OTV'", code="subscription-reason")
    channel = resource.get("channel")
    if not isinstance(channel, dict):
        raise HttpError(422, "Unprocessable Entity", "channel must be an object", code="subscription-channel")
    if channel.get("type") != "rest-hook" or not str(channel.get("endpoint", "")).startswith("https://"):
        raise HttpError(
            422,
            "Unprocessable Entity",
            "channel must be a rest-hook with an https endpoint",
            code="subscription-channel",
        )
    criteria = _criteria(str(resource.get("criteria", "")), bsn_ok)
    # The same criteria and endpoint again replace the earlier subscription: one change, one
    # notification per subscriber.
    same = next(
        (s for s in store.iterate(SUBSCRIPTIONS) if s["_criteria"] == criteria and s["channel"] == channel), None
    )
    subscription = {
        **resource,
        "id": same["id"] if same else str(uuid.uuid4()),
        "status": "active",
        "_criteria": criteria,
    }
    store.put(SUBSCRIPTIONS, subscription["id"], subscription)
    return _public(subscription)


def _criteria(criteria: str, bsn_ok: Callable[[str], bool]) -> dict[str, str]:
    """`Consent?_query=otv&patientid=<bsn>&providerid=<ura>&providertype=<category>`"""
    resource, _, query = criteria.partition("?")
    fields = {k: v[0] for k, v in parse_qs(query).items()}
    if resource != "Consent" or fields.get("_query") != "otv":
        raise HttpError(
            422,
            "Unprocessable Entity",
            "criteria must be Consent?_query=otv&patientid=...&providerid=...",
            code="subscription-criteria",
        )
    if not bsn_ok(fields.get("patientid", "")):
        raise HttpError(422, "Unprocessable Entity", "criteria patientid must be a valid BSN", code="bsn-invalid")
    if not fields.get("providerid"):
        raise HttpError(
            422,
            "Unprocessable Entity",
            "criteria must name providerid (the subscriber's URA)",
            code="subscription-criteria",
        )
    return {"bsn": fields["patientid"], "provider": fields["providerid"], "type": fields.get("providertype", "")}


def _public(subscription: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in subscription.items() if not k.startswith("_")}


def concerned(store: DocumentStore, choice: dict[str, Any], everyone: bool = False) -> list[dict[str, Any]]:
    """Subscriptions a change of `choice` concerns: same citizen, and the subscriber is the
    data holder or the requester the choice names (by URA or category, or any). `everyone`:
    a deliberately faulty node's defect, every subscriber for the citizen."""
    found = []
    for subscription in store.iterate(SUBSCRIPTIONS):
        criteria = subscription["_criteria"]
        known_as = {criteria["provider"], criteria["type"]} - {""}
        parties = {choice["data_holder"], choice["requester"]}
        if criteria["bsn"] == choice["bsn"] and (everyone or ANY in parties or known_as & parties):
            found.append(subscription)
    return found


def notification(subscription: dict[str, Any], choice: dict[str, Any]) -> dict[str, Any]:
    """A transaction Bundle with the changed choice as a FHIR Consent."""
    consent = {
        "resourceType": "Consent",
        "id": choice["id"],
        "status": "active" if choice["status"] == "active" else "inactive",
        "scope": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"identifier": {"system": BSN_SYSTEM, "value": choice["bsn"]}},
        "provision": {
            "type": choice["decision"],
            "actor": [
                {"role": {"text": "data holder"}, "reference": {"identifier": {"value": choice["data_holder"]}}},
                {"role": {"text": "requester"}, "reference": {"identifier": {"value": choice["requester"]}}},
            ],
            "class": [{"code": choice["data_category"]}],
        },
    }
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "transaction",
        "meta": {"tag": [{"code": subscription["id"]}]},
        "entry": [{"resource": consent, "request": {"method": "PUT", "url": f"Consent/{choice['id']}"}}],
    }


async def deliver(
    send: Sender, *, endpoint: str, bundle: dict[str, Any], pauses: tuple[float, ...] = RETRY_PAUSES
) -> bool:
    """Post in memory until the endpoint takes it or the pauses run out; False when it never did.
    Only the faulty variant delivers so (a notification outlasting the pauses is lost)."""
    for attempt, pause in enumerate((0.0, *pauses)):
        await asyncio.sleep(pause)
        if await send(endpoint, bundle):
            return True
        log.warning("notification to %s not taken (attempt %d)", endpoint, attempt + 1)
    return False


def http_sender(client: httpx.AsyncClient) -> Sender:
    async def send(endpoint: str, bundle: dict[str, Any]) -> bool:
        try:
            response = await client.post(endpoint, json=bundle, headers={"Content-Type": "application/fhir+json"})
        except httpx.HTTPError:
            return False
        return 200 <= response.status_code < 300

    return send


# --- the outbox ----------------------------------------------------------------------------------


def pause_after(attempts: int, *, first: float = FIRST_PAUSE, longest: float = MAX_PAUSE) -> float:
    """The pause after the `attempts`-th failed attempt: first, then doubled each time, at most longest."""
    doublings = min(max(attempts - 1, 0), 64)  # bounded: past the cap long before, and no float overflow
    return min(first * 2**doublings, longest)


def outbox_entry(subscription: dict[str, Any], bundle: dict[str, Any], now: float) -> dict[str, Any]:
    """What the outbox keeps of one notification: due at once, not tried yet."""
    return {
        "id": bundle["id"],
        "subscription": subscription["id"],
        "endpoint": subscription["channel"]["endpoint"],
        "bundle": bundle,
        "attempts": 0,
        "created": now,
        "next_attempt": now,
    }


def heads(store: DocumentStore, *, busy: Collection[str] = ()) -> list[dict[str, Any]]:
    """Per endpoint not in `busy`, its oldest waiting notification: the only one it may be sent."""
    first: dict[str, dict[str, Any]] = {}
    for entry in store.iterate(OUTBOX):  # in the order they were written
        if entry["endpoint"] not in busy:
            first.setdefault(entry["endpoint"], entry)
    return list(first.values())


def failed(
    store: DocumentStore,
    entry: dict[str, Any],
    now: float,
    *,
    first: float = FIRST_PAUSE,
    longest: float = MAX_PAUSE,
    give_up_after: float = GIVE_UP_AFTER,
) -> dict[str, Any] | None:
    """Record a failed attempt: the entry as due again after its pause, or None when it is too old
    to try again (it is then set apart in GIVEN_UP, so that what was never delivered stays known)."""
    attempts = entry["attempts"] + 1
    if now - entry["created"] >= give_up_after:
        store.put(GIVEN_UP, entry["id"], {**entry, "attempts": attempts, "given_up": now})
        store.delete(OUTBOX, entry["id"])
        log.warning("notification %s to %s given up after %d attempts", entry["id"], entry["endpoint"], attempts)
        return None
    renewed = {**entry, "attempts": attempts, "next_attempt": now + pause_after(attempts, first=first, longest=longest)}
    store.put(OUTBOX, entry["id"], renewed)
    return renewed


class Outbox:
    """The notifications waiting to be delivered, in the service's storage, and the background
    task that delivers them (see the module's notes)."""

    def __init__(
        self,
        store: DocumentStore,
        send: Sender,
        *,
        clock: Callable[[], float] = time.time,
        first_pause: float = FIRST_PAUSE,
        max_pause: float = MAX_PAUSE,
        give_up_after: float = GIVE_UP_AFTER,
    ):
        self._store = store
        self._send = send
        self._clock = clock  # wall clock: due times are kept across restarts
        self._first, self._longest, self._give_up_after = first_pause, max_pause, give_up_after
        self._wake = asyncio.Event()
        self._busy: set[str] = set()  # endpoints with an attempt under way
        self._attempts: set[asyncio.Task[None]] = set()

    def add(self, subscription: dict[str, Any], bundle: dict[str, Any]) -> None:
        """Keep the notification (durably: storage writes are synchronous), then wake the sender."""
        self._store.put(OUTBOX, bundle["id"], outbox_entry(subscription, bundle, self._clock()))
        self._wake.set()

    def waiting(self) -> list[dict[str, Any]]:
        return self._store.list(OUTBOX)

    async def run(self) -> None:
        """Send what is due, then sleep until the next is due or a notification is added."""
        while True:
            self._wake.clear()
            pause = self.send_due()
            with contextlib.suppress(TimeoutError):  # the next one is due
                await asyncio.wait_for(self._wake.wait(), timeout=pause)

    def send_due(self) -> float | None:
        """Start an attempt for every endpoint whose oldest notification is due; the seconds
        until the next one is (None: nothing waits but what is under way)."""
        now, soonest = self._clock(), None
        for entry in heads(self._store, busy=self._busy):
            if entry["next_attempt"] <= now:
                self._busy.add(entry["endpoint"])
                task = asyncio.create_task(self._attempt(entry))
                self._attempts.add(task)
                task.add_done_callback(self._attempted)
            elif soonest is None or entry["next_attempt"] < soonest:
                soonest = entry["next_attempt"]
        return None if soonest is None else max(soonest - now, 0.0)

    async def _attempt(self, entry: dict[str, Any]) -> None:
        try:
            taken = await self._send(entry["endpoint"], entry["bundle"])
        except Exception:  # a sender's own bug counts as "not taken": the entry waits, it does not spin
            log.exception("sending notification %s to %s failed", entry["id"], entry["endpoint"])
            taken = False
        finally:
            self._busy.discard(entry["endpoint"])
        if taken:
            self._store.delete(OUTBOX, entry["id"])
            return
        renewed = failed(
            self._store,
            entry,
            self._clock(),
            first=self._first,
            longest=self._longest,
            give_up_after=self._give_up_after,
        )
        if renewed is not None:
            log.info(
                "notification %s to %s not taken (attempt %d); next in %.2f s",
                entry["id"],
                entry["endpoint"],
                renewed["attempts"],
                renewed["next_attempt"] - self._clock(),
            )

    def _attempted(self, task: asyncio.Task[None]) -> None:
        self._attempts.discard(task)
        if not task.cancelled() and task.exception() is not None:  # storage failed: logged, retried when due
            log.error("recording a notification attempt failed", exc_info=task.exception())
        self._wake.set()  # the endpoint is free: its next notification may go

    async def settled(self) -> None:
        """Wait until the attempts under way have ended and been recorded."""
        while self._attempts:
            await asyncio.gather(*self._attempts, return_exceptions=True)

    async def close(self) -> None:
        """Stop the attempts under way; what they did not deliver stays in the outbox."""
        for task in list(self._attempts):
            task.cancel()
        await asyncio.gather(*self._attempts, return_exceptions=True)
