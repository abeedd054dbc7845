"""eOverdracht, the nursing handover as a notified pull (Nuts bolt "eOverdracht"):

- the sending organisation's system publishes a Task for the receiving organisation, with the
  transfer Composition as its focus (internal API here);
- the sender notifies the receiver: an empty POST to the receiver's notification endpoint with
  a token of scope eOverdracht-receiver; the receiver answers 202;
- the receiver gets a token of scope eOverdracht-sender from the sender and reads the Task and
  the Composition; it may do so only while it owns the Task (the URA in its token is the
  Task's owner) and the Task is still open;
- the receiver sets Task.status to completed (or rejected), after which its access ends.

The same station plays either side, as every care organisation does in practice. The routes
are in routes/handover.py; this module holds the resources and the rules."""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from nodes.common.http import HttpError
from nodes.station.synthetic import BSN_SYSTEM, bsn_of

if TYPE_CHECKING:
    from nodes.station.station import Station

SENDER_SCOPE = "eOverdracht-sender"  # the sender serves Task and Composition under it
RECEIVER_SCOPE = "eOverdracht-receiver"  # the receiver takes notifications under it
URA_SYSTEM = "http://fhir.nl/fhir/NamingSystem/ura"
XHTML = "http://www.w3.org/1999/xhtml"  # R4: a narrative's div is XHTML in this namespace
OPEN = ("requested", "accepted", "in-progress")
# What the receiver may set the status to, from which status (FHIR R4 Task state machine).
RECEIVER_MOVES = {
    "requested": ("accepted", "rejected"),
    "accepted": ("in-progress", "completed", "rejected"),
    "in-progress": ("completed",),
}
TASKS, COMPOSITIONS, NOTIFICATIONS = "handover_tasks", "handover_compositions", "handover_notifications"


def owned_open_task(station: Station, task_id: str, token: dict[str, Any]) -> dict[str, Any]:
    task = station.store.get(TASKS, task_id)
    if task is None:
        raise HttpError(404, "Not Found", f"Task/{task_id} is not known here", code="task-unknown")
    if owner(task) != token.get("organization_ura") and not station.faulty("handover-outsider-allowed"):
        # The 2025 variant of the bolt: authorisation follows the Task's owner.
        raise HttpError(403, "Forbidden", "this Task is owned by another organisation", code="task-not-yours")
    if task["status"] not in OPEN and not station.faulty("handover-access-not-ended"):
        detail = f"the Task is {task['status']}: access has ended"
        raise HttpError(403, "Forbidden", detail, code="task-closed")
    return task


def readable_composition(station: Station, composition_id: str, token: dict[str, Any]) -> dict[str, Any]:
    """The Composition, while an open Task of the requester points at it: access follows the Task."""
    tasks = [
        t
        for t in station.store.list(TASKS)
        if t["focus"]["reference"] == f"Composition/{composition_id}"
        and (owner(t) == token.get("organization_ura") or station.faulty("handover-outsider-allowed"))
    ]
    if not tasks:
        detail = "no eOverdracht Task of yours points at this Composition"
        raise HttpError(403, "Forbidden", detail, code="task-not-yours")
    if not any(t["status"] in OPEN or station.faulty("handover-access-not-ended") for t in tasks):
        detail = "every eOverdracht Task of yours that points at this Composition has ended: access has ended"
        raise HttpError(403, "Forbidden", detail, code="task-closed")
    composition: dict[str, Any] = station.store.get(COMPOSITIONS, composition_id) or {}
    return composition


def moved(station: Station, task: dict[str, Any], status: str) -> dict[str, Any]:
    """The Task with the status its receiver set, if the receiver may make that move."""
    allowed = RECEIVER_MOVES.get(task["status"], ())
    if status not in allowed and not station.faulty("task-any-transition"):
        detail = f"a {task['status']} Task cannot become {status} by its receiver"
        raise HttpError(422, "Unprocessable Entity", detail, code="transition-invalid")
    task = {**task, "status": status, "lastModified": now()}
    if not station.faulty("handover-update-not-stored"):
        station.store.put(TASKS, task["id"], task)
    return task


def published(station: Station, body: dict[str, Any]) -> dict[str, Any]:
    """A handover the sending organisation's own system publishes for a receiver: its Task."""
    patient = station.store.get("Patient", str(body.get("patient", "")))
    receiver = str(body.get("receiver_ura", ""))
    if patient is None:
        raise HttpError(404, "Not Found", f"no patient {body.get('patient')!r} at this station", code="patient-unknown")
    if not (receiver.isdigit() and len(receiver) == 8):
        detail = "'receiver_ura' must be an 8-digit URA number"
        raise HttpError(422, "Unprocessable Entity", detail, code="ura-invalid")
    composition = _composition(station, patient)
    task = _task(station, patient, composition, receiver)
    station.store.put(COMPOSITIONS, composition["id"], composition)
    station.store.put(TASKS, task["id"], task)
    return task


def owner(task: dict[str, Any]) -> str | None:
    return task["owner"]["identifier"]["value"]


def status_from_patch(body: bytes) -> str:
    """A JSON Patch (RFC 6902) that replaces /status, and nothing else."""
    try:
        patch = json.loads(body)
        [operation] = patch
        if operation.get("op") != "replace" or operation.get("path") != "/status":
            raise ValueError
        return str(operation["value"])
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        detail = 'send a JSON Patch replacing /status only: [{"op": "replace", "path": "/status", "value": ...}]'
        raise HttpError(400, "Bad Request", detail, code="patch-invalid") from None


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
        "date": now(),
        "author": [_organisation(station.config.organisation.ura)],
        "title": "Nursing transfer (eOverdracht)",
        "section": [
            {
                "title": "Reason for transfer",
                "text": {"status": "generated", "div": f'<div xmlns="{XHTML}">Continuity of care</div>'},
            },
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
        # R4: requester and owner are References (STU3's requester.agent is gone); both name an
        # organisation by its URA number.
        "requester": _organisation(station.config.organisation.ura)
        if not station.faulty("task-stu3-requester")
        else {"agent": _organisation(station.config.organisation.ura)},
        "owner": _organisation(receiver),
        "authoredOn": now(),
        "lastModified": now(),
    }


def _organisation(ura: str) -> dict[str, Any]:
    """A logical reference to an organisation by its URA number."""
    return {"type": "Organization", "identifier": {"system": URA_SYSTEM, "value": ura}}


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
