"""The station's own records and publications: its HealthDCAT-AP catalogue (public), the test
patients a harness picks from, the audit log and its chain, and the consent notifications its
subscriptions deliver."""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nodes.common.audit import AuditLog
from nodes.common.http import HttpError, parse_json, read_body
from nodes.common.peer import certificate_names, client_certificate
from nodes.common.resource import int_param
from nodes.station import synthetic
from nodes.station.routes import fhir_response, station_of

NOTIFICATIONS = "consent_notifications"
MAX_NOTIFICATION_BYTES = 256 * 1024  # a notification carries a few Consent resources
KEPT_NOTIFICATIONS = 1000  # the newest ones; older ones have been acted on or never will be
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # FHIR R4's id datatype


async def published_catalogue(request: Request) -> Response:
    return JSONResponse(station_of(request).catalogue(), media_type="application/ld+json")


async def patients(request: Request) -> Response:
    """Test patients for a harness: `limit` of them from `offset` on (a load run gives each
    simulated user its own)."""
    station = station_of(request)
    limit, offset = int_param(request, "limit", 10), int_param(request, "offset", 0)
    listed = list(station.store.iterate("Patient", limit + offset))[offset:]
    return JSONResponse(
        [{"id": p["id"], "bsn": synthetic.bsn_of(p), "name": p["name"][0], "birthDate": p["birthDate"]} for p in listed]
    )


async def consent_notification(request: Request) -> Response:
    """Where this organisation's subscriptions at the consent service deliver: only that
    service may post here (it is known by its TLS client certificate), a notification is
    small, and only the newest ones are kept, so that no one can fill the station's storage."""
    station = station_of(request)
    if not station.faulty("notifications-from-anyone"):
        _check_notifier(request, consent_url=station.config.peers.get("consent", ""))
    body = await read_body(request)
    if len(body) > MAX_NOTIFICATION_BYTES:
        detail = f"a consent notification is at most {MAX_NOTIFICATION_BYTES // 1024} KiB"
        raise HttpError(413, "Content Too Large", detail, code="notification-too-large")
    bundle = parse_json(body, what="the notification")
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle" or bundle.get("type") != "transaction":
        detail = "a consent notification is a FHIR transaction Bundle"
        raise HttpError(400, "Bad Request", detail, code="not-a-transaction-bundle")
    # Kept under the notification's own id, once: the consent service sends a notification it is
    # not sure was taken again with the same id, and the redelivery is answered as the first
    # delivery was, without a second copy. One without a usable id gets a key of our own.
    notification_id = bundle.get("id")
    if isinstance(notification_id, str) and FHIR_ID.fullmatch(notification_id):
        key = f"id|{notification_id}"
    else:
        key = f"own|{uuid.uuid4()}"
    if station.store.get(NOTIFICATIONS, key) is None:
        station.store.put(NOTIFICATIONS, key, bundle)
        station.store.keep_newest(NOTIFICATIONS, KEPT_NOTIFICATIONS)
    return fhir_response(transaction_response(bundle))


def _check_notifier(request: Request, *, consent_url: str) -> None:
    """The caller must present the certificate of the consent service the station subscribes
    at: one issued for that service's host, from the network CA (which TLS has checked)."""
    certificate = client_certificate(request)
    if certificate is None:
        detail = "a consent notification comes from the consent service over mutual TLS: no certificate was presented"
        raise HttpError(401, "Unauthorized", detail, code="notifier-certificate-missing")
    consent_host = urlsplit(consent_url).hostname
    names = certificate_names(certificate)
    if consent_host is None or consent_host not in names:
        detail = (
            f"only the consent service this station subscribes at ({consent_host or 'none configured'}) may "
            f"notify it; the certificate presented is for {', '.join(sorted(names)) or 'no host'}"
        )
        raise HttpError(403, "Forbidden", detail, code="notifier-not-consent-service")


def transaction_response(bundle: dict[str, Any]) -> dict[str, Any]:
    """The R4 answer to a transaction: one entry per entry of the request, in its order, each
    with the outcome of its request (the whole notification is kept, so every entry is taken)."""
    entries = bundle.get("entry") if isinstance(bundle.get("entry"), list) else []
    answer: dict[str, Any] = {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "transaction-response"}
    if entries:  # FHIR JSON has no empty arrays
        answer["entry"] = [{"response": {"status": "200 OK"}} for _ in entries]
    return answer


async def notifications(request: Request) -> Response:
    """The notifications kept, oldest first; `consent=<id>`: only those carrying that Consent."""
    kept = station_of(request).store.list(NOTIFICATIONS)
    consent = request.query_params.get("consent")
    if consent is not None:
        kept = [bundle for bundle in kept if consent in _consent_ids(bundle)]
    return JSONResponse(kept)


def _consent_ids(bundle: Any) -> set[str]:
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    resources = [e.get("resource") for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
    return {r["id"] for r in resources if isinstance(r, dict) and isinstance(r.get("id"), str)}


async def audit_entries(request: Request) -> Response:
    # The newest entries, optionally of one resource (e.g. one patient's record).
    station = station_of(request)
    matching = {k: v for k, v in request.query_params.items() if k in ("resource", "action", "requester_ura")}
    entries = station.audit.entries(int_param(request, "limit", 1000), **matching)
    return JSONResponse(entries[:-1] if station.faulty("audit-drops-newest") else entries)


async def audit_verify(request: Request) -> Response:
    """Replay the hash chain; with `seq` and `hash` (an entry's, kept outside the log, e.g. by an
    auditor), also whether the log still holds that entry unchanged."""
    station = station_of(request)
    verdict = audit_verdict(station.audit, _anchor(request))
    if station.faulty("audit-verify-always-valid"):
        verdict = {"valid": True, "entries": verdict["entries"]}
    return JSONResponse(verdict)


def audit_verdict(audit: AuditLog, anchor: tuple[int, str] | None) -> dict[str, Any]:
    """The chain replayed, and checked against the anchor if one is given: a log whose newest
    entries were cut off, or rewritten from some entry on, still verifies on its own (nothing in
    it anchors its end), but not against an anchor taken before."""
    verdict = audit.verify()
    if not verdict["valid"]:
        return {**verdict, "reason": "chain-broken"}
    if anchor is None:
        return verdict
    seq, anchored_hash = anchor
    held = audit.entries(1, seq=seq)
    if held and held[0].get("hash") == anchored_hash:
        return verdict
    reason = "anchor-mismatch" if held else "anchor-missing"
    return {**verdict, "valid": False, "broken_at": seq, "reason": reason}


def _anchor(request: Request) -> tuple[int, str] | None:
    seq, anchored_hash = request.query_params.get("seq"), request.query_params.get("hash")
    if seq is None and anchored_hash is None:
        return None
    if not (seq and seq.isdigit() and anchored_hash):
        detail = "an anchor is an entry's 'seq' (a whole number) and its 'hash', both"
        raise HttpError(400, "Bad Request", detail, code="anchor-invalid")
    return int(seq), anchored_hash


PUBLIC_ROUTES = [
    Route("/catalogue", published_catalogue),
    Route("/fhir/notifications/consent", consent_notification, methods=["POST"]),
]
INTERNAL_ROUTES = [
    Route("/internal/station/v1/patients", patients),
    Route("/internal/station/v1/audit", audit_entries),
    Route("/internal/station/v1/notifications", notifications),
    Route("/internal/station/v1/audit/verify", audit_verify),
]
