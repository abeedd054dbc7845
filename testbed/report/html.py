"""Write the human-readable report: one HTML file that opens offline, with no assets.

The file is meant to be attached to a ticket or mailed, so everything it needs (styles,
the outcome chart) is inline. Presentation lives in templates/report.html; this module only
prepares values the template cannot sensibly compute, and renders with autoescaping on,
because bodies, headers and log lines come from systems under test and are untrusted.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from testbed.report.charts import line_chart
from testbed.report.model import CheckResult, Outcome, RunResults, ScenarioResult, SeriesPoint
from testbed.report.summary import coverage_scope, named

# The order outcomes are counted, charted and listed in: passed first, then what needs a look.
OUTCOME_ORDER = (Outcome.PASSED, Outcome.FAILED, Outcome.ERROR, Outcome.SKIPPED)

_NOT_ID_SAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class BarSegment:
    """One coloured piece of the outcome bar, in the bar's 0..100 coordinate space."""

    outcome: str
    count: int
    x: float
    width: float


def outcome_counts(checks: list[CheckResult]) -> dict[str, int]:
    """Count checks per outcome, every outcome present (zero included), in display order."""
    # Counted from the checks themselves so the numbers always match the tables below them.
    tally = Counter(check.outcome for check in checks)
    return {outcome.value: tally[outcome] for outcome in OUTCOME_ORDER}


def outcome_bar(counts: dict[str, int]) -> list[BarSegment]:
    """Split a 100-unit bar into segments proportional to each outcome's count."""
    total = sum(counts.values())
    segments: list[BarSegment] = []
    x = 0.0
    for outcome, count in counts.items():
        if count == 0:
            continue
        width = 100.0 * count / total
        segments.append(BarSegment(outcome, count, round(x, 3), round(width, 3)))
        x += width
    return segments


def check_anchor(scenario_name: str, check_id: str) -> str:
    """A stable in-page id for a check, so requirement rows can link to its evidence."""
    return "check-" + _NOT_ID_SAFE.sub("-", f"{scenario_name}--{check_id}")


def _coverage_anchor(check_ref: str) -> str:
    # RequirementCoverage.checks holds "<scenario>/<check id>"; scenario names have no "/".
    scenario_name, _, check_id = check_ref.partition("/")
    return check_anchor(scenario_name, check_id)


def format_ms(milliseconds: float) -> str:
    """Durations as a person reads them: ms below a second, seconds above."""
    if milliseconds < 1000:
        return f"{milliseconds:.0f} ms"
    return f"{milliseconds / 1000:.2f} s"


def format_time(moment: datetime | None) -> str:
    if moment is None:
        return "not finished"
    return moment.isoformat(sep=" ", timespec="seconds")


def run_duration(results: RunResults) -> str:
    if results.finished is None:
        return "unknown"
    return format_ms((results.finished - results.started).total_seconds() * 1000)


def show_value(value: Any) -> str:
    # JSON keeps "200" (string) and 200 (number) apart in the expectations table.
    return json.dumps(value, ensure_ascii=False, default=str)


def needs_evidence(check: CheckResult) -> bool:
    """Failed and error checks get an evidence section; passed and skipped ones do not."""
    return check.outcome in (Outcome.FAILED, Outcome.ERROR)


def evidence_checks(scenario: ScenarioResult) -> list[CheckResult]:
    return [check for check in scenario.checks if needs_evidence(check)]


def scenario_counts(scenario: ScenarioResult) -> dict[str, int]:
    return outcome_counts(scenario.checks)


def _environment() -> Environment:
    # PackageLoader finds the template inside the installed package, zipped or not.
    # StrictUndefined turns a typo in the template into an error instead of a blank cell.
    env = Environment(
        loader=PackageLoader("testbed.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        ms=format_ms,
        when=format_time,
        value=show_value,
        anchor_for=_coverage_anchor,
    )
    env.globals.update(
        check_anchor=check_anchor,
        needs_evidence=needs_evidence,
        evidence_checks=evidence_checks,
        scenario_counts=scenario_counts,
        named=named,
        coverage_scope=coverage_scope,
    )
    return env


def render_html(results: RunResults) -> str:
    """Render the report to a string (apart from writing, so it can be tested directly)."""
    counts = outcome_counts([check for _, check in results.all_checks()])
    covered = sum(1 for req in results.requirements if req.outcome is not None)
    template = _environment().get_template("report.html")
    return template.render(
        results=results,
        counts=counts,
        total=sum(counts.values()),
        bar=outcome_bar(counts),
        covered=covered,
        duration=run_duration(results),
        perf_charts=performance_charts(results),
    )


def performance_charts(results: RunResults) -> list[str]:
    """Latency percentiles, throughput and errors over time, and each node's CPU and memory."""
    perf = results.performance
    if perf is None:
        return []
    series = perf.series

    def over_time(pick: Callable[[SeriesPoint], float | None]) -> list[tuple[float, float]]:
        return [(p.t, value) for p in series if (value := pick(p)) is not None]

    return [
        line_chart(
            "Latency percentiles",
            "ms",
            {
                "p50": over_time(lambda p: p.p50_ms),
                "p95": over_time(lambda p: p.p95_ms),
                "p99": over_time(lambda p: p.p99_ms),
            },
        ),
        line_chart(
            "Throughput and errors",
            "per second",
            {"requests/s": over_time(lambda p: p.rps), "failures/s": over_time(lambda p: p.failures_per_s)},
        ),
        line_chart("Users", "users", {"users": over_time(lambda p: float(p.users))}),
        line_chart(
            "CPU per node", "% of one core", {n: [(s.t, s.cpu_percent) for s in v] for n, v in perf.nodes.items()}
        ),
        line_chart("Memory per node", "MB resident", {n: [(s.t, s.rss_mb) for s in v] for n, v in perf.nodes.items()}),
    ]


def write_html(results: RunResults, path: Path) -> None:
    """Write the self-contained HTML report to path (UTF-8)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(results), encoding="utf-8")
