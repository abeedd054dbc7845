"""Health data access body: harvests the stations' catalogues, takes data access
applications through their states, issues permits as verifiable credentials through its own
trust node (and revokes them there), runs central analysis tasks over the stations a permit
covers, and queries the stations' audit trails for the permits it issued.

Data users reach the public API with an access token (scope `data-access`) from this body's
authorization server; the body's staff use the internal API."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nodes.common.app import NodeApps, build_apps
from nodes.common.config import NodeConfig
from nodes.common.http import HttpError, call_json, outbound_client, read_json_object, validation_detail
from nodes.common.issuer import OrganisationIssuer
from nodes.common.resource import ResourceServer
from nodes.common.storage import DocumentStore
from nodes.hdab import aggregate
from nodes.hdab.applications import (
    DECIDED_STATES,
    OPEN_STATES,
    ApplicationForm,
    TransitionRefused,
    incomplete,
    move,
    new_application,
    permit_subject,
    record,
)
from nodes.station.analysis import DEFAULT_THRESHOLD, AnalysisRequest
from nodes.station.catalogue import ANALYSIS_API
from nodes.station.permits import PERMIT_TYPE
from nodes.station.secondary import AUDIT_SCOPE, SECONDARY_SCOPE

APPLICANT_SCOPE = "data-access"
APPLICATIONS, DATASETS, CENTRAL_TASKS = "applications", "datasets", "central_tasks"
STATION_PEER_PREFIX = "station:"


class AccessBody:
    def __init__(self, config: NodeConfig):
        self.config = config
        self.store = DocumentStore(config.data_dir / "hdab.sqlite")
        self.client = outbound_client(config, timeout=30.0)
        self.resources = ResourceServer(config, self.client)
        self.issuer = OrganisationIssuer(config, self.client)
        self.subject = config.organisation.id  # bootstrap names the subject after the organisation
        self.threshold = int(config.settings.get("min_cell_size", DEFAULT_THRESHOLD))

    @property
    def stations(self) -> dict[str, str]:
        peers = self.config.peers.items()
        return {k.removeprefix(STATION_PEER_PREFIX): v for k, v in peers if k.startswith(STATION_PEER_PREFIX)}

    # --- catalogue ---------------------------------------------------------------------
    async def harvest(self) -> dict[str, Any]:
        """Read every station's HealthDCAT-AP catalogue; a station that fails is reported."""
        report: dict[str, Any] = {"harvested": [], "failed": []}
        for name, url in self.stations.items():
            try:
                catalogue = await call_json(self.client, "GET", f"{url}/catalogue", "the catalogue")
                datasets = _datasets_of(catalogue, name)
            except (HttpError, LookupError, TypeError, AttributeError, ValueError) as exc:
                report["failed"].append({"station": name, "reason": str(exc)})
                continue
            self.store.put_many(DATASETS, [(d["id"], d) for d in datasets])
            report["harvested"].append({"station": name, "datasets": [d["id"] for d in datasets]})
        report["datasets"] = self.store.count(DATASETS)
        return report

    # --- permits -----------------------------------------------------------------------
    async def issue_permit(self, application: dict[str, Any]) -> dict[str, Any]:
        return await self.issuer.issue(PERMIT_TYPE, permit_subject(application), application["validity_days"])

    # --- calling stations ----------------------------------------------------------------
    async def token_for(self, authorization_server: str, scope: str) -> str:
        url = f"{self.config.peers['trust_internal']}/internal/auth/v2/{self.subject}/request-service-access-token"
        body = {"authorization_server": authorization_server, "scope": scope, "token_type": "Bearer"}
        answer = await call_json(self.client, "POST", url, "an access token", failure_status=503, json=body)
        return str(answer.get("access_token", ""))

    async def station_call(
        self, dataset: dict[str, Any], scope: str, method: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        token = await self.token_for(dataset["authorization_server"], scope)
        headers = {"Authorization": f"Bearer {token}"}
        return await self.client.request(method, f"{dataset['analysis_endpoint']}{path}", headers=headers, **kwargs)

    async def close(self) -> None:
        await self.client.aclose()
        self.store.close()


def build(config: NodeConfig) -> NodeApps:
    body = AccessBody(config)

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        yield
        await body.close()

    async def applicant(request: Request) -> dict[str, Any]:
        token = await body.resources.authorise(request, {APPLICANT_SCOPE})
        return {
            "did": token.get("client_id"),
            "ura": token.get("organization_ura"),
            "name": token.get("organization_name"),
        }

    def application_of(application_id: str, who: dict[str, Any] | None = None) -> dict[str, Any]:
        application = body.store.get(APPLICATIONS, application_id)
        # Another user's application is as unknown as one that does not exist.
        if application is None or (who is not None and application["applicant"]["did"] != who["did"]):
            raise HttpError(404, "Not Found", f"no application {application_id}" + (" of yours" if who else ""))
        return application

    # --- public: data users -------------------------------------------------------------
    async def catalogue(_: Request) -> Response:
        return JSONResponse({"datasets": body.store.list(DATASETS)})

    async def submit(request: Request) -> Response:
        who = await applicant(request)
        try:
            form = ApplicationForm.model_validate(await read_json_object(request))
        except ValidationError as exc:
            raise HttpError(422, "Unprocessable Entity", validation_detail(exc)) from None
        application = new_application(form, who)
        body.store.put(APPLICATIONS, application["id"], application)
        location = {"Location": f"/hdab/v1/applications/{application['id']}"}
        return JSONResponse(application, status_code=201, headers=location)

    async def read_application(request: Request) -> Response:
        return JSONResponse(application_of(request.path_params["id"], await applicant(request)))

    async def read_permit(request: Request) -> Response:
        """The permit credential itself (a JWT, as a JSON string, as the Nuts API hands them out)."""
        application = application_of(request.path_params["id"], await applicant(request))
        if application["status"] not in DECIDED_STATES:
            raise HttpError(404, "Not Found", f"the application is {application['status']}: it has no valid permit")
        return JSONResponse(application["permit"]["credential"])

    async def withdraw(request: Request) -> Response:
        application = application_of(request.path_params["id"], await applicant(request))
        if application["status"] not in OPEN_STATES:
            raise HttpError(409, "Conflict", f"an application that is {application['status']} cannot be withdrawn")
        record(application, "withdrawn", "withdrawn by the applicant")
        body.store.put(APPLICATIONS, application["id"], application)
        return JSONResponse(application)

    async def central_task(request: Request) -> Response:
        """A task over every station the permit covers; their results combined."""
        who = await applicant(request)
        payload = await read_json_object(request)
        application = application_of(str(payload.get("application", "")), who)
        if application["status"] not in DECIDED_STATES:
            raise HttpError(403, "Forbidden", f"the application is {application['status']}: no analysis may run")
        try:
            AnalysisRequest.model_validate({"analysis": payload.get("analysis")})
        except ValidationError as exc:
            raise HttpError(422, "Unprocessable Entity", validation_detail(exc)) from None
        task = await _run_central(body, application, payload["analysis"])
        body.store.put(CENTRAL_TASKS, task["id"], task)
        return JSONResponse(task, status_code=201)

    # --- internal: the body's staff ------------------------------------------------------
    async def harvest(_: Request) -> Response:
        return JSONResponse(await body.harvest())

    async def list_applications(_: Request) -> Response:
        return JSONResponse(body.store.list(APPLICATIONS))

    async def transition(request: Request) -> Response:
        application = application_of(request.path_params["id"])
        decision = await read_json_object(request)
        to, reason = str(decision.get("to", "")), str(decision.get("reason", ""))
        try:
            if to == "assessment":
                missing = incomplete(application, {d["id"] for d in body.store.list(DATASETS)})
                if missing:
                    raise TransitionRefused("the application is incomplete: " + "; ".join(missing))
            move(application, to, reason)
        except TransitionRefused as exc:
            raise HttpError(409, "Conflict", str(exc)) from None
        if to in DECIDED_STATES:
            application["permit"] = await body.issue_permit(application)
        body.store.put(APPLICATIONS, application["id"], application)
        return JSONResponse(application)

    async def revoke(request: Request) -> Response:
        application = application_of(request.path_params["id"])
        if application["status"] not in DECIDED_STATES:
            raise HttpError(409, "Conflict", f"an application that is {application['status']} has no permit to revoke")
        reason = str((await read_json_object(request)).get("reason", ""))  # a bad request revokes nothing
        await body.issuer.revoke(application["permit"]["id"])
        record(application, "revoked", reason)
        body.store.put(APPLICATIONS, application["id"], application)
        return JSONResponse(application)

    async def audit(request: Request) -> Response:
        """What every station the permit covers logged under it."""
        application = application_of(request.path_params["id"])
        permit = application.get("permit")
        if permit is None:
            raise HttpError(409, "Conflict", "this application has no permit")
        trails = await asyncio.gather(
            *[_station_audit(body, dataset, permit["id"]) for dataset in _covered(body, application)]
        )
        return JSONResponse({"application": application["id"], "permit": permit["id"], "stations": trails})

    public = [
        Route("/hdab/v1/catalogue", catalogue),
        Route("/hdab/v1/applications", submit, methods=["POST"]),
        Route("/hdab/v1/applications/{id}", read_application),
        Route("/hdab/v1/applications/{id}/permit", read_permit),
        Route("/hdab/v1/applications/{id}/withdraw", withdraw, methods=["POST"]),
        Route("/hdab/v1/analyses", central_task, methods=["POST"]),
    ]
    internal = [
        Route("/internal/hdab/v1/harvest", harvest, methods=["POST"]),
        Route("/internal/hdab/v1/applications", list_applications),
        Route("/internal/hdab/v1/applications/{id}/transition", transition, methods=["POST"]),
        Route("/internal/hdab/v1/applications/{id}/revoke", revoke, methods=["POST"]),
        Route("/internal/hdab/v1/applications/{id}/audit", audit),
    ]
    return build_apps(config, public, internal, lifespan)


def _datasets_of(catalogue: dict[str, Any], station: str) -> list[dict[str, Any]]:
    """The harvested view of a HealthDCAT-AP catalogue: each dataset with the analysis
    service that serves it and where that service's tokens come from."""
    services = [s for s in _as_list(catalogue.get("dcat:service")) if ANALYSIS_API in _ids(s.get("dct:conformsTo"))]
    found = []
    for dataset in _as_list(catalogue["dcat:dataset"]):
        service = next((s for s in services if dataset["@id"] in _ids(s.get("dcat:servesDataset"))), None)
        if service is None:
            raise LookupError(f"the catalogue offers no analysis service ({ANALYSIS_API}) for {dataset['@id']}")
        found.append(
            {
                "id": dataset["@id"],
                "title": dataset.get("dct:title"),
                "station": station,
                "individuals": int(dataset["healthdcatap:numberOfUniqueIndividuals"]["@value"]),
                "access_rights": dataset.get("dct:accessRights", {}).get("@id"),
                "analysis_endpoint": _ids(service["dcat:endpointURL"]).pop(),
                "authorization_server": _ids(service["testbed:authorizationServer"]).pop(),
            }
        )
    return found


def _as_list(value: Any) -> list[Any]:
    """JSON-LD gives one value or a list of them alike."""
    return value if isinstance(value, list) else [] if value is None else [value]


def _ids(value: Any) -> set[str]:
    """The identifiers a JSON-LD value names: `{"@id": ...}` objects or plain strings."""
    return {v["@id"] if isinstance(v, dict) else v for v in _as_list(value) if isinstance(v, dict | str)}


def _covered(body: AccessBody, application: dict[str, Any]) -> list[dict[str, Any]]:
    datasets = [body.store.get(DATASETS, d) for d in application["datasets"]]
    return [d for d in datasets if d is not None]


async def _run_central(body: AccessBody, application: dict[str, Any], analysis: dict[str, Any]) -> dict[str, Any]:
    """Send the task to every covered station at once; combine what comes back completed."""
    covered = _covered(body, application)
    runs = await asyncio.gather(*[_station_run(body, application, d, analysis) for d in covered])
    completed = [r for r in runs if r["status"] == "completed"]
    task: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "application": application["id"],
        "analysis": analysis,
        # Each station's own result stays here: only the combined, checked result leaves.
        "runs": [{k: v for k, v in r.items() if k != "result"} for r in runs],
        "status": "completed" if completed and len(completed) == len(runs) else "failed",
    }
    if completed:
        task["result"] = aggregate.combine(analysis["type"], [r["result"] for r in completed], body.threshold)
    return task


