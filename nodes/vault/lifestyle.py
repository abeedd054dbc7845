"""Synthetic citizens and the lifestyle measurements in their pods, from the network seed."""

from __future__ import annotations

import random
import re
import uuid
from datetime import date, timedelta
from typing import Any

from nodes.common.bsn import random_bsn

FIRST_DAY = date(2026, 1, 1)
DAYS = 7
# (LOINC code, display, unit): what a lifestyle app records
STEPS = ("41950-7", "Number of steps in 24 hour Measured", "/d")
WEIGHT = ("29463-7", "Body weight", "kg")


def citizens(seed: str, vault: str, count: int) -> list[dict[str, Any]]:
    rng = random.Random(f"{seed}|{vault}|citizens")
    found: list[dict[str, Any]] = []
    taken: set[str] = set()
    for index in range(count):
        bsn = random_bsn(rng)
        while bsn in taken:
            bsn = random_bsn(rng)
        taken.add(bsn)
        pod = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{seed}|{vault}|pod|{index}"))
        found.append({"id": pod, "bsn": bsn, "observations": _week(rng, pod)})
    return found


def _week(rng: random.Random, pod: str) -> list[dict[str, Any]]:
    """A week of daily step counts and one weighing."""
    usual_steps = max(1500.0, rng.gauss(7500, 2500))
    observations = [
        _observation(pod, f"steps-{day}", STEPS, max(0, int(rng.gauss(usual_steps, 1500))), FIRST_DAY + timedelta(day))
        for day in range(DAYS)
    ]
    observations.append(_observation(pod, "weight", WEIGHT, round(rng.gauss(78, 13), 1), FIRST_DAY))
    return observations


def _observation(pod: str, name: str, code: tuple[str, str, str], value: float, day: date) -> dict[str, Any]:
    loinc, display, unit = code
    return {
        "resourceType": "Observation",
        "id": name,
        "status": "final",
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "activity"}]}
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc, "display": display}], "text": display},
        "subject": {"display": f"owner of pod {pod}"},
        "effectiveDateTime": day.isoformat(),
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    }


OBSERVATION_STATUSES = {"registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error"}
# A FHIR R4 dateTime: a year, optionally month and day, optionally a time with its zone.
DATE_TIME = re.compile(
    r"\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01])"
    r"(T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00)))?)?)?"
)
# What a recorded measurement may carry: the elements the vault checks and keeps, and the ones
# it sets itself (its name, whose pod it is in) whatever the app sent. Anything else is refused
# rather than passed on unchecked, so that what the vault serves is valid R4.
KEPT = ("resourceType", "status", "category", "code", "effectiveDateTime", "valueQuantity")
SET_BY_THE_VAULT = ("id", "meta", "subject")
QUANTITY_TEXTS = ("unit", "system", "code")


def recorded(pod: str, body: dict[str, Any], *, checked: bool = True) -> dict[str, Any]:
    """A measurement the citizen's own app records in the pod: a FHIR Observation with a coded
    measurement, a quantity and a date. The vault names it and states whose pod it is in.
    Raises ValueError saying what is wrong. `checked=False`: what a faulty vault does (the
    self-test), keeping whatever else came with the measurement, unchecked."""
    if body.get("resourceType") != "Observation":
        raise ValueError("a lifestyle resource is a FHIR Observation (resourceType Observation)")
    if not checked:
        return {**body, "id": f"recorded-{uuid.uuid4().hex[:12]}", "subject": {"display": f"owner of pod {pod}"}}
    unknown = sorted(set(body) - set(KEPT) - set(SET_BY_THE_VAULT))
    if unknown:
        raise ValueError(f"a lifestyle Observation holds {', '.join(KEPT)} only, not {', '.join(unknown)}")
    if body.get("status") not in OBSERVATION_STATUSES:
        raise ValueError(f"status must be one of {', '.join(sorted(OBSERVATION_STATUSES))}")
    if not _concept(body.get("code"), coded=True):
        raise ValueError("code.coding must name what was measured (each coding with a code)")
    category = body.get("category")
    if category is not None and not (isinstance(category, list) and category and all(map(_concept, category))):
        raise ValueError("category, when given, is a list of codeable concepts")
    _check_quantity(body.get("valueQuantity"))
    moment = body.get("effectiveDateTime")
    if not (isinstance(moment, str) and DATE_TIME.fullmatch(moment)):
        raise ValueError("effectiveDateTime must say when it was measured (a FHIR dateTime)")
    kept = {key: body[key] for key in KEPT if key in body}
    return {**kept, "id": f"recorded-{uuid.uuid4().hex[:12]}", "subject": {"display": f"owner of pod {pod}"}}


def _check_quantity(quantity: Any) -> None:
    value = quantity.get("value") if isinstance(quantity, dict) else None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError("valueQuantity.value must be a number")
    if set(quantity) - {"value", *QUANTITY_TEXTS} or not _texts(quantity, QUANTITY_TEXTS):
        raise ValueError(f"valueQuantity holds a value and, as text, {', '.join(QUANTITY_TEXTS)} only")


def _concept(value: Any, coded: bool = False) -> bool:
    """A CodeableConcept of codings (system, code, display as text) and a text; with `coded`,
    at least one coding, each with a code."""
    if not isinstance(value, dict) or set(value) - {"coding", "text"} or not _texts(value, ("text",)):
        return False
    codings = value.get("coding", [])
    if not isinstance(codings, list) or (coded and not codings):
        return False
    fields = ("system", "code", "display")
    return all(
        isinstance(c, dict) and not set(c) - set(fields) and _texts(c, fields) and (c.get("code") or not coded)
        for c in codings
    )


def _texts(value: dict[str, Any], keys: tuple[str, ...]) -> bool:
    """Each of `keys` the value has is a non-empty string (FHIR has no empty strings)."""
    return all(isinstance(value[k], str) and value[k].strip() for k in keys if k in value)
