"""Write the human-readable report: one HTML file that opens offline, with no assets.

The file is meant to be attached to a ticket or mailed, so everything it needs (styles, the
small filter script, a load run's charting library) is inline. It reads top-down in the order
a vendor asks: the verdict, what failed (linked), the scenarios (failures open, passes folded
with their evidence), then the coverage of the run's own roles. Presentation lives in
templates/report.html; this module prepares values the template cannot sensibly compute, and
renders with autoescaping on, because bodies, headers and log lines come from systems under
test and are untrusted.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from lxml import etree

from testbed.report.charts import charts_json, performance_charts, plotly_js
from testbed.report.counts import OUTCOME_ORDER, coverage, outcome_counts, problems, tested
from testbed.report.load_summary import PERCENTILE_COLUMNS
from testbed.report.load_summary import ms as load_ms
from testbed.report.load_summary import seconds as load_seconds
from testbed.report.model import (
    CheckResult,
    HttpRequestRecord,
    RequirementCoverage,
    RunResults,
    ScenarioResult,
)
from testbed.report.summary import coverage_scope, named

__all__ = ["OUTCOME_ORDER", "outcome_counts", "render_html", "write_html"]

_NOT_ID_SAFE = re.compile(r"[^A-Za-z0-9_-]+")
PRETTY_LIMIT = 256 * 1024  # larger bodies are shown as recorded: reformatting them helps no reader


@dataclass(frozen=True)
class BarSegment:
    """One coloured piece of the outcome bar, in the bar's 0..100 coordinate space."""

    outcome: str
    count: int
    x: float
    width: float


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


def requirement_anchor(requirement_id: str) -> str:
    return "req-" + _NOT_ID_SAFE.sub("-", requirement_id)


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
    """An expected or actual value: strings in quotes but as written (a pattern's backslash is
    one backslash), everything else as JSON, so "200" (a string) and 200 (a number) differ."""
    if isinstance(value, str):
        return f'"{value}"'
    return json.dumps(value, ensure_ascii=False, default=str)


def _content_type(headers: dict[str, str]) -> str:
    return next((v.lower() for k, v in headers.items() if k.lower() == "content-type"), "")


def pretty_body(body: str, headers: dict[str, str]) -> str | None:
    """A JSON or XML body indented for reading; None when it is neither (or too large, or not
    well-formed), and the body is shown exactly as recorded."""
    if len(body) > PRETTY_LIMIT:
        return None
    kind = _content_type(headers)
    text = body.strip()
    if "json" in kind or text[:1] in ("{", "["):
        try:
            indented: str = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
            return indented
        except ValueError:
            return None
    if "xml" in kind or text.startswith("<"):
        try:
            parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)
            tree = etree.fromstring(text.encode("utf-8"), parser)
        except (etree.XMLSyntaxError, ValueError):
            return None
        shown: str = etree.tostring(tree, pretty_print=True, encoding="unicode")
        return shown.rstrip("\n")
    return None


def curl_command(request: HttpRequestRecord) -> str:
    """The request as a curl command line a reader can paste into a shell. Mutual TLS needs
    the run's client certificate and CA (`--cert`, `--key`, `--cacert`): the run folder has them."""
    parts = ["curl", "-sS", "-X", request.method, request.url]
    for name, value in request.headers.items():
        if name.lower() in ("content-length", "host"):
            continue  # curl sets both from what it sends
        parts += ["-H", f"{name}: {value}"]
    if request.body:
        parts += ["--data-binary", request.body]
    return " ".join(shlex.quote(part) for part in parts)


@dataclass
class RoleCoverage:
    """The requirements of one role this run reports on, tested ones apart from the rest."""

    role: str
    tested: list[RequirementCoverage] = field(default_factory=list)
    untested: list[RequirementCoverage] = field(default_factory=list)


def coverage_by_role(requirements: Iterable[RequirementCoverage]) -> list[RoleCoverage]:
    roles: dict[str, RoleCoverage] = {}
    for requirement in requirements:
        group = roles.setdefault(requirement.role, RoleCoverage(requirement.role))
        (group.tested if tested(requirement) else group.untested).append(requirement)
    return [roles[name] for name in sorted(roles)]


def check_roles(check: CheckResult, index: dict[str, RequirementCoverage]) -> list[str]:
    """The roles a check is about: those of the requirements it verifies."""
    return sorted({index[r].role for r in check.requirements if r in index})


def scenario_has_problems(scenario: ScenarioResult) -> bool:
    return any(check.outcome.value in ("failed", "error") for check in scenario.checks)


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
        req_anchor=requirement_anchor,
        load_ms=load_ms,
        load_seconds=load_seconds,
    )
    env.globals.update(
        check_anchor=check_anchor,
        scenario_counts=lambda scenario: outcome_counts(scenario.checks),
        scenario_has_problems=scenario_has_problems,
        named=named,
        coverage_scope=coverage_scope,
        pretty_body=pretty_body,
        curl_command=curl_command,
        check_roles=check_roles,
        percentile_columns=PERCENTILE_COLUMNS,
    )
    return env


def render_html(results: RunResults) -> str:
    """Render the report to a string (apart from writing, so it can be tested directly)."""
    counts = outcome_counts(check for _, check in results.all_checks())
    charts = performance_charts(results.performance)
    index = {requirement.id: requirement for requirement in results.requirements}
    template = _environment().get_template("report.html")
    return template.render(
        results=results,
        counts=counts,
        total=sum(counts.values()),
        bar=outcome_bar(counts),
        coverage=coverage(results),
        problems=problems(results),
        requirement_index=index,
        xfail_declared=[requirement for requirement in results.requirements if requirement.xfail],
        roles=coverage_by_role(results.requirements),
        duration=run_duration(results),
        charts=charts,
        charts_json=charts_json(charts) if charts else "",
        plotly_js=plotly_js() if charts else "",
    )


def write_html(results: RunResults, path: Path) -> None:
    """Write the self-contained HTML report to path (UTF-8)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(results), encoding="utf-8")
