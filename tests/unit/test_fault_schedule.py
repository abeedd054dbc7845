"""Chaos during load (issue 18): the fault schedule of a load run, in the scenario and on the
command line, checked before anything starts; the scheduler that does and undoes its faults
(with the runtime stood in for); each request's record split by the fault windows and its
failure told apart by kind; thresholds inside and outside the windows; the report's marks."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console

from testbed.errors import ConfigError
from testbed.faults.schedule import (
    FaultScheduler,
    PlannedFault,
    parse_fault_option,
    plan_schedule,
    schedule_sources,
    undo_of,
)
from testbed.load import perf
from testbed.load.records import (
    OK,
    OTHER,
    REFUSED,
    WRONG,
    Record,
    RecordWriter,
    covered_seconds,
    failure_kind,
    read_records,
    split,
)
from testbed.load.runner import LoadOptions, Overrides, fault_run, run_load, settings_for, threshold_check_id
from testbed.report.charts import performance_charts
from testbed.report.html import render_html
from testbed.report.load_summary import print_load_summary
from testbed.report.model import FaultRun, FaultWindow, Performance, WindowFigures
from testbed.runtime.state import RunFolder, new_run_id
from testbed.scenario.loader import load_scenario
from testbed.scenario.models import Fault
from testbed.scenario.thresholds import Threshold
from testbed.topology import UrlImplementation
from tests.conftest import REFERENCE_NETWORK
from tests.unit.test_report_load import load_results

HEADER = f"""\
name: sample
network: {REFERENCE_NETWORK}
actors:
  requester: gp
  holder: hospital
  consent: mitz
"""
STEPS = """\
steps:
  - id: metadata
    title: the station's capability statement
    requirements: [STATION-META-01]
    request: {node: holder.station, path: /fhir/metadata}
    expect: {status: 200}
"""


def scenario_with(write_yaml, load: str):
    return load_scenario(write_yaml(HEADER + load + STEPS))



def planned(write_yaml, network, load: str, *, options: list[str] | None = None, runtime: str = "process"):
    loaded = scenario_with(write_yaml, load)
    settings = settings_for(loaded, Overrides(faults=options))
    sources = schedule_sources(loaded, options)
    return plan_schedule(loaded, network, settings, sources=sources, runtime=runtime)


# --- the compact form of --fault -----------------------------------------------------------------


def test_the_compact_form_gives_time_window_target_operation_and_options():
    entry = parse_fault_option("10s+8s:holder.station:stop")
    assert (entry.at, entry.for_, entry.fault.node, entry.fault.operation) == (10, 8, "holder.station", "stop")
    lasting = parse_fault_option("1m30s:consent:pause")
    assert (lasting.at, lasting.for_) == (90, None)
    link = parse_fault_option("5s+500ms:gp-station~consent:delay:ms=300")
    assert link.fault.link == ("gp-station", "consent") and link.fault.ms == 300 and link.for_ == 0.5
    assert parse_fault_option("5s+5s:gp-station~consent:cut:one_way").fault.one_way is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10s:holder.station", r"write AT\[\+FOR\]:TARGET:OPERATION"),
        (":holder.station:stop", r"write AT\[\+FOR\]:TARGET:OPERATION"),
        ("soon:holder.station:stop", "AT: 'soon' is not a duration"),
        ("10s+ever:holder.station:stop", "FOR: 'ever' is not a duration"),
        ("10s+0s:holder.station:stop", "for: Input should be greater than 0"),
        ("10s:holder.station:explode", "fault.operation: Input should be"),
        ("10s:a~b~c:cut", "a link is two ends joined by '~'"),
        ("10s+5s:gp-station~consent:delay", "'delay' needs 'ms'"),
        ("10s+5s:holder.station:stop:ms=5", "only a link fault takes these"),
        ("10s+5s:holder.station:stop:=5", "write NAME=VALUE"),
    ],
)
def test_a_wrong_compact_entry_says_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        parse_fault_option(text)


# --- the schedule, checked before anything starts --------------------------------------------------


def test_the_scenarios_schedule_is_resolved_to_node_names_with_what_undoes_each(write_yaml, network):
    load = """\
