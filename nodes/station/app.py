"""Data station: a FHIR R4 read API over synthetic data, open only to a request with an
active access token (introspected at the station's own trust node) and a Permit from the
consent service. Every access, allowed or refused, goes into the hash-chained audit log."""

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
from nodes.common.http import HttpError, call_json, outbound_client, read_json_object
from nodes.common.storage import DocumentStore
from nodes.station import synthetic
from nodes.station.fhir import bundle, capability_statement, operation_outcome

FHIR_JSON = "application/fhir+json"
CHALLENGE = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
DPOP_CHALLENGE = {"WWW-Authenticate": 'DPoP error="invalid_dpop_proof", algs="ES256"'}
DEFAULT_SCOPES = ["bgz", "bgz-sender", "bgz-receiver"]
DATA_CATEGORY = "medical"  # the consent data category this station's FHIR API serves


class Station:
    def __init__(self, config: NodeConfig):
        self.config = config
        self.store = DocumentStore(config.data_dir / "station.sqlite")
        self.audit = AuditLog(self.store)
        self.client = outbound_client(config)
        self.scopes = set(config.settings.get("scopes", DEFAULT_SCOPES))
        self._load_data(int(config.settings.get("patients", 1000)))

    def _load_data(self, count: int) -> None:
        if self.store.count("Patient"):
            return  # generated on first start; kept across restarts
        patients, conditions = synthetic.generate(self.config.seed, self.config.name, count)
        self.store.put_many("Patient", [(p["id"], p) for p in patients])
        self.store.put_many("bsn_index", [(synthetic.bsn_of(p), {"id": p["id"]}) for p in patients])
        self.store.put_many("Condition", [(c["id"], c) for c in conditions])
        by_patient: dict[str, list[str]] = {}
        for c in conditions:
            by_patient.setdefault(c["subject"]["reference"].removeprefix("Patient/"), []).append(c["id"])
        self.store.put_many("conditions_of", list(by_patient.items()))

    async def introspect(self, token: str) -> dict[str, Any]:
        return await self._ask_trust_node(
            "/internal/auth/v2/accesstoken/introspect", "token introspection", data={"token": token}
        )

    async def validate_proof(self, proof: str, method: str, url: str, jkt: str, token: str) -> dict[str, Any]:
        """Ask the organisation's trust node whether a DPoP proof holds (the Nuts way)."""
        body = {"dpop_proof": proof, "method": method, "url": url, "thumbprint": jkt, "token": token}
        return await self._ask_trust_node("/internal/auth/v2/dpop/validate", "DPoP validation", json=body)

    async def _ask_trust_node(self, path: str, what: str, **kwargs: Any) -> dict[str, Any]:
        """A call to the organisation's trust node; if it cannot answer, neither can we (503)."""
        url = f"{self.config.peers['trust_internal']}{path}"
        return await call_json(self.client, "POST", url, what, failure_status=503, **kwargs)

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
                token = await _authorise(station, request)
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

    async def search_condition(request: Request, _: dict[str, Any]) -> tuple[Any, str | None]:
        reference = request.query_params.get("patient", "")
        if not reference:
            raise HttpError(400, "Bad Request", "search Condition by patient=<id> only")
        patient = _patient(station, reference.removeprefix("Patient/"))
        ids = station.store.get("conditions_of", patient["id"]) or []
        return bundle(config.public_url, [station.store.get("Condition", i) for i in ids]), synthetic.bsn_of(patient)

    async def metadata(_: Request) -> Response:
        return JSONResponse(capability_statement(config.public_url), media_type=FHIR_JSON)

    async def patients(request: Request) -> Response:
        limit = _int_param(request, "limit", 10)
        return JSONResponse(
            [
                {"id": p["id"], "bsn": synthetic.bsn_of(p), "name": p["name"][0], "birthDate": p["birthDate"]}
                for p in station.store.iterate("Patient", limit)
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
        return JSONResponse(station.audit.entries(_int_param(request, "limit", 1000)))

    async def audit_verify(_: Request) -> Response:
        return JSONResponse(station.audit.verify())

    public = [
        Route("/fhir/metadata", metadata),
        Route("/fhir/Patient/{id}", fhir(read_patient)),
        Route("/fhir/Patient", fhir(search_patient)),
        Route("/fhir/Condition", fhir(search_condition)),
        Route("/fhir/notifications/consent", consent_notification, methods=["POST"]),
    ]
    internal = [
        Route("/internal/station/v1/patients", patients),
        Route("/internal/station/v1/audit", audit_entries),
        Route("/internal/station/v1/notifications", notifications),
        Route("/internal/station/v1/audit/verify", audit_verify),
    ]
    return build_apps(config, public, internal, lifespan, public_errors=fhir_error)


async def _authorise(station: Station, request: Request) -> dict[str, Any]:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    scheme, token = scheme.lower(), token.strip()
    if scheme not in ("bearer", "dpop") or not token:
        detail = "an access token is required (Authorization: Bearer or DPoP)"
        raise HttpError(401, "Unauthorized", detail, headers=CHALLENGE)
    answer = await station.introspect(token)
    if not answer.get("active"):
        raise HttpError(401, "Unauthorized", "the access token is not active", headers=CHALLENGE)
    await _check_binding(station, request, scheme, token, answer)
    expected_issuer = station.config.peers.get("authorization_server")
    if expected_issuer and answer.get("iss") != expected_issuer:
        # The trust node may serve several subjects; only this organisation's tokens count.
        raise HttpError(401, "Unauthorized", "the access token was issued for another organisation", headers=CHALLENGE)
    if answer.get("scope") not in station.scopes:
        raise HttpError(403, "Forbidden", f"scope {answer.get('scope')!r} does not give access to this station")
    return answer


async def _check_binding(station: Station, request: Request, scheme: str, token: str, answer: dict[str, Any]) -> None:
    """A DPoP-bound token (cnf.jkt) is usable only with the DPoP scheme and a fresh proof for
    this very request, signed by the bound key (RFC 9449, section 7); a Bearer token only
    with the Bearer scheme."""
    jkt = (answer.get("cnf") or {}).get("jkt")
    if jkt is None:
        if scheme == "dpop":
            raise HttpError(401, "Unauthorized", "this token is not DPoP-bound: use Bearer", headers=CHALLENGE)
        return
    if scheme != "dpop":
        raise HttpError(401, "Unauthorized", "this token is DPoP-bound: use the DPoP scheme", headers=DPOP_CHALLENGE)
    proofs = request.headers.getlist("dpop")
    if len(proofs) != 1:
        detail = "exactly one DPoP proof is required with this token"
        raise HttpError(401, "Unauthorized", detail, headers=DPOP_CHALLENGE)
    # The URL the proof must name is the one this station serves, not what the client's Host
    # header claims.
    url = station.config.public_url + request.url.path
    verdict = await station.validate_proof(proofs[0], request.method, url, jkt, token)
    if not verdict.get("valid"):
        detail = f"the DPoP proof is not valid: {verdict.get('reason', 'no reason given')}"
        raise HttpError(401, "Unauthorized", detail, headers=DPOP_CHALLENGE)


def fhir_error(request: Request, error: HttpError) -> Response:
    """Refusals on the FHIR API are OperationOutcomes; elsewhere problem documents."""
    if not request.url.path.startswith("/fhir"):
        return render_problem(request, error)
    return JSONResponse(
        operation_outcome(error.status, error.detail or error.title),
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


def _int_param(request: Request, name: str, default: int) -> int:
    value = request.query_params.get(name, str(default))
    if not value.isdigit():
        raise HttpError(400, "Bad Request", f"query parameter {name!r} must be a whole number")
    return int(value)
