"""What the harness hands to Locust's processes: one JSON file naming the scenario, the
network, the bootstrap context, the TLS files and the load settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from testbed.scenario.load_settings import LoadSettings

PLAN_VARIABLE = "TESTBED_LOAD_PLAN"  # the environment variable Locust's processes read it from


class LoadPlan(BaseModel):
    scenario: Path
    network: Path
    run_id: str
    context: dict[str, Any]  # the bootstrap context: orgs, nodes, network
    ca_bundle: Path
    client_cert: Path | None = None  # the harness's own certificate, for mutual TLS
    client_key: Path | None = None
    settings: LoadSettings
    workers: int = 0  # 0: one Locust process; otherwise a master and this many workers
    # Docker runtime: node host names and the address the harness reaches them at.
    reach_at: dict[str, str] = {}