load:
  duration: 30s
  faults:
    - {at: 5s, for: 5s, fault: {node: holder.station, operation: stop}}
    - {at: 12, fault: {node: consent.consent, operation: pause}}
    - {at: 3s, fault: {node: gp-trust, operation: restart}}
    - {at: 20s, for: 4s, fault: {link: [requester.station, consent.consent], operation: delay, ms: 200}}
"""
    first, second, third, fourth = planned(write_yaml, network, load)
    assert first.fault.node == "hospital-station" and first.undo == Fault(node="hospital-station", operation="start")
    assert first.given.endswith("file.yaml:10") and first.describe() == "stop hospital-station"
    assert second.lasting is None and second.undo == Fault(node="consent", operation="resume")
    assert third.undo is None  # a restart is over once done
    assert fourth.targets == ["gp-station", "consent"]
    assert fourth.undo == Fault(link=("gp-station", "consent"), operation="heal")
    assert fourth.describe() == "delay gp-station <-> consent by 200 ms"


def test_the_command_line_schedule_replaces_the_scenarios(write_yaml, network):
    load = "load:\n  duration: 20\n  faults: [{at: 5, for: 5, fault: {node: consent, operation: stop}}]\n"
    [only] = planned(write_yaml, network, load, options=["2s+3s:holder.station:pause"])
    assert only.given == "--fault '2s+3s:holder.station:pause'" and only.fault.node == "hospital-station"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            "{at: 5, for: 5, fault: {node: requester.consent, operation: stop}}",
            "fault 1: organisation 'gp' .* no consent",
        ),
        ("{at: 5, for: 5, fault: {node: no-such-node, operation: stop}}", "'no-such-node' is neither a node"),
        ("{at: 30, fault: {node: consent, operation: stop}}", "due at 30 s, when the run of 20 s is over"),
        ("{at: 15, for: 8, fault: {node: consent, operation: stop}}", "ends at 23 s .* after the run's end at 20 s"),
        ("{at: 5, for: 5, fault: {node: consent, operation: start}}", "'start' undoes a fault"),
        ("{at: 5, fault: {node: consent, operation: resume}}", "'resume' undoes a fault"),
        ("{at: 5, for: 5, fault: {link: [gp-station, consent], operation: heal}}", "'heal' undoes a fault"),
        ("{at: 5, fault: {clear: true}}", "'clear' undoes every fault in force"),
        ("{at: 5, for: 5, fault: {node: consent, operation: restart}}", "a restart is over once the node is up"),
        ("{at: 5, for: 5, fault: {link: [harness, consent], operation: cut}}", "a link from the harness"),
        (
            "{at: 2, for: 10, fault: {node: consent, operation: stop}}\n    - "
            "{at: 8, for: 2, fault: {node: consent.consent, operation: pause}}",
            r"fault 2 \(pause consent, 8 s to 10 s\) falls on the same node as fault 1",
        ),
        (
            "{at: 2, fault: {node: consent, operation: pause}}\n"
            "    - {at: 15, fault: {node: consent, operation: restart}}",
            "fault 2 .* falls on the same node as fault 1",
        ),
    ],
)
def test_a_schedule_that_cannot_be_done_is_refused_naming_the_entry(write_yaml, network, entries, message):
    load = f"load:\n  duration: 20\n  faults:\n    - {entries}\n"
    with pytest.raises(ConfigError, match=message) as refused:
        planned(write_yaml, network, load)
    assert "the fault schedule cannot be done" in str(refused.value)
    assert re.search(r"file\.yaml:\d+: fault \d", str(refused.value))  # the file and line of the entry


def test_windows_that_only_touch_are_one_after_the_other(write_yaml, network):
    load = """\
load:
  duration: 20
  faults:
    - {at: 2, for: 3, fault: {node: consent, operation: stop}}
    - {at: 5, for: 3, fault: {node: consent, operation: pause}}
