"""Load runs: thresholds, load shapes, settings with command-line overrides, Locust's CSVs."""

import json
from pathlib import Path

import pytest

from testbed.errors import ConfigError
from testbed.load.perf import check_thresholds, read_figures, read_series
from testbed.load.runner import Overrides, settings_for, split_threshold_option
from testbed.load.shape import target
from testbed.scenario.load_settings import LoadSettings, Stage
from testbed.scenario.loader import load_scenario
from testbed.scenario.thresholds import Threshold
from tests.conftest import ROOT


@pytest.mark.parametrize(
    ("expression", "metric", "comparison", "limit"),
    [
        ("p(95)<200", "p95", "<", 200),
        ("p(99.9) <= 1500", "p99.9", "<=", 1500),
        ("avg<100", "avg", "<", 100),
        ("rate<0.01", "rate", "<", 0.01),
        ("rps>=50", "rps", ">=", 50),
        ("med<80", "med", "<", 80),
    ],
)
def test_thresholds_are_parsed(expression, metric, comparison, limit):
    threshold = Threshold.parse(expression)
    assert (threshold.metric, threshold.comparison, threshold.limit) == (metric, comparison, limit)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("p(97)<200", "Locust reports the percentiles"),
        ("p95<200", "not understood"),
        ("latency<3", "not understood"),
        ("rate<", "not understood"),
        ("rate == 0", "not understood"),
    ],
)
def test_wrong_thresholds_say_what_is_wrong(expression, message):
    with pytest.raises(ValueError, match=message):
        Threshold.parse(expression)


def test_threshold_evaluation_says_by_how_much():
    result = Threshold.parse("p(95)<200").check({"p95": 250.0})
    assert not result.passed and result.actual == 250
    assert "breached by 50 ms" in result.detail
    assert Threshold.parse("rps>=50").check({"rps": 60.0}).passed
    assert Threshold.parse("rate<0.01").check({"rate": 0.0}).passed
    assert not Threshold.parse("max<10").check({}).passed  # nothing measured is no pass


def test_stages_ramp_linearly_and_end():
    stages = [Stage(duration=10, users=20), Stage(duration=10, users=20), Stage(duration=5, users=0)]
    assert target(stages, 0) == (0, 2.0)
    assert target(stages, 5) == (10, 2.0)
    assert target(stages, 15) == (20, 1.0)
    assert target(stages, 22.5)[0] == 10
    assert target(stages, 25) is None
    settings = LoadSettings(stages=stages)
    assert settings.duration == 25 and settings.users == 20


def test_command_line_overrides_the_scenarios_load_block():
    scenario = load_scenario(ROOT / "scenarios" / "bgz-consent.yaml")
    assert scenario.scenario.load is not None and scenario.scenario.load.users == 50
    settings = settings_for(scenario, Overrides(users=5, duration=3, thresholds=["p(95)<1", "read-patient:max<9"]))
    assert (settings.users, settings.duration) == (5, 3)
    assert "p(95)<1" in settings.thresholds["overall"] and settings.thresholds["read-patient"][-1] == "max<9"
    with pytest.raises(ConfigError, match="not understood"):
        settings_for(scenario, Overrides(thresholds=["fast"]))
    assert split_threshold_option("read-patient:p(95)<200") == ("read-patient", "p(95)<200")
    assert split_threshold_option("p(95)<200") == ("overall", "p(95)<200")


PERCENTILE_COLUMNS = "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
STATS = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,"
    f"Max Response Time,Average Content Size,Requests/s,Failures/s,{PERCENTILE_COLUMNS}\n"
    """GET,read-patient,100,2,40,45.5,10,300,800,20.0,0.4,40,50,55,60,80,120,200,250,300,300,300
POST,token,100,0,20,22.0,5,90,500,20.0,0.0,20,22,24,25,30,40,60,80,90,90,90
,Aggregated,200,2,30,33.7,5,300,650,40.0,0.4,30,40,45,50,70,100,150,200,300,300,300
"""
)
HISTORY = (
    f"Timestamp,User Count,Type,Name,Requests/s,Failures/s,{PERCENTILE_COLUMNS},"
    "Total Request Count,Total Failure Count\n"
    """1000,0,,Aggregated,0.000000,0.000000,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,0,0
1001,5,GET,read-patient,3.0,0.0,40,50,55,60,80,120,200,250,300,300,300,3,0
1001,5,,Aggregated,6.0,0.5,30,40,45,50,70,100,150,200,300,300,300,6,1
"""
)


def test_locust_csvs_become_figures_series_and_verdicts(tmp_path: Path):
    (tmp_path / "stats.csv").write_text(STATS)
    (tmp_path / "history.csv").write_text(HISTORY)
    overall, steps = read_figures(tmp_path / "stats.csv")
    assert overall is not None and overall.requests == 200 and overall.failure_rate == 0.01
    assert [s.name for s in steps] == ["read-patient", "token"]
    assert steps[0].percentiles_ms["95"] == 120 and steps[0].percentiles_ms["99.9"] == 300
    series = read_series(tmp_path / "history.csv")
    assert [(p.t, p.users, p.p95_ms) for p in series] == [(0, 0, None), (1, 5, 100)]
    assert [(p.t, p.p95_ms) for p in read_series(tmp_path / "history.csv", "read-patient")] == [(1, 120)]
    outcomes = check_thresholds(
        [
            ("overall", Threshold.parse("rate<0.01")),
            ("read-patient", Threshold.parse("p(95)<200")),
            ("nowhere", Threshold.parse("avg<1")),
        ],
        overall,
        steps,
    )
    assert [o.passed for o in outcomes] == [False, True, False]
    assert "made no request" in outcomes[2].detail


