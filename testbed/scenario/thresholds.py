"""k6-style thresholds: `p(95)<200` (milliseconds), `avg<100`, `max<=1000`, `rate<0.01`
(the share of failed requests), `rps>=50` (requests per second). A threshold is checked
against the figures of one step or of the whole run; a breach says by how much."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

# The percentiles Locust reports; a threshold on another one could not be checked exactly.
PERCENTILES = (50, 66, 75, 80, 90, 95, 98, 99, 99.9, 99.99, 100)
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
PATTERN = re.compile(r"^\s*(p\(\s*(\d+(?:\.\d+)?)\s*\)|avg|med|min|max|rate|rps)\s*(<=|>=|<|>)\s*(\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True)
class Threshold:
    expression: str
    metric: str  # "p95", "avg", "med", "min", "max", "rate", "rps"
    comparison: str
    limit: float

    @classmethod
    def parse(cls, expression: str) -> Threshold:
        match = PATTERN.match(expression)
        if not match:
            raise ValueError(
                f"threshold {expression!r} is not understood: write e.g. 'p(95)<200', 'avg<100', "
                "'max<=1000', 'rate<0.01' or 'rps>=50'"
            )
        name, percentile, comparison, limit = match.groups()
        if percentile is not None:
            value = float(percentile)
            if value not in PERCENTILES:
                known = ", ".join(f"{p:g}" for p in PERCENTILES)
                raise ValueError(f"threshold {expression!r}: Locust reports the percentiles {known}; use one of them")
            name = f"p{value:g}"
        return cls(expression=expression.strip(), metric=name, comparison=comparison, limit=float(limit))

    def check(self, figures: dict[str, float]) -> ThresholdResult:
        """`figures` has the metric names as keys (p95 in ms, rate as a fraction, ...)."""
        actual = figures.get(self.metric)
        if actual is None:
            return ThresholdResult(self, None, False, f"no {self.metric} was measured")
        passed = COMPARISONS[self.comparison](actual, self.limit)
        margin = actual - self.limit
        unit = "" if self.metric in ("rate", "rps") else " ms"
        detail = f"{self.metric} = {actual:g}{unit} (limit {self.comparison} {self.limit:g}{unit})"
        if not passed:
            detail += f": breached by {abs(margin):g}{unit}"
        return ThresholdResult(self, actual, passed, detail)


@dataclass(frozen=True)
class ThresholdResult:
    threshold: Threshold
    actual: float | None
    passed: bool
    detail: str
