"""Data access applications and the states they go through (Health-RI data station
specification, "Request"; EHDS art. 67-69 and 63):

received -> completeness-check -> assessment -> permitted (a data permit, art. 68)
                                             -> approved  (a data request, art. 69)
any state before a decision -> rejected (by the body) or withdrawn (by the applicant)
permitted | approved -> revoked (art. 63)
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nodes.common.http import HttpError, validation_detail
from nodes.station.analysis import AnalysisType

Kind = Literal["permit", "data-request"]
OPEN_STATES = ("received", "completeness-check", "assessment")
DECIDED_STATES = ("permitted", "approved")
# What an application must name (EHDS art. 67(2)); missing or empty, it is incomplete.
REQUIRED = ("datasets", "purpose", "analyses")
# Which state may follow which, by the body's own decision (withdrawal and revocation have
# their own calls).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "received": ("completeness-check", "rejected"),
    "completeness-check": ("assessment", "rejected"),
    "assessment": ("permitted", "approved", "rejected"),
}


class ApplicationForm(BaseModel):
    """What a data user submits."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind = "permit"
    datasets: list[str] = Field(min_length=1, description="Dataset identifiers from the catalogue")
    purpose: str = Field(min_length=10, description="Why the data is needed (EHDS art. 53 purposes)")
    analyses: list[AnalysisType] = Field(min_length=1)
    validity_days: int = Field(default=365, ge=1, le=5 * 365)


class TransitionRefused(Exception):
    """The application cannot move as asked; the message says why, `code` names the rule."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


def form_refusal(exc: ValidationError) -> HttpError:
    """The 422 answer to a form that does not validate, naming the rule it breaks: a missing
    part (with the parts missing), an analysis the stations do not offer, or anything else."""
    errors = exc.errors()
    empty = ("missing", "too_short", "string_too_short")
    missing = sorted({str(e["loc"][0]) for e in errors if e["loc"] and e["loc"][0] in REQUIRED and e["type"] in empty})
    detail = validation_detail(exc)
    if missing:
        return HttpError(422, "Unprocessable Entity", detail, code="application-incomplete", missing=missing)
    if any(e["loc"][:1] == ("analyses",) for e in errors):
        return HttpError(422, "Unprocessable Entity", detail, code="analysis-not-offered")
    return HttpError(422, "Unprocessable Entity", detail, code="application-malformed")


def new_application(form: ApplicationForm, applicant: dict[str, Any]) -> dict[str, Any]:
    now = time.time()
    return {
        "id": str(uuid.uuid4()),
        "status": "received",
        "applicant": applicant,
        **form.model_dump(),
        "submitted": now,
        "history": [{"status": "received", "at": now}],
    }


def move(
    application: dict[str, Any],
    to: str,
    *,
    reason: str = "",
    table: dict[str, tuple[str, ...]] = TRANSITIONS,
    by_kind: bool = True,
) -> None:
    """Apply a decision of the body, if the state allows it. `table` and `by_kind` are the
    rules; only the self-test's faulty variants pass others."""
    allowed = table.get(application["status"], ())
    status, kind = application["status"], application["kind"]
    if not allowed:
        message = f"an application that is {status} cannot become {to} (its state is final)"
        raise TransitionRefused(message, "application-closed")
    if to not in allowed:
        message = f"an application that is {status} cannot become {to} (it can become: {', '.join(allowed)})"
        raise TransitionRefused(message, "transition-out-of-order")
    expected = "permitted" if kind == "permit" else "approved"
    if by_kind and to in DECIDED_STATES and to != expected:
        raise TransitionRefused(f"a {kind} application is decided as {expected}, not {to}", "decision-kind")
    record(application, to, reason)


def record(application: dict[str, Any], to: str, reason: str = "") -> None:
    application["status"] = to
    application["history"].append({"status": to, "at": time.time(), **({"reason": reason} if reason else {})})


def incomplete(application: dict[str, Any], known_datasets: set[str]) -> list[str]:
    """What the completeness check finds missing; empty when the application is complete."""
    # The analyses were checked on submission (ApplicationForm); the catalogue can change since.
    return [f"dataset {d} is not in the catalogue" for d in application["datasets"] if d not in known_datasets]


def permit_subject(application: dict[str, Any]) -> dict[str, Any]:
    """The credentialSubject of the permit: who may do what with which data, and why."""
    applicant = application["applicant"]
    return {
        "id": applicant["did"],
        "kind": application["kind"],
        "application": application["id"],
        "user": {"ura": applicant.get("ura"), "name": applicant.get("name")},
        "datasets": application["datasets"],
        "purpose": application["purpose"],
        "analyses": application["analyses"],
    }
