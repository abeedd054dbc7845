"""Subscriptions (FHIR Subscription at /abonnementen/fhir, as Mitz offers them): a care
provider asks to hear when a citizen's consent that concerns it changes. Notifications are
FHIR transaction Bundles of Consent resources posted to the subscriber's rest-hook endpoint,
retried with growing pauses when the endpoint does not take them."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import httpx

from nodes.common.bsn import is_valid_bsn
from nodes.common.http import HttpError
from nodes.common.storage import DocumentStore
from nodes.consent.model import ANY

SUBSCRIPTIONS = "subscriptions"
BSN_SYSTEM = "http://fhir.nl/fhir/NamingSystem/bsn"
RETRY_PAUSES = (0.2, 0.5, 1.0, 2.0)  # seconds before each further attempt
log = logging.getLogger("subscriptions")

Sender = Callable[[str, dict[str, Any]], Awaitable[bool]]


def create(store: DocumentStore, resource: Any) -> dict[str, Any]:
    """Validate a FHIR Subscription and keep it, active."""
    if not isinstance(resource, dict) or resource.get("resourceType") != "Subscription":
        raise HttpError(400, "Bad Request", "the body must be a FHIR Subscription resource")
    if resource.get("reason") != "OTV":
        raise HttpError(422, "Unprocessable Entity", "reason must be 'OTV'")
    channel = resource.get("channel")
    if not isinstance(channel, dict):
        raise HttpError(422, "Unprocessable Entity", "channel must be an object")
    if channel.get("type") != "rest-hook" or not str(channel.get("endpoint", "")).startswith("https://"):
        raise HttpError(422, "Unprocessable Entity", "channel must be a rest-hook with an https endpoint")
    criteria = _criteria(str(resource.get("criteria", "")))
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


def _criteria(criteria: str) -> dict[str, str]:
    """`Consent?_query=otv&patientid=<bsn>&providerid=<ura>&providertype=<category>`"""
    resource, _, query = criteria.partition("?")
    fields = {k: v[0] for k, v in parse_qs(query).items()}
    if resource != "Consent" or fields.get("_query") != "otv":
        raise HttpError(422, "Unprocessable Entity", "criteria must be Consent?_query=otv&patientid=...&providerid=...")
    if not is_valid_bsn(fields.get("patientid", "")):
        raise HttpError(422, "Unprocessable Entity", "criteria patientid must be a valid BSN")
    if not fields.get("providerid"):
        raise HttpError(422, "Unprocessable Entity", "criteria must name providerid (the subscriber's URA)")
    return {"bsn": fields["patientid"], "provider": fields["providerid"], "type": fields.get("providertype", "")}


def _public(subscription: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in subscription.items() if not k.startswith("_")}


def concerned(store: DocumentStore, choice: dict[str, Any]) -> list[dict[str, Any]]:
    """Subscriptions a change of `choice` concerns: same citizen, and the subscriber is the
    data holder or the requester the choice names (by URA or category, or any)."""
    found = []
    for subscription in store.iterate(SUBSCRIPTIONS):
        criteria = subscription["_criteria"]
        known_as = {criteria["provider"], criteria["type"]} - {""}
        parties = {choice["data_holder"], choice["requester"]}
        if criteria["bsn"] == choice["bsn"] and (ANY in parties or known_as & parties):
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
    send: Sender, endpoint: str, bundle: dict[str, Any], pauses: tuple[float, ...] = RETRY_PAUSES
) -> bool:
    """Post until the endpoint takes it, pausing longer each time; False when it never did."""
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
