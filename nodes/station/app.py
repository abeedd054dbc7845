"""Data station: a FHIR R4 read API over synthetic BgZ data for primary use, open only to a
request with an active access token (introspected at the station's own trust node) and a
Permit from the consent service; aggregate analyses under a data permit for secondary use
(see secondary.py); and a HealthDCAT-AP catalogue. Every access, allowed or refused, goes
into the hash-chained audit log."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nodes.common.app import NodeApps, build_apps, render_problem
from nodes.common.audit import AuditLog
from nodes.common.config import NodeConfig
from nodes.common.http import HttpError, outbound_client, read_json_object
from nodes.common.resource import ResourceServer, int_param
from nodes.common.storage import DocumentStore
from nodes.station import catalogue, handover, secondary, synthetic
from nodes.station.analysis import DEFAULT_THRESHOLD
from nodes.station.fhir import bundle, capability_statement, operation_outcome

FHIR_JSON = "application/fhir+json"
DEFAULT_SCOPES = ["bgz", "bgz-sender", "bgz-receiver"]
DATA_CATEGORY = "medical"  # the consent data category this station's FHIR API serves
# BgZ resource types searchable by patient, besides Patient itself.
BY_PATIENT = ("Condition", "MedicationStatement", "AllergyIntolerance", "Observation")


class Station:
    def __init__(self, config: NodeConfig):
        self.config = config
        self.store = DocumentStore(config.data_dir / "station.sqlite")
        self.audit = AuditLog(self.store)
        self.client = outbound_client(config)
        self.resources = ResourceServer(config, self.client)
        self.scopes = set(config.settings.get("scopes", DEFAULT_SCOPES))
        self.threshold = int(config.settings.get("min_cell_size", DEFAULT_THRESHOLD))
        self.dataset = catalogue.dataset_id(config.public_url, str(config.settings.get("dataset", "care-records")))
        self._load_data(int(config.settings.get("patients", 1000)))

    def _load_data(self, count: int) -> None:
        if self.store.count("Patient"):
            return  # generated on first start; kept across restarts
        data = synthetic.generate(self.config.seed, self.config.name, count)
        self.store.put_many("Patient", [(p["id"], p) for p in data.patients])
        self.store.put_many("bsn_index", [(synthetic.bsn_of(p), {"id": p["id"]}) for p in data.patients])
        self.store.put_many("features", [(row["patient"], row) for row in data.features])
        for kind, resources in data.resources.items():
            self.store.put_many(kind, [(r["id"], r) for r in resources])
            of_patient: dict[str, list[str]] = {}
            for r in resources:
                subject = (r.get("subject") or r.get("patient"))["reference"].removeprefix("Patient/")
                of_patient.setdefault(subject, []).append(r["id"])
            self.store.put_many(f"{kind}_of", list(of_patient.items()))

    def catalogue(self) -> dict[str, Any]:
        return catalogue.catalogue(
            self.config.public_url,
            {"name": self.config.organisation.name, "ura": self.config.organisation.ura},
            self.dataset.rsplit("/", 1)[-1],
            self.store.count("Patient"),
            self.config.peers.get("authorization_server"),
            self.config.peers.get("hdab"),
        )

    async def consent(self, bsn: str, requester_ura: str) -> dict[str, Any]:
        url = f"{self.config.peers['consent']}/consent/v1/decision"
        question = {
            "bsn": bsn,
            "requester": requester_ura,
            "data_holder": self.config.organisation.ura,
            "data_category": DATA_CATEGORY,
        }
        try:
            response = await self.client.post(url, json=question)
        except httpx.HTTPError as exc:
            raise HttpError(
                503, "Service Unavailable", f"the consent service did not answer: {exc.__class__.__name__}"
            ) from None
        if 400 <= response.status_code < 500:  # the question itself was wrong, e.g. a malformed BSN
            detail = _detail_of(response)
            raise HttpError(400, "Bad Request", f"the consent service refused the question: {detail}")
        try:
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise HttpError(
                503, "Service Unavailable", f"the consent service failed: {exc.__class__.__name__}"
            ) from None

    async def close(self) -> None:
        await self.client.aclose()
        self.store.close()


def build(config: NodeConfig) -> NodeApps:
    station = Station(config)

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        yield
        await station.close()

    def fhir(
        read: Callable[[Request, dict[str, Any]], Awaitable[tuple[Any, str | None]]],
    ) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a FHIR read: authorise, ask consent for the patient it concerns, audit."""

        async def endpoint(request: Request) -> Response:
            audit = {
                "action": "read",
                "resource": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            }
            try:
                token = await station.resources.authorise(request, station.scopes)
                audit.update(
                    client=token.get("client_id"), requester_ura=token.get("organization_ura"), scope=token.get("scope")
                )
                resource, bsn = await read(request, token)
                if bsn is not None:
                    answer = await station.consent(bsn, str(token.get("organization_ura", "")))
                    audit.update(consent=answer.get("decision"), consent_id=answer.get("consent_id"))
                    if answer.get("decision") != "Permit":
                        raise HttpError(403, "Forbidden", f"no consent: {answer.get('reason', answer.get('decision'))}")
            except HttpError as exc:
                station.audit.append(**audit, outcome=exc.status, detail=exc.detail)
                return fhir_error(request, exc)
            station.audit.append(**audit, outcome=200)
            return JSONResponse(resource, media_type=FHIR_JSON)

        return endpoint

    async def read_patient(request: Request, _: dict[str, Any]) -> tuple[Any, str | None]:
        patient = _patient(station, request.path_params["id"])
        return patient, synthetic.bsn_of(patient)

    async def search_patient(request: Request, _: dict[str, Any]) -> tuple[Any, str | None]:
        identifier = request.query_params.get("identifier", "")
        system, _, bsn = identifier.rpartition("|")
        if system != synthetic.BSN_SYSTEM or not bsn:
            raise HttpError(400, "Bad Request", f"search by identifier={synthetic.BSN_SYSTEM}|<bsn> only")
        entry = station.store.get("bsn_index", bsn)
        patients = [station.store.get("Patient", entry["id"])] if entry else []
        return bundle(config.public_url, patients), bsn

    def search_by_patient(kind: str) -> Callable[[Request, dict[str, Any]], Awaitable[tuple[Any, str | None]]]:
        async def search(request: Request, _: dict[str, Any]) -> tuple[Any, str | None]:
            reference = request.query_params.get("patient", "")
            if not reference:
                raise HttpError(400, "Bad Request", f"search {kind} by patient=<id> only")
            patient = _patient(station, reference.removeprefix("Patient/"))
            ids = station.store.get(f"{kind}_of", patient["id"]) or []
            found = [station.store.get(kind, i) for i in ids]
            return bundle(config.public_url, found), synthetic.bsn_of(patient)

        return search

    async def metadata(_: Request) -> Response:
        return JSONResponse(capability_statement(config.public_url, BY_PATIENT), media_type=FHIR_JSON)

    async def published_catalogue(_: Request) -> Response:
        return JSONResponse(station.catalogue(), media_type="application/ld+json")

    async def patients(request: Request) -> Response:
        """Test patients for a harness: `limit` of them from `offset` on (a load run gives each
        simulated user its own)."""
        limit, offset = int_param(request, "limit", 10), int_param(request, "offset", 0)
        listed = list(station.store.iterate("Patient", limit + offset))[offset:]
        return JSONResponse(
            [
                {"id": p["id"], "bsn": synthetic.bsn_of(p), "name": p["name"][0], "birthDate": p["birthDate"]}
                for p in listed
            ]
        )

    async def consent_notification(request: Request) -> Response:
        """Where this organisation's subscriptions at the consent service deliver."""
        bundle = await read_json_object(request)
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "transaction":
            raise HttpError(400, "Bad Request", "a consent notification is a FHIR transaction Bundle")
        station.store.put("consent_notifications", str(uuid.uuid4()), bundle)  # our key: none is overwritten
        return JSONResponse({"resourceType": "Bundle", "type": "transaction-response"}, media_type=FHIR_JSON)

    async def notifications(_: Request) -> Response:
        return JSONResponse(station.store.list("consent_notifications"))

    async def audit_entries(request: Request) -> Response:
        # The newest entries, optionally of one resource (e.g. one patient's record).
        matching = {k: v for k, v in request.query_params.items() if k in ("resource", "action", "requester_ura")}
        return JSONResponse(station.audit.entries(int_param(request, "limit", 1000), **matching))

    async def audit_verify(_: Request) -> Response:
        return JSONResponse(station.audit.verify())

    public = [
        Route("/fhir/metadata", metadata),
        Route("/fhir/Patient/{id}", fhir(read_patient)),
        Route("/fhir/Patient", fhir(search_patient)),
        *[Route(f"/fhir/{kind}", fhir(search_by_patient(kind))) for kind in BY_PATIENT],
        Route("/catalogue", published_catalogue),
        *secondary.public_routes(station),
        *handover.public_routes(station),
        Route("/fhir/notifications/consent", consent_notification, methods=["POST"]),
    ]
    internal = [
        Route("/internal/station/v1/patients", patients),
        Route("/internal/station/v1/audit", audit_entries),
        Route("/internal/station/v1/notifications", notifications),
        Route("/internal/station/v1/audit/verify", audit_verify),
        *secondary.internal_routes(station),
        *handover.internal_routes(station),
    ]
    return build_apps(config, public, internal, lifespan, public_errors=fhir_error)


def fhir_error(request: Request, error: HttpError) -> Response:
    """Refusals on the FHIR API are OperationOutcomes; elsewhere problem documents."""
    if not request.url.path.startswith("/fhir"):
        return render_problem(request, error)
    return JSONResponse(
        operation_outcome(error.status, error.detail or error.title, error.code),
        status_code=error.status,
        headers=error.headers,
        media_type=FHIR_JSON,
    )


def _detail_of(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    return str(body.get("detail") or body.get("title") or response.status_code) if isinstance(body, dict) else ""


def _patient(station: Station, patient_id: str) -> dict[str, Any]:
    patient = station.store.get("Patient", patient_id)
    if patient is None:
        raise HttpError(404, "Not Found", f"Patient/{patient_id} is not known here")
    return patient
