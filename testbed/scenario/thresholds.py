"""k6-style thresholds: `p(95)<200` (milliseconds), `avg<100`, `max<=1000`, `rate<0.01` or
`rate<1%` (the share of failed requests), `rps>=50` (requests per second). A threshold is
checked against the figures of one step, of the whole run, or of the requests inside or
outside a run's fault windows; there failures are also counted by kind (`wrong==0`: answers
that passed for data but failed their checks; `refused`: clean refusals; `other`: the rest).
A breach says by how much."""

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
    "==": operator.eq,
}
# The requests that overlap a fault window of the run, and the others (a step id has no "_").
INSIDE_FAULTS = "inside_faults"
OUTSIDE_FAULTS = "outside_faults"
FAULT_SCOPES = (INSIDE_FAULTS, OUTSIDE_FAULTS)
# Failures by kind: counted only for the requests of a run with a fault schedule.
KIND_METRICS = ("wrong", "refused", "other")
COUNTS = ("rps", *KIND_METRICS)  # metrics that are no milliseconds
PATTERN = re.compile(
    r"^\s*(p\(\s*(\d+(?:\.\d+)?)\s*\)|avg|med|min|max|rate|rps|wrong|refused|other)\s*(<=|>=|==|<|>)\s*"
    r"(\d+(?:\.\d+)?)\s*(%?)\s*$"
)


@dataclass(frozen=True)
class Threshold:
    expression: str
    metric: str  # "p95", "avg", "med", "min", "max", "rate", "rps", "wrong", "refused", "other"
    comparison: str
    limit: float  # a rate as a fraction, also when written in per cent

    @classmethod
    def parse(cls, expression: str, *, scope: str = "overall") -> Threshold:
        """`scope`: what the threshold is about ("overall", a step id, or a fault scope)."""
        match = PATTERN.match(expression)
        if not match:
            raise ValueError(
                f"threshold {expression!r} is not understood: write e.g. 'p(95)<200', 'avg<100', "
                "'max<=1000', 'rate<0.01', 'rate<1%', 'rps>=50' or, inside or outside faults, 'wrong==0'"
            )
        name, percentile, comparison, limit, per_cent = match.groups()
        if percentile is not None:
            value = float(percentile)
            if value not in PERCENTILES:
                known = ", ".join(f"{p:g}" for p in PERCENTILES)
                raise ValueError(f"threshold {expression!r}: Locust reports the percentiles {known}; use one of them")
            name = f"p{value:g}"
        if comparison == "==" and name not in KIND_METRICS:
            # A measured time or rate equal to a number holds by chance; counts are what one equates.
            raise ValueError(
                f"threshold {expression!r} is not understood: '==' compares counts (wrong, refused, other); "
                "give a measurement a bound ('<', '<=', '>', '>=')"
            )
        if per_cent and name != "rate":
            raise ValueError(f"threshold {expression!r}: only a rate can be given in per cent")
        if name in KIND_METRICS and scope not in FAULT_SCOPES:
            raise ValueError(
                f"threshold {expression!r} under {scope!r}: failures are told apart by kind only inside and "
                f"outside fault windows; put it under {INSIDE_FAULTS} or {OUTSIDE_FAULTS}"
            )
        amount = float(limit) / 100 if per_cent else float(limit)
        return cls(expression=expression.strip(), metric=name, comparison=comparison, limit=amount)

    def check(self, figures: dict[str, float]) -> ThresholdResult:
        """`figures` has the metric names as keys (p95 in ms, rate as a fraction, ...)."""
        actual = figures.get(self.metric)
        if actual is None:
            return ThresholdResult(self, None, False, f"no {self.metric} was measured")
        passed = COMPARISONS[self.comparison](actual, self.limit)
        margin = actual - self.limit
        unit = "" if self.metric == "rate" or self.metric in COUNTS else " ms"
        detail = f"{self.metric} = {actual:g}{unit} (limit {self.comparison} {self.limit:g}{unit})"
        if not passed:
            detail += f": breached by {abs(margin):g}{unit}" if margin else ": breached"
        return ThresholdResult(self, actual, passed, detail)


@dataclass(frozen=True)
class ThresholdResult:
    threshold: Threshold
    actual: float | None
    passed: bool
    detail: str
