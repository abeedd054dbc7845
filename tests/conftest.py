"""Shared test helpers."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from testbed.conformance.catalogue import Catalogue
from testbed.scenario.loader import LoadedScenario, check_scenario, load_scenario
from testbed.topology import Network

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


def checked_scenario(path: Path, catalogue: Catalogue, network: Network) -> LoadedScenario:
    """A scenario file loaded and checked against a network and the catalogue, as validate does."""
    loaded = load_scenario(path)
    check_scenario(loaded, network, catalogue)
    return loaded


def process_alive(pid: int) -> bool:
    """Running, and not a zombie waiting to be reaped (reaped here when it is this process's child)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def port_free(address: str) -> bool:
    """The loopback port at the end of `address` (a URL or host:port) can be bound: nothing listens on it."""
    port = int(address.rsplit(":", 1)[1])
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # closed connections may linger; no listener
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
