"""Locust's CSV files -> the performance part of the results model."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

from testbed.report.model import (
    FailureRecord,
    RequestFigures,
    SeriesPoint,
    SteadyState,
    ThresholdOutcome,
    WindowFigures,
)
from testbed.scenario.thresholds import FAULT_SCOPES, PERCENTILES, Threshold

OVERALL = "Aggregated"  # Locust's name for the row over every request


STEP_TYPE = "STEP"  # the request type of a step that failed before it sent anything


def read_figures(stats_csv: Path) -> tuple[RequestFigures | None, list[RequestFigures]]:
    """(overall, per step) from `<prefix>_stats.csv`. A step's failures before sending (rows of
    type STEP) count as its failures and in `step_errors`, not as requests it made."""
    overall: RequestFigures | None = None
    steps: dict[str, RequestFigures] = {}
    for row in _rows(stats_csv):
        figures = _figures(row)
        if row["Name"] == OVERALL:
            overall = figures
        elif row["Type"] == STEP_TYPE:
            steps.setdefault(row["Name"], figures.model_copy(update={"requests": 0, "failures": 0, "rps": 0.0}))
            steps[row["Name"]].step_errors += figures.requests
            steps[row["Name"]].failures += figures.failures
        elif row["Name"] in steps:  # its STEP row came first: keep the request figures
            errors = steps[row["Name"]].step_errors
            steps[row["Name"]] = figures.model_copy(
                update={"step_errors": errors, "failures": figures.failures + errors}
            )
        else:
            steps[row["Name"]] = figures
    return overall, list(steps.values())


def read_all_series(history_csv: Path, *, origin: float | None = None) -> dict[str, list[SeriesPoint]]:
    """The run over time from `<prefix>_stats_history.csv`, by name: `Aggregated` (every
    request) and each step, on one clock. Read once for all of them. `origin`: when the load
    began (seconds since the epoch, as Locust marked it), so that the series and the fault
    windows share one clock; Locust's rows from before it (a master waiting for its workers)
    are left out. Without it the first row is the start."""
    rows = _rows(history_csv)
    if not rows:
        return {}
    start = float(rows[0]["Timestamp"]) if origin is None else origin
    found: dict[str, list[SeriesPoint]] = {}
    for r in rows:
        if r["Type"] == STEP_TYPE:
            continue  # a step's failures before sending are no point of its request series
        # Locust stamps a row with the whole second it was written in: one of the load's first
        # second may read as a moment before the start.
        t = float(r["Timestamp"]) - start
        if t <= -1:
            continue
        found.setdefault(r["Name"], []).append(
            SeriesPoint(
                t=max(0.0, t),
                users=int(float(r["User Count"] or 0)),
                rps=_number(r["Requests/s"]) or 0.0,
                failures_per_s=_number(r["Failures/s"]) or 0.0,
                p50_ms=_number(r["50%"]),
                p95_ms=_number(r["95%"]),
                p99_ms=_number(r["99%"]),
            )
        )
    return found


def read_series(history_csv: Path, name: str = OVERALL) -> list[SeriesPoint]:
    """One series of the run: over every request, or of one step's requests (`name`)."""
    return read_all_series(history_csv).get(name, [])


def read_failures(failures_csv: Path) -> list[FailureRecord]:
    """What failed, from `<prefix>_failures.csv` (Locust groups failures by method, name and
    message), most frequent first."""
    if not failures_csv.exists():
        return []
    found = [
        FailureRecord(
            step=row.get("Name", ""),
            method="" if row.get("Method") == STEP_TYPE else row.get("Method", ""),
            message=row.get("Error", ""),
            occurrences=int(float(row.get("Occurrences") or 0)),
        )
        for row in _rows(failures_csv)
    ]
    return sorted(found, key=lambda f: -f.occurrences)


def in_order(steps: list[RequestFigures], order: list[str]) -> list[RequestFigures]:
    """Steps in the scenario's order (Locust sorts them by name); names it does not know last."""
    rank = {name: index for index, name in enumerate(order)}
    return sorted(steps, key=lambda f: (rank.get(f.name, len(order)), f.name))


