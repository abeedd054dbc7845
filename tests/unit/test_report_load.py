"""A load run's report: failures from Locust's CSV, steps in scenario order, the ramp-up apart
from the steady state, thresholds by name, the k6-like terminal summary and the chart figures."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from testbed.load import perf
from testbed.load.runner import threshold_check_id
from testbed.report.charts import charts_json, performance_charts, plotly_js
from testbed.report.html import render_html
from testbed.report.load_summary import ms, print_load_summary, seconds
from testbed.report.model import (
    FailureRecord,
    NodeSample,
    Performance,
    RequestFigures,
    RunResults,
    SeriesPoint,
    ThresholdOutcome,
)
from testbed.scenario.durations import parse_duration
from testbed.scenario.load_settings import LoadSettings
from tests.unit.test_report_writers import make_results


def _figures(name: str, requests: int = 100, failures: int = 0) -> RequestFigures:
    return RequestFigures(
        name=name, requests=requests, failures=failures, rps=10.0, failure_rate=failures / requests,
        avg_ms=12.345, min_ms=1.5, max_ms=596.3820679990022, percentiles_ms={"50": 10, "90": 20, "95": 30, "99": 90},
    )  # fmt: skip


def make_performance() -> Performance:
    series = [SeriesPoint(t=t, users=min(5, t), rps=20.0 * min(5, t), failures_per_s=0.5 if t == 7 else 0.0,
                          p50_ms=10 + t, p95_ms=30 + t, p99_ms=60 + t) for t in range(0, 11)]  # fmt: skip
    steps = [_figures("create-subject"), _figures("read-patient", failures=4), _figures("<b>odd</b>")]
    return Performance(
        users=5, spawn_rate=1, duration_s=10, workers=0,
        overall=_figures("Aggregated", requests=300, failures=4), steps=steps, series=series,
        step_series={s.name: series for s in steps},
        nodes={f"node-{i}": [NodeSample(t=t, cpu_percent=5.0 * i, rss_mb=50.0 + i) for t in range(10)]
               for i in range(14)},
        thresholds=[ThresholdOutcome(scope="read-patient", expression="p(95)<1", actual=30, passed=False,
                                     detail="p95 = 30 ms, breached by 29 ms")],
        failures=[FailureRecord(step="read-patient", method="GET", message="HTTPError('503 Server Error')",
                                occurrences=4)],
        ramp_up_s=5, steady=perf.steady_state(series, 5), stages=[(5.0, 5), (10.0, 5)],
    )  # fmt: skip


def load_results() -> RunResults:
    results = make_results()
    results.kind = "load"
    results.performance = make_performance()
    return results


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30", 30), ("30s", 30), ("5m", 300), ("1h30m", 5400), ("2m30s", 150), ("250ms", 0.25), ("1.5s", 1.5)],
)
def test_durations_with_units(text: str, expected: float) -> None:
    assert parse_duration(text) == expected
    assert LoadSettings(duration=text).duration == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["", "s", "30x", "5m1h", "1h1h", "m5", "-5s"])
def test_durations_that_are_not_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_failures_csv_becomes_a_failures_table(tmp_path: Path) -> None:
    csv = tmp_path / "failures.csv"
    csv.write_text(
        "Method,Name,Error,Occurrences\n"
        "GET,read-patient,HTTPError('503 Server Error'),4\n"
        "STEP,token,step could not be sent,1\n"
        "POST,token,\"ConnectionError('reset, by peer')\",7\n"
    )
    found = perf.read_failures(csv)
    assert [(f.step, f.method, f.occurrences) for f in found] == [("token", "POST", 7), ("read-patient", "GET", 4),
                                                                 ("token", "", 1)]  # fmt: skip
    assert found[0].message == "ConnectionError('reset, by peer')"
    assert perf.read_failures(tmp_path / "absent.csv") == []


def test_steps_in_scenario_order_and_ramp_up_apart() -> None:
    steps = [_figures("b-step"), _figures("a-step"), _figures("unknown")]
    assert [s.name for s in perf.in_order(steps, ["b-step", "a-step"])] == ["b-step", "a-step", "unknown"]
    series = make_performance().series
    assert perf.ramp_up_end(series, 5) == 5
    assert perf.ramp_up_end(series, 50) == 10  # never at full strength: all of it was ramp-up
    steady = perf.steady_state(series, 5)
    assert steady is not None and steady.start_s == 5 and steady.end_s == 10
    assert steady.rps == 100 and steady.p95_ms == 38  # median of 36..40
    assert perf.steady_state(series, 10) is None


def test_thresholds_have_ids_that_say_what_they_hold() -> None:
    assert threshold_check_id("overall", "p(95)<2500") == "overall-p95-lt-2500"
    assert threshold_check_id("read-patient", "rate<=0.01") == "read-patient-rate-le-0.01"


def test_units_and_durations_as_people_read_them() -> None:
    assert ms(596.3820679990022) == "596 ms" and ms(1.234) == "1.2 ms" and ms(None) == "-"
    assert seconds(5400) == "1h30m" and seconds(45) == "45s" and seconds(0) == "0s"


def test_terminal_end_of_test_summary() -> None:
    console = Console(record=True, width=200, color_system=None)
    print_load_summary(console, load_results())
    text = console.export_text()
    assert "requests ........ 300  10.0/s" in text and "failed .......... 4  1.33%" in text
    assert "steady state .... 5s to 10s" in text and "ramp-up 5s left out" in text
    rows = [line.split() for line in text.splitlines()]
    names = [row[0] for row in rows if row and row[0] in ("create-subject", "read-patient", "total")]
    assert names == ["create-subject", "read-patient", "total"]  # scenario order, total last
    assert "596 ms" in text and "596.38" not in text
    assert "4 x read-patient: HTTPError('503 Server Error')" in text
    assert "✗ read-patient: p(95)<1" in text and "threshold-" not in text


def test_html_load_report_tables() -> None:
    html = render_html(load_results())
    section = html[html.index('id="performance"') : html.index('id="scenarios"')]
    assert "HTTPError(&#39;503 Server Error&#39;)" in section and ">4</td>" in section
    per_step = section[section.index("<h3>Per step</h3>") :]
    assert per_step.index("create-subject") < per_step.index("read-patient") < per_step.index("every request")
    assert "596 ms" in section and "596.38" not in section and "1.5 ms" in section  # max and min, with units
    assert "Steady state" in section and "ramp-up of 5s left out" in section
    assert ">4</div>failed requests" in section


def test_charts_are_plotly_figures_embedded_with_the_library() -> None:
    results = load_results()
    charts = performance_charts(results.performance)
    assert [c.id for c in charts] == ["chart-latency", "chart-step-latency", "chart-throughput", "chart-cpu",
                                      "chart-memory"]  # fmt: skip
    cpu = next(c for c in charts if c.id == "chart-cpu").figure
    assert len({(t["line"]["color"], t["line"]["dash"]) for t in cpu["data"]}) == 14  # a distinct line per node
    layout = cpu["layout"]
    assert layout["xaxis"]["title"]["text"] and layout["yaxis"]["title"]["text"] == "% of one core"
    assert layout["shapes"][0]["x1"] == 5  # the ramp-up is marked
    assert any(s["type"] == "line" and s["x0"] == 5.0 for s in layout["shapes"])  # and the stage boundary
    html = render_html(results)
    assert plotly_js()[:200] in html and "Licensed under the MIT license" in html
    assert not re.search(r"<script[^>]*\bsrc\s*=", html) and "<link" not in html


def test_chart_data_cannot_close_its_script_element() -> None:
    text = charts_json(performance_charts(make_performance()))
    assert "<" not in text and ">" not in text
    assert "<b>odd</b>" in json.loads(text)["chart-step-latency"]["data"][2]["name"]


def test_no_library_in_a_conformance_report() -> None:
    html = render_html(make_results())
    assert "Plotly" not in html and len(html) < 200_000