def test_load_driver_ratios_are_medians_of_their_rounds():
    from testbed.bench.load_driver import ratios

    found = ratios(
        {
            "wrk": {"per_second": 50000},
            "alone": {"raw Locust": {"per_second": 5000}, "harness driver": {"per_second": 4000}},
            "side_by_side": [{"ratio": 0.70}, {"ratio": 0.85}, {"ratio": 0.82}],
            "workers": [{"ratio": 1.7}, {"ratio": 1.5}, {"ratio": 1.55}],
        }
    )
    assert found["ratios"] == {"harness_vs_raw_locust": 0.82, "raw_locust_vs_wrk": 0.1, "two_workers_vs_one": 1.55}
    assert found["targets_met"] == {"harness_vs_raw_locust": True, "two_workers_vs_one": False}


def _meter_file(path: Path, samples: list[tuple[float, float, int, int]]) -> Path:
    lines = [json.dumps({"t": t, "cpu": cpu, "ok": ok, "failed": failed}) for t, cpu, ok, failed in samples]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_meter_window_leaves_out_start_up(tmp_path: Path):
    from testbed.bench.load_driver import WARMUP_SECONDS, read_window

    # Nothing answered for a second (imports, TLS), then 1000 answers a second on 0.5 CPU-seconds.
    samples = [(0.0, 0.4, 0, 0), (0.5, 0.7, 0, 0)]
    samples += [(1.0 + n * 0.5, 0.7 + n * 0.25, n * 500, 0) for n in range(1, 13)]
    window = read_window(_meter_file(tmp_path / "1.jsonl", samples), "raw")
    assert window.seconds == pytest.approx(7.0 - (1.5 + WARMUP_SECONDS))  # from the first answer plus warm-up
    assert window.per_second == pytest.approx(1000)
    assert window.per_cpu_second == pytest.approx(2000)


def test_a_meter_window_refuses_failures_and_runs_too_short(tmp_path: Path):
    from testbed.bench import BenchError
    from testbed.bench.load_driver import read_window

    failing = [(n * 0.5, n * 0.25, n * 100, n) for n in range(1, 12)]
    with pytest.raises(BenchError, match="requests failed"):
        read_window(_meter_file(tmp_path / "failing.jsonl", failing), "harness")
    short = [(n * 0.5, n * 0.25, n * 100, 0) for n in range(1, 5)]
    with pytest.raises(BenchError, match="too short"):
        read_window(_meter_file(tmp_path / "short.jsonl", short), "harness")
    with pytest.raises(BenchError, match="made no request"):
        read_window(_meter_file(tmp_path / "idle.jsonl", [(0.0, 0.1, 0, 0), (0.5, 0.2, 0, 0)]), "harness")


def test_chart_traces_have_their_own_colour_and_units_in_the_tooltip():
    from testbed.report.charts import COLOURS, style, trace

    line = trace("p95", [(0, 10.0), (1, 20.0)], 0, unit="ms")
    assert line["x"] == [0, 1] and line["y"] == [10.0, 20.0] and "ms" in line["hovertemplate"]
    assert len({(style(i)["color"], style(i)["dash"]) for i in range(3 * len(COLOURS))}) == 3 * len(COLOURS)


def test_failures_before_sending_are_a_steps_errors_not_its_requests(tmp_path: Path):
    stats = STATS.replace(
        "POST,token,100,0,", "STEP,token,3,3,0,0,0,0,0,0.1,0.1,0,0,0,0,0,0,0,0,0,0,0\nPOST,token,100,0,"
    )
    (tmp_path / "stats.csv").write_text(stats)
    _, steps = read_figures(tmp_path / "stats.csv")
    token = next(s for s in steps if s.name == "token")
    assert (token.requests, token.failures, token.step_errors) == (100, 3, 3)
    assert token.percentiles_ms["95"] == 40  # the request figures, not the empty STEP row's


def test_reply_headers_are_read_when_looked_at_with_lower_case_names():
    from testbed.scenario.transport import LowerCaseHeaders

    class Source:
        reads = 0

        def items(self):
            Source.reads += 1
            return [("Content-Type", "application/json"), ("Set-Cookie", "a=1"), ("set-cookie", "b=2")]

    headers = LowerCaseHeaders(Source())
    assert Source.reads == 0  # nothing read until a step looks
    assert headers["content-type"] == "application/json"
    assert headers.get("set-cookie") == "a=1, b=2"
    assert dict(headers) == {"content-type": "application/json", "set-cookie": "a=1, b=2"}
    assert Source.reads == 1
