"""What the nodes build as FHIR parses as R4: the synthetic data generator's whole output for one
station, the station's capability statement, bundles, OperationOutcomes, the eOverdracht Task
and Composition, and the vault's lifestyle Observations.

fhir.resources offers R4B models, not R4 ones; R4B is the closest release to R4 (4.0.1) the
library has, and the elements these resources use are the same in both, so the R4B models judge
them. The models refuse elements they do not know (e.g. STU3's Task.requester.agent)."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from nodes.station import fhir, handover, synthetic
from nodes.station.routes.bgz import BY_PATIENT
from nodes.station.routes.records import transaction_response
from nodes.vault import lifestyle
from tests.conftest import VAULT_MEASUREMENT

SEED = "reference-network-2026"


def parsed(resource: dict[str, Any]) -> None:
    """Raises ValidationError when the resource is not valid (as R4B models judge it)."""
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def test_every_resource_the_generator_makes_for_a_station_parses() -> None:
    data = synthetic.generate(SEED, "hospital-station", 1000)
    resources = [*data.patients, *(r for kind in data.resources.values() for r in kind)]
    failures: list[str] = []
    for resource in resources:
        try:
            parsed(resource)
        except ValidationError as exc:
            failures.append(f"{resource['resourceType']}/{resource['id']}: {exc}")
    assert not failures, f"{len(failures)} of {len(resources)} do not parse; first: {failures[0]}"
    kinds = Counter(r["resourceType"] for r in resources)
    assert set(kinds) == {"Patient", *BY_PATIENT}, kinds


def test_the_capability_statement_holds_what_r4_requires_and_parses() -> None:
    statement = fhir.capability_statement("https://station.example", BY_PATIENT)
    parsed(statement)
    assert {"status", "date", "kind", "fhirVersion", "format"} <= set(statement)
    without_date = {k: v for k, v in statement.items() if k != "date"}
    with pytest.raises(ValidationError, match="date"):
        parsed(without_date)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 413, 422, 503])
def test_each_operation_outcome_parses(status: int) -> None:
    parsed(fhir.operation_outcome(status, "why it was refused", "some-rule"))


def test_bundles_parse_with_and_without_matches() -> None:
    patients = synthetic.generate(SEED, "gp-station", 3).patients
    parsed(fhir.bundle("https://station.example", patients))
    empty = fhir.bundle("https://station.example", [])
    parsed(empty)
    assert "entry" not in empty  # FHIR JSON has no empty arrays
    notification = {"resourceType": "Bundle", "type": "transaction", "entry": [{"request": {}}, {"request": {}}]}
    answer = transaction_response(notification)
    parsed(answer)
    assert len(answer["entry"]) == 2


def _station(fault: str | None = None) -> Any:
    """What handover's builders read of a station: its organisation and its fault switch."""
    config = SimpleNamespace(organisation=SimpleNamespace(ura="90000002"))
    return SimpleNamespace(config=config, faulty=lambda name: name == fault)


def test_the_handover_task_and_composition_are_r4() -> None:
    patient = synthetic.generate(SEED, "hospital-station", 1).patients[0]
    composition = handover._composition(_station(), patient)
    task = handover._task(_station(), patient, composition, "90000006")
    parsed(composition)
    parsed(task)
    assert task["requester"]["identifier"]["value"] == "90000002"
    assert handover.owner(task) == "90000006"


def test_the_stu3_task_of_the_faulty_variant_does_not_parse() -> None:
    patient = synthetic.generate(SEED, "hospital-station", 1).patients[0]
    station = _station("task-stu3-requester")
    task = handover._task(station, patient, handover._composition(station, patient), "90000006")
    with pytest.raises(ValidationError, match="agent"):
        parsed(task)


def test_the_vaults_observations_parse_as_generated_and_as_recorded() -> None:
    pods = lifestyle.citizens(SEED, "welldata-vault", 5)
    for pod in pods:
        for observation in pod["observations"]:
            parsed(observation)
    parsed(lifestyle.recorded(pods[0]["id"], dict(VAULT_MEASUREMENT)))
