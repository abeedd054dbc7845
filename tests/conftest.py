"""Shared test helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_NETWORK = ROOT / "scenarios" / "networks" / "reference.yaml"
FIXTURES = ROOT / "tests" / "fixtures"
# How many node processes the reference network runs (its nodes are all reference nodes).
REFERENCE_NODES = sum(line.strip().startswith("- name:") for line in REFERENCE_NETWORK.read_text().splitlines())


@pytest.fixture
def write_yaml(tmp_path: Path):
    """Write a YAML text to a file in tmp_path and return its path."""

    def write(text: str, name: str = "file.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
