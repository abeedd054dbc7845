"""Synthetic citizens and the lifestyle measurements in their pods, from the network seed."""

from __future__ import annotations

import random
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


def recorded(pod: str, body: dict[str, Any]) -> dict[str, Any]:
    """A measurement the citizen's own app records in the pod: a FHIR Observation with a coded
    measurement, a quantity and a date. The vault names it and states whose pod it is in.
    Raises ValueError saying what is missing."""
    if body.get("resourceType") != "Observation":
        raise ValueError("a lifestyle resource is a FHIR Observation (resourceType Observation)")
    if body.get("status") not in OBSERVATION_STATUSES:
        raise ValueError(f"status must be one of {', '.join(sorted(OBSERVATION_STATUSES))}")
    coding = (body.get("code") or {}).get("coding")
    if not isinstance(coding, list) or not coding or not all(isinstance(c, dict) and c.get("code") for c in coding):
        raise ValueError("code.coding must name what was measured")
    value = (body.get("valueQuantity") or {}).get("value")
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError("valueQuantity.value must be a number")
    if not isinstance(body.get("effectiveDateTime"), str):
        raise ValueError("effectiveDateTime must say when it was measured")
    return {**body, "id": f"recorded-{uuid.uuid4().hex[:12]}", "subject": {"display": f"owner of pod {pod}"}}
