"""Synthetic patients and conditions for a data station, derived from the network seed:
one seed gives the same people in every run."""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta
from typing import Any

from nodes.common.bsn import random_bsn

BSN_SYSTEM = "http://fhir.nl/fhir/NamingSystem/bsn"
SNOMED = "http://snomed.info/sct"

GIVEN = {
    "female": ["Anna", "Emma", "Sophie", "Julia", "Lotte", "Sanne", "Fleur", "Noor", "Eva", "Lieke", "Maria", "Fatima"],
    "male": ["Daan", "Sem", "Lucas", "Levi", "Thomas", "Jesse", "Bram", "Ruben", "Mohammed", "Pieter", "Jan", "Stijn"],
}
FAMILY = [
    "de Jong",
    "Jansen",
    "de Vries",
    "van den Berg",
    "van Dijk",
    "Bakker",
    "Janssen",
    "Visser",
    "Smit",
    "Meijer",
    "de Boer",
    "Mulder",
    "de Groot",
    "Bos",
    "Vos",
    "Peters",
    "Hendriks",
    "Yilmaz",
]
CITIES = ["Utrecht", "Amersfoort", "Zeist", "Nieuwegein", "Houten", "Veenendaal", "Woerden", "Leusden"]

# (SNOMED code, display, prevalence among adults, typical onset age)
CONDITIONS = [
    ("38341003", "Hypertensive disorder", 0.25, 50),
    ("44054006", "Diabetes mellitus type 2", 0.08, 55),
    ("195967001", "Asthma", 0.07, 15),
    ("13645005", "Chronic obstructive lung disease", 0.04, 60),
    ("35489007", "Depressive disorder", 0.06, 35),
    ("84114007", "Heart failure", 0.02, 70),
    ("414545008", "Ischemic heart disease", 0.04, 62),
]
REFERENCE_DAY = date(2026, 1, 1)  # ages are computed against a fixed day, not today


def generate(seed: str, station: str, count: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = random.Random(f"{seed}|{station}|patients")
    patients, conditions = [], []
    for index in range(count):
        patient = _patient(rng, seed, station, index)
        patients.append(patient)
        conditions.extend(_conditions(rng, seed, station, patient))
    return patients, conditions


def _patient(rng: random.Random, seed: str, station: str, index: int) -> dict[str, Any]:
    gender = rng.choice(["female", "male"])
    age = min(max(int(rng.gauss(45, 22)), 0), 100)
    birth = REFERENCE_DAY - timedelta(days=age * 365 + rng.randrange(365))
    return {
        "resourceType": "Patient",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{seed}|{station}|patient|{index}")),
        "identifier": [{"system": BSN_SYSTEM, "value": random_bsn(rng)}],
        "name": [{"family": rng.choice(FAMILY), "given": [rng.choice(GIVEN[gender])]}],
        "gender": gender,
        "birthDate": birth.isoformat(),
        "address": [{"city": rng.choice(CITIES), "country": "NL"}],
    }


def _conditions(rng: random.Random, seed: str, station: str, patient: dict[str, Any]) -> list[dict[str, Any]]:
    age = (REFERENCE_DAY - date.fromisoformat(patient["birthDate"])).days // 365
    found = []
    for code, display, prevalence, onset in CONDITIONS:
        # Chronic conditions grow likelier with age: scale prevalence around the onset age.
        chance = prevalence * min(2.0, max(0.1, age / onset))
        if age >= 5 and rng.random() < chance:
            onset_age = max(1, min(age, int(rng.gauss(onset, 8))))
            found.append(
                {
                    "resourceType": "Condition",
                    "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{seed}|{station}|condition|{patient['id']}|{code}")),
                    "clinicalStatus": {
                        "coding": [
                            {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
                        ]
                    },
                    "verificationStatus": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                "code": "confirmed",
                            }
                        ]
                    },
                    "code": {"coding": [{"system": SNOMED, "code": code, "display": display}], "text": display},
                    "subject": {"reference": f"Patient/{patient['id']}"},
                    "onsetDateTime": (
                        date.fromisoformat(patient["birthDate"]) + timedelta(days=onset_age * 365)
                    ).isoformat(),
                }
            )
    return found


def bsn_of(patient: dict[str, Any]) -> str:
    return next(i["value"] for i in patient["identifier"] if i["system"] == BSN_SYSTEM)
