"""Secondary-use routes (nodes/station/secondary.py holds the run): analysis tasks under a data
permit, their results for the user who asked, and the permit audit a data access body reads."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nodes.common.http import HttpError, read_json_object, validation_detail
from nodes.common.resource import int_param
from nodes.station import analysis, secondary
from nodes.station.routes import station_of
from nodes.station.station import Station


async def create_task(request: Request) -> Response:
    station = station_of(request)
    token = await station.resources.authorise(request, {secondary.SECONDARY_SCOPE})
    body = await read_json_object(request)
    permit_token = body.get("permit")
    if not isinstance(permit_token, str) or not permit_token:
        if not station.faulty("task-without-permit"):
            detail = "'permit' must be the data permit credential (a JWT)"
            raise HttpError(400, "Bad Request", detail, code="permit-missing")
        permit_token = ""
    try:
        wanted = analysis.AnalysisRequest.model_validate({"analysis": body.get("analysis")}).analysis
    except ValidationError as exc:
        asked = body.get("analysis")
        if station.faulty("record-level-allowed") and isinstance(asked, dict) and asked.get("type") == "records":
            return JSONResponse(secondary.records(station, token, asked), status_code=201)
        offered = ", ".join(analysis.ANALYSIS_TYPES)
        detail = f"not an analysis this station offers (aggregates only: {offered}): {validation_detail(exc)}"
        raise HttpError(422, "Unprocessable Entity", detail, code="analysis-not-offered") from None
    task = secondary.new_task(token, wanted)
    requester = str(token.get("client_id", ""))
    status = await secondary.run(station, task, wanted=wanted, permit_token=permit_token, requester=requester)
    return JSONResponse(task, status_code=status)


def _owned_task(station: Station, token: dict[str, Any], task_id: str) -> dict[str, Any]:
    task = station.store.get(secondary.TASKS, task_id)
    # Someone else's task is as unknown as a task that does not exist.
    others_too = station.faulty("tasks-visible-to-others")
    if task is None or (task["client"] != token.get("client_id") and not others_too):
        raise HttpError(404, "Not Found", f"no task {task_id} of yours here", code="task-unknown")
    return task


async def read_task(request: Request) -> Response:
    station = station_of(request)
    token = await station.resources.authorise(request, {secondary.SECONDARY_SCOPE})
    return JSONResponse(_owned_task(station, token, request.path_params["id"]))


async def read_result(request: Request) -> Response:
    station = station_of(request)
    token = await station.resources.authorise(request, {secondary.SECONDARY_SCOPE})
    task = _owned_task(station, token, request.query_params.get("task_id", ""))
    return JSONResponse({"task_id": task["id"], "status": task["status"], "result": task.get("result")})


async def permit_audit(request: Request) -> Response:
    """A data access body sees the trail of the permits it issued, and nothing else."""
    station = station_of(request)
    token = await station.resources.authorise(request, {secondary.AUDIT_SCOPE})
    matching: dict[str, Any] = {"permit_issuer": token.get("client_id")}
    if station.faulty("audit-shows-other-bodies"):
        matching = {"action": "analysis"}
    if request.query_params.get("permit"):
        matching["permit"] = request.query_params["permit"]
    entries = station.audit.entries(int_param(request, "limit", 10000), **matching)
    return JSONResponse({"station": station.config.public_url, "entries": entries})


async def tasks(request: Request) -> Response:
    return JSONResponse(station_of(request).store.list(secondary.TASKS, int_param(request, "limit", 100)))


PUBLIC_ROUTES = [
    Route("/analysis/v1/task", create_task, methods=["POST"]),
    Route("/analysis/v1/task/{id}", read_task),
    Route("/analysis/v1/result", read_result),
    Route("/analysis/v1/audit", permit_audit),
]
INTERNAL_ROUTES = [Route("/internal/station/v1/tasks", tasks)]
