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
