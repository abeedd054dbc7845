"""What the harness hands to Locust's processes: one JSON file naming the scenario, the
network, the bootstrap context, the TLS files and the load settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from testbed.scenario.load_settings import LoadSettings

PLAN_VARIABLE = "TESTBED_LOAD_PLAN"  # the environment variable Locust's processes read it from
STARTED_FILE = "started"  # in `record_to`: the moment the load began, in seconds since the epoch


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
    # Where Locust marks the moment the load began (STARTED_FILE, the clock of the fault
    # schedule and of the series) and, with `record_requests`, writes a record of every
    # request (testbed.load.records). None: neither (Locust inside a swarm stack).
    record_to: Path | None = None
    record_requests: bool = False
    # Seconds after the load began at which Locust's master (or only process) ends it. Locust's
    # own --run-time counts from before its users start, a delay that grows with the machine's
    # load; the fault schedule and the run's figures count from the start. None: --run-time ends it.
    stop_after: float | None = None
