"""The public API of data users, behind an access token of scope `data-access` from this
body's authorization server: the catalogue, applications, their permits and central analyses."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nodes.common.http import HttpError, read_json_object, validation_detail
from nodes.hdab.applications import new_application, record
from nodes.hdab.body import APPLICANT_SCOPE, APPLICATIONS, CENTRAL_TASKS, CLOSED_STATES, DATASETS, AccessBody
from nodes.hdab.catalogue import published
from nodes.hdab.routes import application_of, body_of
from nodes.station.analysis import AnalysisRequest
from nodes.trust.policy import DEFAULT_SCOPES


async def _applicant(body: AccessBody, request: Request) -> dict[str, Any]:
    scopes = set(DEFAULT_SCOPES) if body.faulty("token-scope-not-checked") else {APPLICANT_SCOPE}
    token = await body.resources.authorise(request, scopes)
    return {"did": token.get("client_id"), "ura": token.get("organization_ura"), "name": token.get("organization_name")}


async def _owned(request: Request, fault: str, application_id: str | None = None) -> dict[str, Any]:
    """The caller's own application (`fault`: the variant that forgets whose it is)."""
    body = body_of(request)
    who = await _applicant(body, request)
    wanted = request.path_params["id"] if application_id is None else application_id
    return application_of(body, wanted, None if body.faulty(fault) else who)


async def catalogue(request: Request) -> Response:
    """The DCAT-AP catalogue of the harvested datasets, open to anyone (as the stations' are)."""
    body = body_of(request)
    organisation = {"name": body.config.organisation.name}
    records = body.store.list(DATASETS)
    if body.faulty("catalogue-flat-records"):
        return JSONResponse({"datasets": records})
    at_stations = body.faulty("catalogue-points-at-stations")
    document = published(records, public_url=body.config.public_url, body=organisation, at_stations=at_stations)
    return JSONResponse(document, media_type="application/ld+json")


async def submit(request: Request) -> Response:
    body = body_of(request)
    who = await _applicant(body, request)
    form = body.form(await read_json_object(request))
    application = new_application(form, who)
    body.store.put(APPLICATIONS, application["id"], application)
    location = {"Location": f"/hdab/v1/applications/{application['id']}"}
    return JSONResponse(application, status_code=201, headers=location)


def _as_applicant_sees_it(body: AccessBody, application: dict[str, Any]) -> dict[str, Any]:
    """The application without its permit credential: the credential is handed out only by
    `read_permit`, under its rules (a data request's stays with the body)."""
    permit = application.get("permit")
    if permit is None or body.faulty("application-read-carries-credential"):
        return application
    return {**application, "permit": {k: v for k, v in permit.items() if k != "credential"}}


async def read_application(request: Request) -> Response:
    application = await _owned(request, "applications-readable-by-others")
    return JSONResponse(_as_applicant_sees_it(body_of(request), application))


async def read_permit(request: Request) -> Response:
    """The permit credential itself (a JWT, as a JSON string, as the Nuts API hands them out)."""
    application = await _owned(request, "permit-readable-by-others")
    if not body_of(request).hands_out_permit(application):
        status, kind = application["status"], application["kind"]
        detail = (
            "a data request is answered with statistics through the body: it has no permit for its user"
            if kind == "data-request"
            else f"the application is {status}: it has no valid permit"
        )
        raise HttpError(404, "Not Found", detail, code="no-valid-permit", state=status)
    return JSONResponse(application["permit"]["credential"])


async def withdraw(request: Request) -> Response:
    body = body_of(request)
    application = await _owned(request, "withdraw-by-others")
    status = application["status"]
    if not body.withdrawable(application):
        code = "application-closed" if status in CLOSED_STATES else "application-decided"
        raise HttpError(409, "Conflict", f"an application that is {status} cannot be withdrawn", code=code)
    record(application, "withdrawn", "withdrawn by the applicant")
    if not body.faulty("withdrawal-not-stored"):
        body.store.put(APPLICATIONS, application["id"], application)
    return JSONResponse(_as_applicant_sees_it(body, application))


async def central_task(request: Request) -> Response:
    """A task over every station the permit covers; their results combined."""
    body = body_of(request)
    payload = await read_json_object(request)
    application = await _owned(request, "analysis-for-others", str(payload.get("application", "")))
    if not body.analysable(application):
        detail = f"the application is {application['status']}: no analysis may run"
        raise HttpError(403, "Forbidden", detail, code="no-valid-permit", state=application["status"])
    try:
        AnalysisRequest.model_validate({"analysis": payload.get("analysis")})
    except ValidationError as exc:
        raise HttpError(422, "Unprocessable Entity", validation_detail(exc), code="analysis-not-offered") from None
    task = await body.run_central(application, payload["analysis"])
    body.store.put(CENTRAL_TASKS, task["id"], task)
    return JSONResponse(task, status_code=201)


ROUTES = [
    Route("/hdab/v1/catalogue", catalogue),
    Route("/hdab/v1/applications", submit, methods=["POST"]),
    Route("/hdab/v1/applications/{id}", read_application),
    Route("/hdab/v1/applications/{id}/permit", read_permit),
    Route("/hdab/v1/applications/{id}/withdraw", withdraw, methods=["POST"]),
    Route("/hdab/v1/analyses", central_task, methods=["POST"]),
]
