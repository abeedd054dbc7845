"""The JSON Schemas the project publishes for its files: scenarios, networks, results.
Generated from the models; `testbed schema` writes them, a test keeps the committed copies
in step with the models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from testbed.report.json_report import results_json_schema
from testbed.scenario.models import Scenario
from testbed.topology import Network

SCHEMA_DIR = Path(__file__).parent / "schemas"
BASE_ID = "https://health-network-testbed.example/schemas"


def _with_header(schema: dict[str, Any], name: str, title: str) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{BASE_ID}/{name}",
        "title": title,
        **{k: v for k, v in schema.items() if k not in ("$schema", "title")},
    }


def all_schemas() -> dict[str, dict[str, Any]]:
    return {
        "scenario.schema.json": _with_header(
            Scenario.model_json_schema(by_alias=True), "scenario-1.0.json", "Testbed scenario"
        ),
        "network.schema.json": _with_header(
            Network.model_json_schema(by_alias=True), "network-1.0.json", "Testbed network"
        ),
        "results.schema.json": results_json_schema(),
    }


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in all_schemas().items():
        path = directory / name
        path.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written
