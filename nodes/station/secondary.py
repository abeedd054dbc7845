"""Secondary use at a data station: analysis tasks under a data permit, and the audit trail
a health data access body may query.

A task runs the way vantage6 reports it: pending -> active -> completed | failed, or
"not allowed" when the permit does not hold. The station checks the permit, removes people
who opted out of secondary use (EHDS art. 71), runs the aggregate analysis on its own rows and
suppresses small cells before anything leaves. Every task, allowed or not, is audited with the
permit it ran under. The routes are in routes/secondary.py."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from nodes.common.http import HttpError, call_json
from nodes.station import analysis
from nodes.station.permits import PermitRefused, check_permit

if TYPE_CHECKING:
    from nodes.station.station import Station

SECONDARY_SCOPE = "secondary-use"
AUDIT_SCOPE = "permit-audit"
TASKS = "tasks"
# A permit rule (its refusal) -> the defects that let a permit through that breaks it.
PERMIT_FAULTS = {
    "permit-invalid": ("permit-not-verified",),
    "permit-untrusted": ("permit-not-verified",),
    "permit-expired": ("permit-not-verified", "permit-expiry-unchecked"),
    "permit-revoked": ("permit-not-verified", "permit-revocation-unchecked"),
    "permit-other-user": ("permit-holder-not-checked",),
    "dataset-not-permitted": ("permit-datasets-not-checked",),
    "analysis-not-permitted": ("permit-analyses-not-checked",),
}


def new_task(token: dict[str, Any], wanted: Any) -> dict[str, Any]:
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


async def run(station: Station, task: dict[str, Any], *, wanted: Any, permit_token: str, requester: str) -> int:
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
        if permit_token:
            permit = await check_permit(
                station.resources,
                permit_token,
                requester=requester,
                wanted=(wanted.dataset, wanted.type),
                own_datasets={station.dataset},
                overlooks=lambda rule: any(station.faulty(fault) for fault in PERMIT_FAULTS.get(rule, ())),
            )
            audit.update(permit=permit.id, permit_issuer=permit.issuer, permit_verified=True, purpose=permit.purpose)
        _move(task, "active", permit=permit.id if permit_token else None)  # no permit: a faulty variant only
        rows = await _rows_without_opt_outs(station)
        threshold = 1 if station.faulty("small-cells-not-suppressed") else station.threshold
        result = analysis.run(wanted, rows, threshold)
        _move(task, "completed", result=result, threshold=station.threshold)
    except PermitRefused as exc:
        if exc.verified:  # a real permit, used out of its scope: on the permit's own trail
            audit.update(permit=exc.permit, permit_issuer=exc.issuer, permit_verified=True)
        else:  # only a claim: kept apart, so nobody can write into a body's trail by naming it
            audit.update(claimed_permit=exc.permit, claimed_issuer=exc.issuer, permit_verified=False)
        _move(task, "not allowed", reason=str(exc), refusal=exc.rule)
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
        station.client,
        "POST",
        url,
        what="the opt-out register",
        failure_status=503,
        json={"bsns": [r["bsn"] for r in rows]},
    )
    opted_out = set() if station.faulty("opt-outs-ignored") else set(answer.get("opted_out") or [])
    return [r for r in rows if r["bsn"] not in opted_out]


def records(station: Station, token: dict[str, Any], analysis_request: Any) -> dict[str, Any]:
    """What the faulty variant that allows record-level analyses answers: rows of data."""
    wanted = analysis_request if isinstance(analysis_request, dict) else {}
    variables = [str(v) for v in wanted.get("variables") or []]
    rows = [{v: row.get(v) for v in variables} for row in station.store.list("features", 20)]
    task: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "client": token.get("client_id"),
        "analysis": wanted,
        "status": "completed",
        "history": [{"status": "completed", "at": time.time()}],
        "result": {"rows": rows},
    }
    station.store.put(TASKS, task["id"], task)
    return task
