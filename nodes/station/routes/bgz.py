"""The BgZ FHIR R4 read API (primary use): every read needs an active access token of a BgZ
scope and a Permit from the consent service for the patient it concerns, and is audited
whatever its outcome."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nodes.common.http import HttpError
from nodes.station import synthetic
from nodes.station.fhir import bundle, capability_statement
from nodes.station.routes import fhir_response, station_of
from nodes.station.station import FHIR_JSON, Station, fhir_error

# BgZ resource types searchable by patient, besides Patient itself.
BY_PATIENT = ("Condition", "MedicationStatement", "AllergyIntolerance", "Observation")
# A read: the resource (or bundle) to answer, and the BSN of the patient it concerns.
Read = Callable[[Station, Request], Awaitable[tuple[Any, str | None]]]


async def _answer(request: Request, read: Read) -> Response:
    """Authorise, read, ask consent for the patient it concerns, audit."""
    station = station_of(request)
    audit: dict[str, Any] = {
        "action": "read",
        "resource": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
    }
    try:
        token = await station.resources.authorise(request, station.scopes)
        audit.update(
            client=token.get("client_id"), requester_ura=token.get("organization_ura"), scope=token.get("scope")
        )
        resource, bsn = await read(station, request)
        if bsn is not None:
            answer = await station.consent(bsn, str(token.get("organization_ura", "")))
            audit.update(consent=answer.get("decision"), consent_id=answer.get("consent_id"))
            if answer.get("decision") != "Permit":
                detail = f"no consent: {answer.get('reason', answer.get('decision'))}"
                raise HttpError(403, "Forbidden", detail, code="consent-not-given")
    except HttpError as exc:
        if not station.faulty("audit-skips-refusals"):
            station.audit.append(**audit, outcome=exc.status, detail=exc.detail)
        return fhir_error(request, exc)
    station.audit.append(**audit, outcome=200)
    return fhir_response(resource)


async def _patient(station: Station, request: Request) -> tuple[Any, str | None]:
    patient = station.patient(request.path_params["id"])
    return patient, synthetic.bsn_of(patient)


async def _patients_by_bsn(station: Station, request: Request) -> tuple[Any, str | None]:
    identifier = request.query_params.get("identifier", "")
    system, _, bsn = identifier.rpartition("|")
    if system != synthetic.BSN_SYSTEM or not bsn:
        detail = f"search by identifier={synthetic.BSN_SYSTEM}|<bsn> only"
        raise HttpError(400, "Bad Request", detail, code="search-unsupported")
    entry = station.store.get("bsn_index", bsn)
    patient = station.store.get("Patient", entry["id"]) if entry else None
    patients = [patient] if patient else []
    return bundle(station.config.public_url, patients), bsn


def _by_patient(kind: str) -> Read:
    async def search(station: Station, request: Request) -> tuple[Any, str | None]:
        reference = request.query_params.get("patient", "")
        if not reference:
            raise HttpError(400, "Bad Request", f"search {kind} by patient=<id> only", code="search-unsupported")
        patient = station.patient(reference.removeprefix("Patient/"))
        if station.faulty("search-ignores-patient"):
            found = list(station.store.iterate(kind, 50))
        else:
            found = [station.store.get(kind, i) for i in station.store.get(f"{kind}_of", patient["id"]) or []]
        return bundle(station.config.public_url, found), synthetic.bsn_of(patient)

    return search


async def read_patient(request: Request) -> Response:
    return await _answer(request, _patient)


async def search_patient(request: Request) -> Response:
    return await _answer(request, _patients_by_bsn)


def _search_route(kind: str) -> Route:
    read = _by_patient(kind)

    async def search(request: Request) -> Response:
        return await _answer(request, read)

    return Route(f"/fhir/{kind}", search)


async def metadata(request: Request) -> Response:
    station = station_of(request)
    statement = capability_statement(station.config.public_url, BY_PATIENT)
    if station.faulty("capability-without-date"):
        del statement["date"]
    return JSONResponse(statement, media_type=FHIR_JSON)


ROUTES = [
    Route("/fhir/metadata", metadata),
    Route("/fhir/Patient/{id}", read_patient),
    Route("/fhir/Patient", search_patient),
    *[_search_route(kind) for kind in BY_PATIENT],
]
