"""Secondary use at a data station: analysis tasks under a data permit, and the audit trail
a health data access body may query.

A task runs the way vantage6 reports it: pending -> active -> completed | failed, or
"not allowed" when the permit does not hold. The station checks the permit, removes people
who opted out of secondary use (EHDS art. 71), runs the aggregate analysis on its own rows and
suppresses small cells before anything leaves. Every task, allowed or not, is audited with the
permit it ran under."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nodes.common.http import HttpError, call_json, read_json_object, validation_detail
from nodes.common.resource import int_param
from nodes.station import analysis
from nodes.station.permits import PermitRefused, check_permit

if TYPE_CHECKING:
    from nodes.station.app import Station

SECONDARY_SCOPE = "secondary-use"
AUDIT_SCOPE = "permit-audit"
TASKS = "tasks"


def public_routes(station: Station) -> list[Route]:
    async def create_task(request: Request) -> Response:
        token = await station.resources.authorise(request, {SECONDARY_SCOPE})
        body = await read_json_object(request)
        permit_token = body.get("permit")
        if not isinstance(permit_token, str) or not permit_token:
            raise HttpError(400, "Bad Request", "'permit' must be the data permit credential (a JWT)")
        try:
            wanted = analysis.AnalysisRequest.model_validate({"analysis": body.get("analysis")}).analysis
        except ValidationError as exc:
            raise HttpError(
                422,
                "Unprocessable Entity",
                f"not an analysis this station offers (aggregates only: {', '.join(analysis.ANALYSIS_TYPES)}): "
                + validation_detail(exc),
            ) from None
        task = _new_task(token, wanted)
        status = await _run(station, task, wanted, permit_token, str(token.get("client_id", "")))
        return JSONResponse(task, status_code=status)

    def owned_task(request: Request, token: dict[str, Any], task_id: str) -> dict[str, Any]:
        task = station.store.get(TASKS, task_id)
        # Someone else's task is as unknown as a task that does not exist.
        if task is None or task["client"] != token.get("client_id"):
            raise HttpError(404, "Not Found", f"no task {task_id} of yours here")
        return task

    async def read_task(request: Request) -> Response:
        token = await station.resources.authorise(request, {SECONDARY_SCOPE})
        return JSONResponse(owned_task(request, token, request.path_params["id"]))

    async def read_result(request: Request) -> Response:
        token = await station.resources.authorise(request, {SECONDARY_SCOPE})
        task = owned_task(request, token, request.query_params.get("task_id", ""))
        return JSONResponse({"task_id": task["id"], "status": task["status"], "result": task.get("result")})

    async def permit_audit(request: Request) -> Response:
        """A data access body sees the trail of the permits it issued, and nothing else."""
        token = await station.resources.authorise(request, {AUDIT_SCOPE})
        matching: dict[str, Any] = {"permit_issuer": token.get("client_id")}
        if request.query_params.get("permit"):
            matching["permit"] = request.query_params["permit"]
        entries = station.audit.entries(int_param(request, "limit", 10000), **matching)
        return JSONResponse({"station": station.config.public_url, "entries": entries})

    return [
        Route("/analysis/v1/task", create_task, methods=["POST"]),
        Route("/analysis/v1/task/{id}", read_task),
        Route("/analysis/v1/result", read_result),
        Route("/analysis/v1/audit", permit_audit),
    ]


def internal_routes(station: Station) -> list[Route]:
    async def tasks(request: Request) -> Response:
        return JSONResponse(station.store.list(TASKS, int_param(request, "limit", 100)))

    return [Route("/internal/station/v1/tasks", tasks)]


def _new_task(token: dict[str, Any], wanted: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "client": token.get("client_id"),
        "requester_ura": token.get("organization_ura"),
        "analysis": wanted.model_dump(exclude_none=True),
        "status": "pending",
        "history": [{"status": "pending", "at": time.time()}],
    }


def _move(task: dict[str, Any], status: str, **details: Any) -> None:
    task["status"] = status
    task["history"].append({"status": status, "at": time.time()})
    task.update(details)


async def _run(station: Station, task: dict[str, Any], wanted: Any, permit_token: str, requester: str) -> int:
    """Take the task through its states; returns the HTTP status that answers its creation."""
    # The whole analysis, cohort included: a run of near-identical cohorts shows in the trail.
    audit: dict[str, Any] = {
        "action": "analysis",
        "task": task["id"],
        "client": requester,
        "analysis": task["analysis"],
    }
    status = 201
    try:
        permit = await check_permit(
            station.resources, permit_token, requester, wanted.dataset, wanted.type, {station.dataset}
        )
        audit.update(permit=permit.id, permit_issuer=permit.issuer, permit_verified=True, purpose=permit.purpose)
        _move(task, "active", permit=permit.id)
        rows = await _rows_without_opt_outs(station)
        result = analysis.run(wanted, rows, station.threshold)
        _move(task, "completed", result=result, threshold=station.threshold)
    except PermitRefused as exc:
        if exc.verified:  # a real permit, used out of its scope: on the permit's own trail
            audit.update(permit=exc.permit, permit_issuer=exc.issuer, permit_verified=True)
        else:  # only a claim: kept apart, so nobody can write into a body's trail by naming it
            audit.update(claimed_permit=exc.permit, claimed_issuer=exc.issuer, permit_verified=False)
        _move(task, "not allowed", reason=str(exc))
        status = 403
    except HttpError as exc:  # the consent service (opt-outs) or the trust node failed
        _move(task, "failed", reason=exc.detail or exc.title)
        status = 503
    station.store.put(TASKS, task["id"], task)
    station.audit.append(**audit, outcome=task["status"], reason=task.get("reason"))
    return status


async def _rows_without_opt_outs(station: Station) -> list[dict[str, Any]]:
    """Everyone's analysis row, minus the people the opt-out register names today."""
    rows = station.store.list("features")
    url = f"{station.config.peers['consent']}/consent/v1/optouts/check"
    answer = await call_json(
        station.client, "POST", url, "the opt-out register", failure_status=503, json={"bsns": [r["bsn"] for r in rows]}
    )
    opted_out = set(answer.get("opted_out") or [])
    return [r for r in rows if r["bsn"] not in opted_out]