"""
    assert len(planned(write_yaml, network, load)) == 2


def test_a_runtime_without_faults_and_a_node_reached_by_url_are_refused(write_yaml, network, tmp_path):
    load = "load:\n  duration: 20\n  faults: [{at: 5, for: 5, fault: {node: consent, operation: stop}}]\n"
    with pytest.raises(ConfigError, match="the swarm runtime cannot do faults"):
        planned(write_yaml, network, load, runtime="swarm")
    hosted = network.model_copy(deep=True)
    consent = next(node for _, node in hosted.nodes() if node.name == "consent")
    consent.implementation = UrlImplementation(url="https://127.0.0.1:9443")
    loaded = scenario_with(write_yaml, load)
    settings = settings_for(loaded, Overrides())
    with pytest.raises(ConfigError, match=r"node 'consent' is reached by URL \(https://127.0.0.1:9443\)"):
        plan_schedule(loaded, hosted, settings, sources=schedule_sources(loaded, None), runtime="process")


def test_a_wrong_schedule_entry_in_the_scenario_names_its_line(write_yaml):
    load = "load:\n  faults:\n    - {at: -1, fault: {node: consent, operation: stop}}\n"
    with pytest.raises(ConfigError, match=r"file\.yaml:9: load\.faults\[0\]\.at: .*greater than or equal to 0"):
        scenario_with(write_yaml, load)


def test_fault_steps_are_refused_by_a_load_run_which_points_to_the_schedule(tmp_path, write_yaml):
    steps = STEPS + "  - id: stop\n    title: a fault\n    requirements: [STATION-META-01]\n"
    steps += "    fault: {node: consent, operation: stop}\n"
    scenario = write_yaml(HEADER + steps)
    folder = RunFolder(tmp_path / "state", tmp_path / "reports", new_run_id("load"))
    options = LoadOptions(scenario_path=scenario, network_path=None, runtime="process", folder=folder)
    with pytest.raises(ConfigError, match=r"step 'stop' is a fault step.*come from the run's fault schedule"):
        run_load(options)
    assert not (tmp_path / "state").exists()


def test_a_load_run_refuses_a_schedule_it_cannot_do_before_anything_starts(tmp_path, write_yaml):
    scenario = write_yaml(HEADER + "load: {duration: 10}\n" + STEPS)
    folder = RunFolder(tmp_path / "state", tmp_path / "reports", new_run_id("load"))
    options = LoadOptions(
        scenario_path=scenario,
        network_path=None,
        runtime="process",
        folder=folder,
        overrides=Overrides(faults=["8s+5s:holder.station:stop"]),
    )
    with pytest.raises(ConfigError, match=r"--fault '8s\+5s:holder.station:stop': fault 1: its window ends at 13 s"):
        run_load(options)
    assert not (tmp_path / "state").exists()


# --- thresholds inside and outside the fault windows --------------------------------------------


def test_thresholds_inside_and_outside_faults_are_parsed_and_refused_elsewhere():
    assert Threshold.parse("wrong==0", scope="inside_faults").metric == "wrong"
    assert Threshold.parse("rate<1%", scope="outside_faults").limit == pytest.approx(0.01)
    with pytest.raises(ValueError, match="told apart by kind only inside and outside fault windows"):
        Threshold.parse("wrong==0", scope="overall")
    with pytest.raises(ValueError, match="'==' compares counts"):
        Threshold.parse("p(95)==200", scope="inside_faults")
    with pytest.raises(ValueError, match="only a rate can be given in per cent"):
        Threshold.parse("p(95)<5%")
    assert threshold_check_id("outside_faults", "rate<1%") == "outside_faults-rate-lt-1pct"
    assert threshold_check_id("inside_faults", "wrong==0") == "inside_faults-wrong-eq-0"


def test_thresholds_on_fault_windows_need_a_schedule(write_yaml):
    load = "load:\n  thresholds: {inside_faults: ['wrong==0']}\n"
    with pytest.raises(ConfigError, match="inside_faults judge the run inside or outside its fault windows"):
        scenario_with(write_yaml, load)
    with_schedule = scenario_with(write_yaml, "load: {duration: 20}\n")
    settings = settings_for(
        with_schedule, Overrides(faults=["5s+5s:consent:stop"], thresholds=["inside_faults:wrong==0"])
    )
    assert settings.thresholds == {"inside_faults": ["wrong==0"]}


def _window_figures(name: str, *, requests: int, refused: int = 0, wrong: int = 0, p95: float = 40) -> WindowFigures:
    failures = refused + wrong
    return WindowFigures(
        name=name, requests=requests, failures=failures, rps=requests / 5, failure_rate=failures / requests,
        avg_ms=20, min_ms=1, max_ms=90, percentiles_ms={"50": 15, "95": p95}, seconds=5, refused=refused, wrong=wrong,
    )  # fmt: skip


def test_thresholds_are_checked_against_the_requests_inside_and_outside_the_windows():
    inside = _window_figures("inside", requests=100, refused=30, wrong=2)
    outside = _window_figures("outside", requests=200)
    thresholds = [
        ("inside_faults", Threshold.parse("wrong==0", scope="inside_faults")),
        ("inside_faults", Threshold.parse("refused>0", scope="inside_faults")),
        ("outside_faults", Threshold.parse("rate<1%", scope="outside_faults")),
        ("outside_faults", Threshold.parse("p(95)<30", scope="outside_faults")),
    ]
    scoped = {"inside_faults": inside, "outside_faults": outside}
    wrong, refused, rate, latency = perf.check_thresholds(thresholds, None, [], scoped=scoped)
    assert not wrong.passed and wrong.detail == "wrong = 2 (limit == 0): breached by 2"
    assert refused.passed and rate.passed and rate.actual == 0
    assert not latency.passed and "breached by 10 ms" in latency.detail
    [nothing] = perf.check_thresholds(thresholds[:1], None, [], scoped={"inside_faults": None})
    assert not nothing.passed and "no request was recorded inside faults" in nothing.detail


# --- each request's record: its kind, and inside or outside the windows --------------------------


@pytest.mark.parametrize(
    ("status", "content_type", "body", "kind"),
    [
        (0, "", b"", REFUSED),  # no answer: refused, reset, timed out
        (503, "application/fhir+json", b'{"resourceType": "OperationOutcome"}', REFUSED),
        (401, "application/problem+json", b'  {"type": "about:blank"}', REFUSED),
        (500, "application/soap+xml", b"<Envelope/>", REFUSED),
        (502, "text/html", b"<html>Bad Gateway</html>", OTHER),  # an error page says nothing a program reads
        (503, "application/json", b"", OTHER),
        (200, "application/fhir+json", b'{"resourceType": "Patient"}', WRONG),  # served where it should not have
        (302, "", b"", WRONG),
    ],
)
def test_a_failed_request_is_a_clean_refusal_a_wrong_answer_or_other(status, content_type, body, kind):
    assert failure_kind(status, content_type, body) == kind


def test_records_are_written_per_process_and_read_back(tmp_path: Path):
    writer = RecordWriter(tmp_path)
    writer.write(1000.5, 12.34, OK, "read-patient")
    writer.write(1001.0, 3.0, REFUSED, "read-patient")
    writer.flush()
    (tmp_path / "requests-1.csv").write_text("1002.0,5.0,ok,a\n1003.0,cut-short", encoding="utf-8")
    found = list(read_records(tmp_path))
    assert Record(1000.5, 12.3, OK, "read-patient") in found and Record(1002.0, 5.0, OK, "a") in found
    assert len(found) == 3  # the line a stopped process left unfinished is left out


def test_requests_overlapping_a_window_count_inside_it_the_rest_outside():
    began = 1000.0
    records = [
        Record(began + 1.0, 100, OK, "a"),  # well before the window
        Record(began + 4.9, 200, OK, "a"),  # in flight when the fault began: felt it
        Record(began + 6.0, 2, REFUSED, "a"),
        Record(began + 7.0, 3, WRONG, "b"),
        Record(began + 9.0, 3000, REFUSED, "a"),
        Record(began + 12.0, 50, OK, "a"),  # after the fault was undone
        Record(began + 15.5, 20, OTHER, "a"),  # inside the second window
    ]
    windows = [(began + 5.0, began + 10.0), (began + 15.0, began + 16.0)]
    parts = split(records, windows, began=began, ended=began + 20)
    assert (parts.inside.requests, parts.inside.refused, parts.inside.wrong, parts.inside.other) == (5, 2, 1, 1)
    assert parts.inside.failures == 4 and parts.inside.failure_rate == pytest.approx(0.8)
    assert parts.inside.wrong_by_step == {"b": 1} and parts.outside.wrong_by_step == {}
    assert (parts.outside.requests, parts.outside.failures) == (2, 0)
    assert parts.inside.seconds == 6 and parts.outside.seconds == 14
    assert [w.requests for w in parts.windows] == [4, 1]
    assert parts.windows[0].percentiles_ms["50"] == 3 and parts.windows[0].percentiles_ms["95"] == 3000
    assert parts.outside.percentiles_ms["50"] == 50 and parts.outside.percentiles_ms["95"] == 100


def test_the_time_windows_cover_counts_each_moment_once_within_the_load():
    assert covered_seconds([(5, 10), (8, 12), (18, 30)], began=0, ended=20) == 9
    assert covered_seconds([(-5, 2)], began=0, ended=20) == 2
    assert covered_seconds([], began=0, ended=20) == 0


def test_a_fault_run_from_the_records_gives_each_window_held_its_figures(tmp_path: Path):
    writer = RecordWriter(tmp_path)
    for second in range(10):
        writer.write(2000.0 + second + 0.5, 5, REFUSED if 3 <= second < 6 else OK, "a")
    writer.flush()
    held = FaultWindow(entry=1, given="--fault", fault="stop x", operation="stop", at_s=3, for_s=3, start_s=3, end_s=6)
    never = FaultWindow(entry=2, given="--fault", fault="pause y", operation="pause", at_s=8, error="could not be done")
    run = fault_run(tmp_path, [held, never], began=2000.0, seconds=10)
    assert run.inside is not None and run.outside is not None
    assert (run.inside.requests, run.inside.refused, run.outside.requests, run.outside.failures) == (3, 3, 7, 0)
    assert held.figures is not None and held.figures.requests == 3 and never.figures is None
    assert fault_run(tmp_path, [held], began=None, seconds=10).inside is None  # Locust never started


# --- the scheduler, with the runtime stood in for --------------------------------------------------


class Recorder:
    """What the scheduler asks to be done, with when; fails where told."""

    def __init__(self, failing: set[str] | None = None, seconds: float = 0.0):
        self.done: list[tuple[str, str, float]] = []
        self.failing = failing or set()
        self.seconds = seconds
        self.lock = threading.Lock()

    def __call__(self, fault: Fault) -> str:
        time.sleep(self.seconds)
        what = f"{fault.operation} {fault.node or '~'.join(fault.link or ())}"
        if what in self.failing:
            raise RuntimeError(f"{what} failed")
        with self.lock:
            self.done.append((str(fault.operation), str(fault.node), time.time()))
        return f"did {what}"


def _plan(entry: int, at: float, lasting: float | None, node: str, operation: str) -> PlannedFault:
    fault = Fault(node=node, operation=operation)  # type: ignore[arg-type]
    return PlannedFault(entry, "--fault", at, lasting, fault, undo_of(fault) if operation != "restart" else None)


def test_the_scheduler_does_and_undoes_each_fault_at_its_time_and_records_when():
    began = time.time() + 0.1
    schedule = [_plan(1, 0.1, 0.2, "consent", "stop"), _plan(2, 0.15, None, "gp-trust", "restart")]
    step = Recorder()
    with FaultScheduler(schedule, step, began=lambda: began if time.time() >= began else None) as scheduler:
        time.sleep(0.6)
    assert [(op, node) for op, node, _ in step.done] == [
        ("stop", "consent"),
        ("restart", "gp-trust"),
        ("start", "consent"),
    ]
    stop, _, start = (moment - began for _, _, moment in step.done)
    assert 0.09 <= stop < 0.15 and 0.29 <= start < 0.4
    first, second = scheduler.windows
    assert first.start_s is not None and first.end_s is not None and 0.09 <= first.start_s <= first.end_s
    assert first.done == "did stop consent" and first.undone == "did start consent" and first.error is None
    assert second.end_s is not None and second.start_s is not None and second.end_s >= second.start_s
    assert scheduler.timeline() == [(0.1, 0, True), (0.15, 1, True), (0.30000000000000004, 0, False)]


def test_faults_still_in_force_are_undone_on_leaving_also_on_ctrl_c():
    now = time.time()
    schedule = [_plan(1, 0.0, None, "consent", "pause"), _plan(2, 0.0, 30.0, "hospital-station", "stop")]
    step = Recorder()
    with pytest.raises(KeyboardInterrupt), FaultScheduler(schedule, step, began=lambda: now) as scheduler:
        while len(step.done) < 2:
            time.sleep(0.01)
        raise KeyboardInterrupt
    assert [(op, node) for op, node, _ in step.done[2:]] == [("start", "hospital-station"), ("resume", "consent")]
    assert all(w.end_s is not None for w in scheduler.windows)


def test_a_fault_that_cannot_be_done_is_recorded_and_the_rest_goes_on():
    now = time.time()
    schedule = [_plan(1, 0.0, 0.05, "consent", "stop"), _plan(2, 0.05, 0.05, "gp-trust", "pause")]
    step = Recorder(failing={"stop consent"})
    with FaultScheduler(schedule, step, began=lambda: now) as scheduler:
        time.sleep(0.3)
    failed, done = scheduler.windows
    assert failed.error == "could not be done: stop consent failed" and failed.start_s is None
    assert [(op, node) for op, node, _ in step.done] == [("pause", "gp-trust"), ("resume", "gp-trust")]
    assert done.error is None and done.end_s is not None


def test_nothing_is_done_when_the_load_never_began():
    step = Recorder()
    with FaultScheduler([_plan(1, 0.0, 1.0, "consent", "stop")], step, began=lambda: None) as scheduler:
        time.sleep(0.1)
    assert step.done == [] and scheduler.windows[0].start_s is None


# --- the report: windows marked on every time chart, figures inside and outside ------------------


def fault_results():
    results = load_results()
    perf_ = results.performance
    assert isinstance(perf_, Performance)
    window = FaultWindow(
        entry=1, given="--fault '3s+3s:holder.station:stop'", fault="stop hospital-station", operation="stop",
        targets=["hospital-station"], at_s=3, for_s=3, start_s=3.01, end_s=6.5, done="stop hospital-station at …",
        undone="start hospital-station at …", figures=_window_figures("window 1", requests=50, refused=20),
    )  # fmt: skip
    perf_.faults = FaultRun(
        windows=[window],
        inside=_window_figures("inside", requests=50, refused=20, wrong=2).model_copy(
            update={"wrong_by_step": {"audit-log-names-requester": 2}}
        ),
        outside=_window_figures("outside", requests=250, p95=35),
    )
    return results


def test_every_time_chart_marks_the_fault_windows_with_a_labelled_band():
    results = fault_results()
    assert results.performance is not None
    charts = performance_charts(results.performance)
    for chart in charts:
        [band] = [s for s in chart.figure["layout"]["shapes"] if s.get("name") == "fault 1"]
        assert (band["x0"], band["x1"], band["type"]) == (3.01, 6.5, "rect")
        assert band["label"]["text"] == "fault 1: stop hospital-station"


def test_the_html_and_the_terminal_give_the_figures_inside_and_outside_the_windows():
    results = fault_results()
    html = render_html(results)
    assert 'id="load-faults"' in html and "inside fault windows" in html and "outside fault windows" in html
    assert "3.0 to 6.5 s" in html and "fault 1: stop hospital-station" in html
    console = Console(record=True, width=200)
    print_load_summary(console, results)
    text = console.export_text()
    assert re.search(r"inside faults\s+5s\s+50\s+22\s+44\.00%\s+20\s+2", text)
    assert "wrong answers inside fault windows, by step: audit-log-names-requester 2" in text
    assert re.search(
        r"Wrong answers inside fault windows, by step:\s*<span class=\"mono\">audit-log-names-requester", html
    )
    assert re.search(r"fault 1: stop hospital-station\s+3\.0 s to 6\.5 s\s+50", text)


def test_a_run_without_faults_has_no_fault_marks_or_section():
    results = load_results()
    assert results.performance is not None
    assert all(
        not any(s.get("name", "").startswith("fault") for s in c.figure["layout"]["shapes"])
        for c in performance_charts(results.performance)
    )
    assert 'id="load-faults"' not in render_html(results)


def test_the_results_schema_has_the_fault_windows():
    schema = json.loads((Path(__file__).parents[2] / "testbed" / "schemas" / "results.schema.json").read_text())
    assert {"FaultRun", "FaultWindow", "WindowFigures"} <= set(schema["$defs"])
