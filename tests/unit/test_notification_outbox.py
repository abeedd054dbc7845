"""The consent service's notification outbox: a notification is kept in storage before it is
sent, sent again after pauses that double up to a cap while the subscriber does not take it,
kept across a restart of the service, sent in order per endpoint (one at a time), never sent
again once taken, set apart when a day old, and sent with the same id on every attempt. The
clock is a fake one the tests move; the sender records what it was asked to post."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from nodes.common.storage import DocumentStore
from nodes.consent import subscriptions
from nodes.consent.subscriptions import GIVEN_UP, OUTBOX, Outbox, pause_after

GP = "https://gp.example/fhir/notifications/consent"
NURSING = "https://nursing.example/fhir/notifications/consent"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class Subscriber:
    """Endpoints that take a notification unless they are in `down`; every post is recorded."""

    def __init__(self) -> None:
        self.down: set[str] = set()
        self.posts: list[tuple[str, str]] = []  # (endpoint, Bundle.id)

    async def __call__(self, endpoint: str, bundle: dict[str, Any]) -> bool:
        self.posts.append((endpoint, bundle["id"]))
        return endpoint not in self.down

    def taken(self, endpoint: str) -> list[str]:
        return [bundle for to, bundle in self.posts if to == endpoint and to not in self.down]


def subscription(endpoint: str = GP) -> dict[str, Any]:
    return {"id": f"sub-{endpoint}", "channel": {"type": "rest-hook", "endpoint": endpoint}}


def change(choice_id: str, status: str = "active") -> dict[str, Any]:
    return {
        "id": choice_id,
        "bsn": "537412608",
        "status": status,
        "decision": "permit",
        "data_holder": "90000003",
        "requester": "90000002",
        "data_category": "GGC002",
    }


def bundle_for(choice_id: str, endpoint: str = GP, status: str = "active") -> dict[str, Any]:
    return subscriptions.notification(subscription(endpoint), change(choice_id, status))


async def send_due(outbox: Outbox) -> float | None:
    """One round of the sender: what is due goes, and its outcome is recorded."""
    pause = outbox.send_due()
    await outbox.settled()
    return pause


@pytest.fixture
def store(tmp_path: Path) -> DocumentStore:
    return DocumentStore(tmp_path / "consent.sqlite")


def test_the_pause_doubles_from_the_first_and_stops_growing_at_the_cap():
    assert [pause_after(n, first=0.25, longest=3.0) for n in range(1, 7)] == [0.25, 0.5, 1.0, 2.0, 3.0, 3.0]
    assert pause_after(40) == pause_after(5000) == subscriptions.MAX_PAUSE  # no overflow, however many attempts


def test_a_notification_is_in_storage_before_anything_is_sent(store):
    outbox = Outbox(store, Subscriber(), clock=Clock())
    bundle = bundle_for("c1")
    outbox.add(subscription(), bundle)
    [kept] = store.list(OUTBOX)
    assert kept["bundle"] == bundle and kept["attempts"] == 0 and kept["endpoint"] == GP


def test_a_subscriber_that_is_away_is_tried_again_after_growing_pauses_and_gets_it_once_back(store):
    clock, subscriber = Clock(), Subscriber()
    outbox = Outbox(store, subscriber, clock=clock, first_pause=0.25)
    bundle = bundle_for("c1")
    outbox.add(subscription(), bundle)
    subscriber.down.add(GP)

    async def run() -> list[float | None]:
        pauses = []
        for _ in range(4):  # each round: the attempt fails, the next is due after the pause
            pauses.append(await send_due(outbox))
            pauses.append(outbox.send_due())  # not due yet: nothing is sent before the pause is over
            clock.now = store.list(OUTBOX)[0]["next_attempt"]
        subscriber.down.clear()
        await send_due(outbox)
        return pauses

    pauses = asyncio.run(run())
    assert pauses[1::2] == [0.25, 0.5, 1.0, 2.0]
    assert subscriber.posts == [(GP, bundle["id"])] * 5  # the same notification id on every attempt
    assert store.list(OUTBOX) == []  # taken: nothing waits


def test_a_notification_taken_is_not_sent_again(store):
    clock, subscriber = Clock(), Subscriber()
    outbox = Outbox(store, subscriber, clock=clock)
    outbox.add(subscription(), bundle_for("c1"))

    async def run() -> float | None:
        await send_due(outbox)
        clock.now += 3600
        return await send_due(outbox)

    assert asyncio.run(run()) is None  # nothing waits, so nothing is due
    assert len(subscriber.posts) == 1


def test_what_waits_survives_a_restart_of_the_service(tmp_path):
    clock, subscriber = Clock(), Subscriber()
    subscriber.down.add(GP)
    first = Outbox(DocumentStore(tmp_path / "consent.sqlite"), subscriber, clock=clock)
    bundle = bundle_for("c1")
    first.add(subscription(), bundle)
    asyncio.run(send_due(first))  # tried once, not taken; then the process is gone
    subscriber.down.clear()
    clock.now += 60
    again = Outbox(DocumentStore(tmp_path / "consent.sqlite"), subscriber, clock=clock)  # a new process
    asyncio.run(send_due(again))
    assert subscriber.posts == [(GP, bundle["id"]), (GP, bundle["id"])]
    assert again.waiting() == []


def test_one_endpoint_gets_its_notifications_in_order_one_at_a_time(store):
    clock, subscriber = Clock(), Subscriber()
    outbox = Outbox(store, subscriber, clock=clock)
    permit, withdrawal = bundle_for("c1"), bundle_for("c1", status="withdrawn")
    subscriber.down.add(GP)
    outbox.add(subscription(), permit)
    outbox.add(subscription(), withdrawal)

    async def run() -> None:
        await send_due(outbox)  # only the oldest is tried while the endpoint is away
        subscriber.down.clear()
        clock.now += 10
        await send_due(outbox)  # the permit goes; its withdrawal is next
        await send_due(outbox)

    asyncio.run(run())
    assert subscriber.posts == [(GP, permit["id"]), (GP, permit["id"]), (GP, withdrawal["id"])]


def test_an_endpoint_that_is_away_does_not_hold_up_another(store):
    clock, subscriber = Clock(), Subscriber()
    outbox = Outbox(store, subscriber, clock=clock)
    subscriber.down.add(GP)
    outbox.add(subscription(GP), bundle_for("c1", GP))
    nursing = bundle_for("c2", NURSING)
    outbox.add(subscription(NURSING), nursing)
    asyncio.run(send_due(outbox))
    assert subscriber.taken(NURSING) == [nursing["id"]]
    assert [entry["endpoint"] for entry in outbox.waiting()] == [GP]


def test_a_notification_a_day_old_is_set_apart_not_tried_again(store):
    clock, subscriber = Clock(), Subscriber()
    outbox = Outbox(store, subscriber, clock=clock, give_up_after=86_400)
    subscriber.down.add(GP)
    outbox.add(subscription(), bundle_for("c1"))

    async def run() -> float | None:
        await send_due(outbox)
        clock.now += 86_400
        await send_due(outbox)  # a day later, still not taken: given up
        clock.now += 86_400
        return await send_due(outbox)

    assert asyncio.run(run()) is None
    assert len(subscriber.posts) == 2
    [given_up] = store.list(GIVEN_UP)
    assert given_up["attempts"] == 2 and given_up["endpoint"] == GP


def test_a_sender_that_raises_counts_as_not_taken_and_waits_its_pause(store):
    clock = Clock()
    calls = []

    async def broken(endpoint: str, bundle: dict[str, Any]) -> bool:
        calls.append(endpoint)
        raise RuntimeError("a bug in the sender")

    outbox = Outbox(store, broken, clock=clock, first_pause=0.25)
    outbox.add(subscription(), bundle_for("c1"))
    assert asyncio.run(send_due(outbox)) is None  # the attempt was under way: nothing else due then
    assert outbox.send_due() == 0.25  # it waits its pause rather than being sent again at once
    assert calls == [GP] and outbox.waiting()[0]["attempts"] == 1


def test_the_sender_task_delivers_in_the_background_once_woken(store):
    subscriber = Subscriber()

    async def run() -> None:
        outbox = Outbox(store, subscriber, first_pause=0.01)
        sender = asyncio.create_task(outbox.run())
        subscriber.down.add(GP)
        outbox.add(subscription(), bundle_for("c1"))
        await asyncio.sleep(0.05)  # a few attempts fail meanwhile
        subscriber.down.clear()
        for _ in range(100):
            if not outbox.waiting():
                break
            await asyncio.sleep(0.02)
        sender.cancel()
        await outbox.close()

    asyncio.run(run())
    assert len(subscriber.posts) >= 2 and store.list(OUTBOX) == []
    assert len(set(subscriber.posts)) == 1  # one notification, one id, however many attempts
