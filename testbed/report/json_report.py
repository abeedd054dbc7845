"""Write the machine-readable results file and the JSON Schema that describes it.

results.json is the contract other tools read, so its schema is generated from the same
pydantic model the harness fills in, and committed so consumers can validate without Python.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from testbed.report.model import RESULTS_SCHEMA_VERSION, RunResults

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = f"https://health-network-testbed.example/schemas/results-{RESULTS_SCHEMA_VERSION}.json"
SCHEMA_TITLE = "Health network testbed run results"


def _write_json(data: Any, path: Path) -> None:
    # Indented and UTF-8 (not ASCII-escaped) so a person can read and diff the file;
    # the trailing newline keeps the committed schema friendly to editors and git.
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8")


def write_results_json(results: RunResults, path: Path) -> None:
    """Write the run results as pretty UTF-8 JSON (the model in its JSON form)."""
    _write_json(results.model_dump(mode="json"), path)


def results_json_schema() -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) of results.json, derived from RunResults."""
    generated = RunResults.model_json_schema(mode="serialization")
    # The identifying keywords go first so a reader sees what the file is at the top.
    header: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_ID,
        "title": SCHEMA_TITLE,
    }
    generated.pop("title", None)
    return header | generated


def write_results_schema(path: Path) -> None:
    """Write results_json_schema() to path, in the same layout as results.json."""
    _write_json(results_json_schema(), path)


if __name__ == "__main__":
    # Regenerate the committed schema: python -m testbed.report.json_report
    write_results_schema(Path(__file__).resolve().parent.parent / "schemas" / "results.schema.json")
