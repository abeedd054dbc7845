"""eOverdracht, the nursing handover as a notified pull (Nuts bolt "eOverdracht"):

- the sending organisation's system publishes a Task for the receiving organisation, with the
  transfer Composition as its focus (internal API here);
- the sender notifies the receiver: an empty POST to the receiver's notification endpoint with
  a token of scope eOverdracht-receiver; the receiver answers 202;
- the receiver gets a token of scope eOverdracht-sender from the sender and reads the Task and
  the Composition; it may do so only while it owns the Task (the URA in its token is the
  Task's owner) and the Task is still open;
- the receiver sets Task.status to completed (or rejected), after which its access ends.

The same station plays either side, as every care organisation does in practice."""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nodes.common.http import HttpError, read_body, read_json_object
from nodes.station.synthetic import BSN_SYSTEM, bsn_of

if TYPE_CHECKING:
    from nodes.station.app import Station

SENDER_SCOPE = "eOverdracht-sender"  # the sender serves Task and Composition under it
RECEIVER_SCOPE = "eOverdracht-receiver"  # the receiver takes notifications under it
URA_SYSTEM = "http://fhir.nl/fhir/NamingSystem/ura"
OPEN = ("requested", "accepted", "in-progress")
# What the receiver may set the status to, from which status (FHIR R4 Task state machine).
RECEIVER_MOVES = {
    "requested": ("accepted", "rejected"),
    "accepted": ("in-progress", "completed", "rejected"),
    "in-progress": ("completed",),
}
FHIR_JSON = "application/fhir+json"
TASKS, COMPOSITIONS, NOTIFICATIONS = "handover_tasks", "handover_compositions", "handover_notifications"


def public_routes(station: Station) -> list[Route]:
    def audited(action: str, request: Request, token: dict[str, Any] | None, outcome: int, detail: str = "") -> None:
        station.audit.append(
            action=action,
            resource=request.url.path,
            client=(token or {}).get("client_id"),
            requester_ura=(token or {}).get("organization_ura"),
            scope=(token or {}).get("scope"),
            outcome=outcome,
            detail=detail,
        )

    async def guarded(action: str, request: Request, scope: str, handle: Any) -> Response:
        """Authorise, handle, and audit whatever the outcome."""
        token: dict[str, Any] | None = None
        try:
            token = await station.resources.authorise(request, {scope})
            response: Response = await handle(token)
        except HttpError as exc:
            audited(action, request, token, exc.status, exc.detail)
            raise
        audited(action, request, token, response.status_code)
        return response

    async def notified(request: Request) -> Response:
        async def handle(token: dict[str, Any]) -> Response:
            if await read_body(request):
                raise HttpError(400, "Bad Request", "an eOverdracht notification has an empty body")
            notification = {
                "task": request.path_params["task_id"],
                "sender_ura": token.get("organization_ura"),
                "sender": token.get("client_id"),
                "received": time.time(),
            }
            station.store.put(NOTIFICATIONS, str(uuid.uuid4()), notification)
            return Response(status_code=202)

        return await guarded("handover-notification", request, RECEIVER_SCOPE, handle)

    async def read_task(request: Request) -> Response:
        async def handle(token: dict[str, Any]) -> Response:
            return _fhir(_owned_open_task(station, request.path_params["id"], token))

        return await guarded("handover-read", request, SENDER_SCOPE, handle)

    async def read_composition(request: Request) -> Response:
        async def handle(token: dict[str, Any]) -> Response:
            composition_id = request.path_params["id"]
            tasks = [
                t
                for t in station.store.list(TASKS)
                if t["focus"]["reference"] == f"Composition/{composition_id}"
                and _owner(t) == token.get("organization_ura")
            ]
            if not any(t["status"] in OPEN for t in tasks):
                # Access follows the Task: no open Task of the requester, no Composition.
                raise HttpError(403, "Forbidden", "no open eOverdracht Task of yours points at this Composition")
            return _fhir(station.store.get(COMPOSITIONS, composition_id))

        return await guarded("handover-read", request, SENDER_SCOPE, handle)

    async def update_task(request: Request) -> Response:
        async def handle(token: dict[str, Any]) -> Response:
            task = _owned_open_task(station, request.path_params["id"], token)
            status = _status_from_patch(await read_body(request))
            if status not in RECEIVER_MOVES.get(task["status"], ()):
                raise HttpError(
                    422, "Unprocessable Entity", f"a {task['status']} Task cannot become {status} by its receiver"
                )
            task["status"] = status
            task["lastModified"] = _now()
            station.store.put(TASKS, task["id"], task)
            return _fhir(task)

        return await guarded("handover-update", request, SENDER_SCOPE, handle)

    return [
        Route("/fhir/notifications/eoverdracht/{task_id}", notified, methods=["POST"]),
        Route("/fhir/Task/{id}", read_task, methods=["GET"]),
        Route("/fhir/Task/{id}", update_task, methods=["PATCH"]),
        Route("/fhir/Composition/{id}", read_composition, methods=["GET"]),
    ]