async def _station_run(
    body: AccessBody, application: dict[str, Any], dataset: dict[str, Any], analysis: dict[str, Any]
) -> dict[str, Any]:
    run = {"station": dataset["station"], "dataset": dataset["id"]}
    request = {"permit": application["permit"]["credential"], "analysis": {**analysis, "dataset": dataset["id"]}}
    try:
        response = await body.station_call(dataset, SECONDARY_SCOPE, "POST", "/task", json=request)
        answer = response.json()
    except (HttpError, httpx.HTTPError, ValueError) as exc:
        return {**run, "status": "failed", "reason": f"the station could not be reached: {exc}"}
    if not isinstance(answer, dict):
        return {**run, "status": "failed", "reason": f"the station answered {response.status_code} without a task"}
    return {
        **run,
        "task": answer.get("id"),
        "status": answer.get("status", "failed"),
        "reason": answer.get("reason") or answer.get("detail"),
        "result": answer.get("result"),
    }


async def _station_audit(body: AccessBody, dataset: dict[str, Any], permit_id: str) -> dict[str, Any]:
    try:
        response = await body.station_call(dataset, AUDIT_SCOPE, "GET", "/audit", params={"permit": permit_id})
        answer = response.json()
        entries = answer["entries"]
    except (HttpError, httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        return {"station": dataset["station"], "error": f"the audit trail could not be read: {exc}"}
    return {"station": dataset["station"], "entries": entries}
