"""Durations as Locust and k6 users write them: `30s`, `5m`, `1h30m`, `1.5s`, `250ms`, or a
bare number of seconds."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(text: str) -> float:
    """Seconds in `text`; a ValueError says what is wrong. Units run from large to small,
    each at most once, as in Go's and k6's durations."""
    given = text.strip().replace(" ", "")
    try:
        return float(given)
    except ValueError:
        pass
    parts = _PART.findall(given)
    order = [unit for _, unit in parts]
    if not parts or "".join(f"{n}{u}" for n, u in parts) != given or order != sorted(set(order), key=_rank):
        raise ValueError(f"{text!r} is not a duration: write seconds (30) or with units, as 30s, 5m, 1h30m or 250ms")
    return sum(float(number) * _UNITS[unit] for number, unit in parts)


def _rank(unit: str) -> int:
    return ["h", "m", "s", "ms"].index(unit)


def duration_value(value: Any) -> Any:
    """For a pydantic `mode="before"` validator: a text with units becomes seconds; anything
    else is left for the field's own validation to judge."""
    return parse_duration(value) if isinstance(value, str) else value


# A duration field of a model: seconds, given as a number or a text with units. The published
# JSON Schema allows both, so that an editor does not flag `duration: 5m`.
Duration = Annotated[
    float,
    BeforeValidator(duration_value),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number"},
                {"type": "string", "pattern": r"^\s*(\d+(\.\d+)?(h|m|s|ms))+\s*$"},
            ],
            "description": "Seconds: a number, or a text with units (30s, 5m, 1h30m, 250ms)",
        }
    ),
]
