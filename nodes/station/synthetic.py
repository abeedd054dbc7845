"""Synthetic patients and their BgZ resources for a data station, derived from the network
seed: one seed gives the same people in every run.

Besides FHIR resources, every patient gets a row of analysis features (age, sex, city,
conditions, measurements): the secondary-use analyses run over those rows, never over
records a requester can see."""

from __future__ import annotations

import hashlib
import random
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from typing import Any

from nodes.common.bsn import random_bsn

BSN_SYSTEM = "http://fhir.nl/fhir/NamingSystem/bsn"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ATC = "http://www.whocc.no/atc"
UCUM = "http://unitsofmeasure.org"

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

# (SNOMED code, display, prevalence among adults, typical onset age, ATC code, medication)
CONDITIONS = [
    ("38341003", "Hypertensive disorder", 0.25, 50, "C08CA01", "amlodipine"),
    ("44054006", "Diabetes mellitus type 2", 0.08, 55, "A10BA02", "metformin"),
    ("195967001", "Asthma", 0.07, 15, "R03AC02", "salbutamol"),
    ("13645005", "Chronic obstructive lung disease", 0.04, 60, "R03BB04", "tiotropium"),
    ("35489007", "Depressive disorder", 0.06, 35, "N06AB06", "sertraline"),
    ("84114007", "Heart failure", 0.02, 70, "C03CA01", "furosemide"),
    ("414545008", "Ischemic heart disease", 0.04, 62, "B01AC06", "acetylsalicylic acid"),
]
# (SNOMED code, display, prevalence)
ALLERGIES = [("91936005", "Allergy to penicillin", 0.08), ("91935009", "Allergy to peanut", 0.02)]
# The measurements kept as Observations: (feature, LOINC code, display, unit)
MEASUREMENTS = [
    ("weight_kg", "29463-7", "Body weight", "kg"),
    ("bmi", "39156-5", "Body mass index (BMI) [Ratio]", "kg/m2"),
    ("systolic_bp", "8480-6", "Systolic blood pressure", "mm[Hg]"),
    ("steps_per_day", "41950-7", "Number of steps in 24 hour Measured", "/d"),
]
REFERENCE_DAY = date(2026, 1, 1)  # ages are computed against a fixed day, not today


@dataclass
class StationData:
    patients: list[dict[str, Any]] = field(default_factory=list)
    resources: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # resource type -> resources
    features: list[dict[str, Any]] = field(default_factory=list)  # one analysis row per patient

    def add(self, resource: dict[str, Any]) -> None:
        self.resources.setdefault(resource["resourceType"], []).append(resource)


def generate(seed: str, station: str, count: int) -> StationData:
    # Patients and their clinical details draw from separate streams, so adding a kind of
    # resource later does not change who the patients are.
    people = random.Random(f"{seed}|{station}|patients")
    clinical = random.Random(f"{seed}|{station}|clinical")
    data = StationData()
    bsns: set[str] = set()
    for index in range(count):
        patient = _patient(people, seed, station, index, bsns)
        data.patients.append(patient)
        data.features.append(_clinical(people, clinical, seed, station, patient, data))
    return data


def _patient(rng: random.Random, seed: str, station: str, index: int, taken: set[str]) -> dict[str, Any]:
    gender = rng.choice(["female", "male"])
    age = min(max(int(rng.gauss(45, 22)), 0), 100)
    birth = REFERENCE_DAY - timedelta(days=age * 365 + rng.randrange(365))
    bsn = random_bsn(rng)
    while bsn in taken:  # a BSN names one person
        bsn = random_bsn(rng)
    taken.add(bsn)
    return {
        "resourceType": "Patient",
        "id": _id(seed, station, "patient", str(index)),
        "identifier": [{"system": BSN_SYSTEM, "value": bsn}],
        "name": [{"family": rng.choice(FAMILY), "given": [rng.choice(GIVEN[gender])]}],
        "gender": gender,
        "birthDate": birth.isoformat(),
        "address": [{"city": rng.choice(CITIES), "country": "NL"}],
    }