def internal_routes(station: Station) -> list[Route]:
    async def publish(request: Request) -> Response:
        """The sending organisation's own system publishes a handover for a receiver."""
        body = await read_json_object(request)
        patient = station.store.get("Patient", str(body.get("patient", "")))
        receiver = str(body.get("receiver_ura", ""))
        if patient is None:
            raise HttpError(404, "Not Found", f"no patient {body.get('patient')!r} at this station")
        if not (receiver.isdigit() and len(receiver) == 8):
            raise HttpError(422, "Unprocessable Entity", "'receiver_ura' must be an 8-digit URA number")
        composition = _composition(station, patient)
        task = _task(station, patient, composition, receiver)
        station.store.put(COMPOSITIONS, composition["id"], composition)
        station.store.put(TASKS, task["id"], task)
        return JSONResponse(task, status_code=201, media_type=FHIR_JSON)

    async def notifications(_: Request) -> Response:
        return JSONResponse(station.store.list(NOTIFICATIONS))

    return [
        Route("/internal/station/v1/handovers", publish, methods=["POST"]),
        Route("/internal/station/v1/handovers/notifications", notifications),
    ]


def _owned_open_task(station: Station, task_id: str, token: dict[str, Any]) -> dict[str, Any]:
    task = station.store.get(TASKS, task_id)
    if task is None:
        raise HttpError(404, "Not Found", f"Task/{task_id} is not known here")
    if _owner(task) != token.get("organization_ura"):
        # The 2025 variant of the bolt: authorisation follows the Task's owner.
        raise HttpError(403, "Forbidden", "this Task is owned by another organisation")
    if task["status"] not in OPEN:
        raise HttpError(403, "Forbidden", f"the Task is {task['status']}: access has ended")
    return task


def _owner(task: dict[str, Any]) -> str | None:
    return task["owner"]["identifier"]["value"]


def _status_from_patch(body: bytes) -> str:
    """A JSON Patch (RFC 6902) that replaces /status, and nothing else."""
    try:
        patch = json.loads(body)
        [operation] = patch
        if operation.get("op") != "replace" or operation.get("path") != "/status":
            raise ValueError
        return str(operation["value"])
    except (ValueError, TypeError, KeyError, AttributeError):
        detail = 'send a JSON Patch replacing /status only: [{"op": "replace", "path": "/status", "value": ...}]'
        raise HttpError(400, "Bad Request", detail) from None


def _composition(station: Station, patient: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Composition",
        "id": str(uuid.uuid4()),
        "status": "final",
        "type": {"coding": [{"system": "http://loinc.org", "code": "57830-2", "display": "Admission request note"}]},
        "subject": {
            "reference": f"Patient/{patient['id']}",
            "identifier": {"system": BSN_SYSTEM, "value": bsn_of(patient)},
        },
        "date": _now(),
        "author": [{"identifier": {"system": URA_SYSTEM, "value": station.config.organisation.ura}}],
        "title": "Nursing transfer (eOverdracht)",
        "section": [
            {"title": "Reason for transfer", "text": {"status": "generated", "div": "<div>Continuity of care</div>"}},
        ],
    }


def _task(station: Station, patient: dict[str, Any], composition: dict[str, Any], receiver: str) -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "id": str(uuid.uuid4()),
        "status": "requested",
        "intent": "order",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "308292007", "display": "Transfer of care"}]},
        "for": {"reference": f"Patient/{patient['id']}"},
        "focus": {"reference": f"Composition/{composition['id']}"},
        "requester": {"agent": {"identifier": {"system": URA_SYSTEM, "value": station.config.organisation.ura}}},
        "owner": {"identifier": {"system": URA_SYSTEM, "value": receiver}},
        "authoredOn": _now(),
        "lastModified": _now(),
    }


def _fhir(resource: dict[str, Any]) -> Response:
    return JSONResponse(resource, media_type=FHIR_JSON)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
