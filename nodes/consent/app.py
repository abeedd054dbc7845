"""Consent service (Mitz-like): citizens' consent choices, withdrawal with history kept,
and the question "may requester X see data category C of citizen P held by Y"."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nodes.common import xmldsig
from nodes.common.app import NodeApps, build_apps
from nodes.common.bsn import is_valid_bsn
from nodes.common.config import NodeConfig
from nodes.common.http import HttpError, outbound_client, read_body, read_json, read_json_object
from nodes.common.peer import client_certificate
from nodes.common.storage import DocumentStore
from nodes.consent import subscriptions, xacml
from nodes.consent.model import ANY, DIMENSIONS, decide, question_of

CONSENTS = "consents"
CHOICES_BY_BSN = "choices_by_bsn"  # bsn|choice id -> the choice's id: the index questions use
LOCATIONS = "locations"  # bsn|data holder -> which holder holds data about which citizen
OPT_OUTS = "opt_outs"  # bsn -> an objection to secondary use
SOAP_XML = "application/soap+xml"
REMEMBERED_CITIZENS = 10_000


def build(config: NodeConfig) -> NodeApps:
    store = DocumentStore(config.data_dir / "consent.sqlite")
    client = outbound_client(config)
    signatures = xmldsig.SignatureVerifier(config.tls.ca)
    deliveries: set[asyncio.Task[bool]] = set()  # notifications under way (kept from the collector)

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        yield
        for task in deliveries:
            task.cancel()
        await client.aclose()

    def notify(choice: dict[str, Any]) -> None:
        """Tell every subscriber the change concerns, in the background (with retries)."""
        for subscription in subscriptions.concerned(store, choice):
            bundle = subscriptions.notification(subscription, choice)
            endpoint = subscription["channel"]["endpoint"]
            task = asyncio.create_task(subscriptions.deliver(subscriptions.http_sender(client), endpoint, bundle))
            deliveries.add(task)
            task.add_done_callback(deliveries.discard)

    # A citizen's choices are read for every question and change seldom: kept in memory once
    # read, and forgotten when one of them changes (storage stays the record; a restart reads it).
    remembered: dict[str, list[dict[str, Any]]] = {}

    def keep(choice: dict[str, Any]) -> None:
        store.put(CONSENTS, choice["id"], choice)
        store.put(CHOICES_BY_BSN, f"{choice['bsn']}|{choice['id']}", {"id": choice["id"]})
        remembered.pop(choice["bsn"], None)

    def choices_of(bsn: str) -> list[dict[str, Any]]:
        """Every choice of one citizen, found through the index rather than by reading all."""
        found = remembered.get(bsn)
        if found is None:
            found = [store.get(CONSENTS, entry["id"]) for entry in store.iterate(CHOICES_BY_BSN, key_prefix=f"{bsn}|")]
            if len(remembered) >= REMEMBERED_CITIZENS:
                remembered.clear()  # a bound on memory; refilled as questions come
            remembered[bsn] = found
        return found

    async def register(request: Request) -> Response:
        body = await read_json_object(request)
        bsn = _bsn(body)
        decision = body.get("decision", "permit")
        if decision not in ("permit", "deny"):
            raise HttpError(422, "Unprocessable Entity", "'decision' must be 'permit' or 'deny'")
        choice = {
            "id": str(uuid.uuid4()),
            "bsn": bsn,
            **{d: _dimension(body, d, default=ANY) for d in DIMENSIONS},
            "decision": decision,
            "status": "active",
            "registered": time.time(),
        }
        keep(choice)
        notify(choice)
        return JSONResponse(choice, status_code=201)

    async def list_consents(request: Request) -> Response:
        bsn = request.query_params.get("bsn")
        if bsn is None:
            raise HttpError(400, "Bad Request", "query parameter 'bsn' is required")
        return JSONResponse(choices_of(_valid(bsn)))

    def stored(request: Request) -> dict[str, Any]:
        choice = store.get(CONSENTS, request.path_params["id"])
        if choice is None:
            raise HttpError(404, "Not Found", f"no consent {request.path_params['id']}")
        return choice

    async def read(request: Request) -> Response:
        return JSONResponse(stored(request))

    async def withdraw(request: Request) -> Response:
        choice = stored(request)
        if choice["status"] != "active":
            raise HttpError(409, "Conflict", "this consent was withdrawn before")
        choice.update(status="withdrawn", withdrawn=time.time())
        keep(choice)  # kept: history is part of the record
        notify(choice)
        return JSONResponse(choice)

    async def decision(request: Request) -> Response:
        body = await read_json_object(request)
        bsn = _bsn(body)
        question = question_of(
            data_holder={_dimension(body, "data_holder"), _optional(body, "data_holder_category")},
            requester={_dimension(body, "requester"), _optional(body, "requester_category")},
            data_category=_dimension(body, "data_category"),
        )
        return JSONResponse(decide(choices_of(bsn), question).as_json())

    async def closed_question(request: Request) -> Response:
        """Mitz's closed question: SOAP 1.2 + XACML 3.0. A malformed query, or one not signed
        by this connection's TLS client, is a SOAP fault, never a Permit."""
        relates_to = ""
        tls_client = client_certificate(request)
        try:
            query = xacml.parse_query(await read_body(request), lambda signed: signatures.verified(signed, tls_client))
            relates_to = query.message_id
            if not is_valid_bsn(query.bsn):
                raise xacml.SoapFault("Sender", f"{query.bsn!r} is not a valid BSN (eleven-test)")
            if query.purpose != xacml.TREATMENT:
                decision = "NotApplicable"  # this service answers for treatment only
            else:
                question = question_of(
                    data_holder={query.holder_ura, query.holder_category},
                    requester={query.requester_ura, query.requester_category},
                    data_category=query.data_category,
                )
                try:
                    decision = decide(choices_of(query.bsn), question).decision
                except Exception:  # the service could not decide: XACML's answer for that
                    logging.getLogger("consent").exception("closed question could not be decided")
                    decision = "Indeterminate"
        except xacml.SoapFault as error:
            return Response(xacml.fault(error, relates_to), status_code=error.http_status, media_type=SOAP_XML)
        except HttpError as error:  # e.g. a body over the size limit
            fault = xacml.SoapFault("Sender", error.detail or error.title)
            return Response(xacml.fault(fault), status_code=fault.http_status, media_type=SOAP_XML)
        return Response(xacml.response(decision, relates_to), media_type=SOAP_XML)

    # --- open question (localisation) ---------------------------------------------------------
    async def register_location(request: Request) -> Response:
        """A data holder announces that it holds data about a citizen."""
        body = await read_json_object(request)
        location = {
            "bsn": _bsn(body),
            "data_holder": _dimension(body, "data_holder"),
            "data_holder_category": _optional(body, "data_holder_category") or "",
        }
        store.put(LOCATIONS, f"{location['bsn']}|{location['data_holder']}", location)
        return JSONResponse(location, status_code=201)

    async def open_question(request: Request) -> Response:
        """Which data holders hold data about this citizen that this requester may see."""
        body = await read_json_object(request)
        bsn = _bsn(body)
        requester = {_dimension(body, "requester"), _optional(body, "requester_category")}
        category = _dimension(body, "data_category")
        choices = choices_of(bsn)
        permitted = [
            {"data_holder": loc["data_holder"], "data_holder_category": loc["data_holder_category"]}
            for loc in store.iterate(LOCATIONS, key_prefix=f"{bsn}|")
            if decide(
                choices,
                question_of(
                    data_holder={loc["data_holder"], loc["data_holder_category"]},
                    requester=requester,
                    data_category=category,
                ),
            ).decision
            == "Permit"
        ]
        return JSONResponse({"data_holders": permitted})

    # --- opt-out register for secondary use (EHDS, article 71) -----------------------------
    async def opt_out(request: Request) -> Response:
        bsn = _bsn(await read_json_object(request))
        store.put(OPT_OUTS, bsn, {"bsn": bsn, "registered": time.time()})
        return JSONResponse({"bsn": bsn, "opted_out": True}, status_code=201)

    async def opt_back_in(request: Request) -> Response:
        bsn = _valid(request.path_params["bsn"])
        if not store.delete(OPT_OUTS, bsn):
            raise HttpError(404, "Not Found", "this citizen has not opted out")
        return JSONResponse({"bsn": bsn, "opted_out": False})

    async def opt_out_check(request: Request) -> Response:
        """For data stations: which of these citizens opted out of secondary use."""
        body = await read_json_object(request)
        bsns = body.get("bsns")
        if not isinstance(bsns, list) or not all(isinstance(b, str) for b in bsns):
            raise HttpError(422, "Unprocessable Entity", "'bsns' must be a list of BSN strings")
        return JSONResponse({"opted_out": [b for b in bsns if store.get(OPT_OUTS, b) is not None]})

    async def subscribe(request: Request) -> Response:
        created = subscriptions.create(store, await read_json(request))
        return JSONResponse(created, status_code=201, media_type="application/fhir+json")

    public = [
        Route("/abonnementen/fhir", subscribe, methods=["POST"]),
        Route("/consent/v1/decision", decision, methods=["POST"]),
        Route("/consent/v1/localisation", open_question, methods=["POST"]),
        Route("/consent/v1/optouts/check", opt_out_check, methods=["POST"]),
        Route("/geslotenautorisatievraag/xacml3", closed_question, methods=["POST"]),
    ]
    internal = [
        Route("/internal/consent/v1/consents", register, methods=["POST"]),
        Route("/internal/consent/v1/localisations", register_location, methods=["POST"]),
        Route("/internal/consent/v1/optouts", opt_out, methods=["POST"]),
        Route("/internal/consent/v1/optouts/{bsn}", opt_back_in, methods=["DELETE"]),
        Route("/internal/consent/v1/consents", list_consents, methods=["GET"]),
        Route("/internal/consent/v1/consents/{id}", read, methods=["GET"]),
        Route("/internal/consent/v1/consents/{id}", withdraw, methods=["DELETE"]),
    ]
    # Mitz answers only parties with a certificate: the public listener asks for one too.
    return build_apps(config, public, internal, lifespan, public_client_certificates=True)


def _bsn(body: dict[str, Any]) -> str:
    value = body.get("bsn")
    if not isinstance(value, str):
        raise HttpError(422, "Unprocessable Entity", "'bsn' is required (a string of nine digits)")
    return _valid(value)


def _valid(bsn: str) -> str:
    if not is_valid_bsn(bsn):
        raise HttpError(422, "Unprocessable Entity", f"{bsn!r} is not a valid BSN (eleven-test)")
    return bsn


def _optional(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise HttpError(422, "Unprocessable Entity", f"'{name}' must be a string")
    return value


def _dimension(body: dict[str, Any], name: str, default: str | None = None) -> str:
    value = body.get(name, default)
    if not isinstance(value, str) or not value:
        raise HttpError(422, "Unprocessable Entity", f"'{name}' is required (a non-empty string, or '*' for any)")
    return value