def _clinical(
    people: random.Random,
    rng: random.Random,
    seed: str,
    station: str,
    patient: dict[str, Any],
    data: StationData,
) -> dict[str, Any]:
    """The patient's conditions, medication, allergies and measurements; returns their row."""
    age = age_of(patient)
    codes: list[str] = []
    for code, display, prevalence, onset, atc, medication in CONDITIONS:
        # Chronic conditions grow likelier with age: scale prevalence around the onset age.
        chance = prevalence * min(2.0, max(0.1, age / onset))
        if age >= 5 and people.random() < chance:
            onset_age = max(1, min(age, int(people.gauss(onset, 8))))
            started = date.fromisoformat(patient["birthDate"]) + timedelta(days=onset_age * 365)
            data.add(_condition(seed, station, patient, code, display, started))
            data.add(_medication(seed, station, patient, atc, medication, started))
            codes.append(code)
    for code, display, prevalence in ALLERGIES:
        if rng.random() < prevalence:
            data.add(_allergy(seed, station, patient, code, display))
    values = _measurements(rng, patient, age, codes)
    for feature, loinc, display, unit in MEASUREMENTS:
        if feature in values:
            data.add(_observation(seed, station, patient, feature, loinc, display, unit, values[feature]))
    return {
        "patient": patient["id"],
        "bsn": bsn_of(patient),
        "age": age,
        "gender": patient["gender"],
        "city": patient["address"][0]["city"],
        "conditions": codes,
        **values,
    }


def _measurements(rng: random.Random, patient: dict[str, Any], age: int, codes: list[str]) -> dict[str, float]:
    """Adults only; plausible Dutch distributions, with type 2 diabetes going with a higher
    BMI and hypertension with a higher blood pressure."""
    if age < 18:
        return {}
    height = rng.gauss(1.80 if patient["gender"] == "male" else 1.67, 0.07)
    bmi = round(min(max(rng.gauss(26.0 + (4.0 if "44054006" in codes else 0.0), 4.5), 16.0), 50.0), 1)
    systolic = rng.gauss(122 + 0.45 * (age - 18), 13) + (14 if "38341003" in codes else 0)
    return {
        "weight_kg": round(bmi * height * height, 1),
        "bmi": bmi,
        "systolic_bp": float(round(min(max(systolic, 90), 210))),
        "steps_per_day": float(max(500, int(rng.gauss(8000 - 40 * max(age - 40, 0), 2500)))),
    }


_URL_NAMESPACE = uuid.NAMESPACE_URL.bytes


def _id(seed: str, station: str, *parts: str) -> str:
    """A name-based UUID (version 5, URL namespace) of the parts: the same as uuid.uuid5 gives,
    built without its UUID object, as a station makes a thousand of them per 200 patients at
    every first start."""
    digest = bytearray(hashlib.sha1(_URL_NAMESPACE + "|".join([seed, station, *parts]).encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122 variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _base(kind: str, seed: str, station: str, patient: dict[str, Any], key: str) -> dict[str, Any]:
    return {
        "resourceType": kind,
        "id": _id(seed, station, kind.lower(), patient["id"], key),
        "subject" if kind != "AllergyIntolerance" else "patient": {"reference": f"Patient/{patient['id']}"},
    }


# Shared between the resources that carry them: the data set is only written out, never
# changed in place, and a thousand stations need not make the same dictionary a million times.
@cache
def _coding(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


@cache
def _status(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": f"http://terminology.hl7.org/CodeSystem/{system}", "code": code}]}


def _condition(
    seed: str, station: str, patient: dict[str, Any], code: str, display: str, onset: date
) -> dict[str, Any]:
    return {
        **_base("Condition", seed, station, patient, code),
        "clinicalStatus": _status("condition-clinical", "active"),
        "verificationStatus": _status("condition-ver-status", "confirmed"),
        "code": _coding(SNOMED, code, display),
        "onsetDateTime": onset.isoformat(),
    }


def _medication(seed: str, station: str, patient: dict[str, Any], atc: str, name: str, start: date) -> dict[str, Any]:
    return {
        **_base("MedicationStatement", seed, station, patient, atc),
        "status": "active",
        "medicationCodeableConcept": _coding(ATC, atc, name),
        "effectivePeriod": {"start": start.isoformat()},
    }


def _allergy(seed: str, station: str, patient: dict[str, Any], code: str, display: str) -> dict[str, Any]:
    return {
        **_base("AllergyIntolerance", seed, station, patient, code),
        "clinicalStatus": _status("allergyintolerance-clinical", "active"),
        "verificationStatus": _status("allergyintolerance-verification", "confirmed"),
        "code": _coding(SNOMED, code, display),
    }


def _observation(
    seed: str, station: str, patient: dict[str, Any], feature: str, loinc: str, display: str, unit: str, value: float
) -> dict[str, Any]:
    category = "activity" if feature == "steps_per_day" else "vital-signs"
    return {
        **_base("Observation", seed, station, patient, loinc),
        "status": "final",
        "category": [_status("observation-category", category)],
        "code": _coding(LOINC, loinc, display),
        "effectiveDateTime": REFERENCE_DAY.isoformat(),
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }


def age_of(patient: dict[str, Any]) -> int:
    return (REFERENCE_DAY - date.fromisoformat(patient["birthDate"])).days // 365


def bsn_of(patient: dict[str, Any]) -> str:
    return next(i["value"] for i in patient["identifier"] if i["system"] == BSN_SYSTEM)