def ramp_up_end(series: list[SeriesPoint], users: int) -> float:
    """The second by which every user had started: the first point at the full count (the
    last point's time when the run never got there)."""
    for point in series:
        if point.users >= users:
            return point.t
    return series[-1].t if series else 0.0


def steady_state(series: list[SeriesPoint], start: float) -> SteadyState | None:
    """The run after its ramp-up: mean throughput and failures, median of each percentile."""
    points = [p for p in series if p.t > start]
    if not points:
        return None

    def median(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return statistics.median(present) if present else None

    return SteadyState(
        start_s=start,
        end_s=points[-1].t,
        rps=statistics.fmean(p.rps for p in points),
        failures_per_s=statistics.fmean(p.failures_per_s for p in points),
        p50_ms=median([p.p50_ms for p in points]),
        p95_ms=median([p.p95_ms for p in points]),
        p99_ms=median([p.p99_ms for p in points]),
    )


def metrics(figures: RequestFigures) -> dict[str, float]:
    """The names thresholds use for these figures (inside or outside fault windows, also the
    failures by kind)."""
    found = {
        "avg": figures.avg_ms,
        "min": figures.min_ms,
        "max": figures.max_ms,
        "rate": figures.failure_rate,
        "rps": figures.rps,
    }
    if "50" in figures.percentiles_ms:
        found["med"] = figures.percentiles_ms["50"]
    found.update({f"p{key}": value for key, value in figures.percentiles_ms.items()})
    if isinstance(figures, WindowFigures):
        found.update(wrong=figures.wrong, refused=figures.refused, other=figures.other)
    return found


def check_thresholds(
    thresholds: list[tuple[str, Threshold]],
    overall: RequestFigures | None,
    steps: list[RequestFigures],
    *,
    scoped: dict[str, WindowFigures | None] | None = None,
) -> list[ThresholdOutcome]:
    """Each threshold against its scope's figures: the whole run's, a step's, or (`scoped`)
    those inside or outside the run's fault windows."""
    by_name: dict[str, RequestFigures | None] = {f.name: f for f in steps}
    by_name.update(scoped or {})
    outcomes = []
    for scope, threshold in thresholds:
        figures = overall if scope == "overall" else by_name.get(scope)
        if figures is None:
            outcomes.append(
                ThresholdOutcome(
                    scope=scope,
                    expression=threshold.expression,
                    actual=None,
                    passed=False,
                    detail=_nothing_measured(scope),
                )
            )
            continue
        result = threshold.check(metrics(figures))
        outcomes.append(
            ThresholdOutcome(
                scope=scope,
                expression=threshold.expression,
                actual=result.actual,
                passed=result.passed,
                detail=result.detail,
            )
        )
    return outcomes


def _nothing_measured(scope: str) -> str:
    if scope in FAULT_SCOPES:
        return f"no request was recorded {scope.replace('_', ' ')} (no fault of the schedule held, or nothing ran)"
    return f"step {scope!r} made no request during the run"


def _figures(row: dict[str, str]) -> RequestFigures:
    requests = int(row["Request Count"] or 0)
    failures = int(row["Failure Count"] or 0)
    percentiles = {f"{p:g}": _number(row.get(f"{p:g}%", "")) for p in PERCENTILES}
    return RequestFigures(
        name=row["Name"],
        requests=requests,
        failures=failures,
        rps=_number(row["Requests/s"]) or 0.0,
        failure_rate=failures / requests if requests else 0.0,
        avg_ms=_number(row["Average Response Time"]) or 0.0,
        min_ms=_number(row["Min Response Time"]) or 0.0,
        max_ms=_number(row["Max Response Time"]) or 0.0,
        percentiles_ms={k: v for k, v in percentiles.items() if v is not None},
    )


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "", "N/A") else None
    except ValueError:
        return None
