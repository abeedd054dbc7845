"""Shared test helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_NETWORK = ROOT / "scenarios" / "networks" / "reference.yaml"
FIXTURES = ROOT / "tests" / "fixtures"
# How many node processes the reference network runs (its nodes are all reference nodes).
# A measurement a citizen's own app records in a vault pod (steps a day, LOINC 41950-7).
VAULT_MEASUREMENT = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "41950-7"}]},
    "effectiveDateTime": "2026-01-08",
    "valueQuantity": {"value": 9000, "unit": "/d"},
}
REFERENCE_NODES = sum(line.strip().startswith("- name:") for line in REFERENCE_NETWORK.read_text().splitlines())


@pytest.fixture
def write_yaml(tmp_path: Path):
    """Write a YAML text to a file in tmp_path and return its path."""

    def write(text: str, name: str = "file.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
