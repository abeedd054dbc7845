"""`testbed diff`: what counts as a regression (exit 1), what does not (exit 0), and bad input
(exit 2)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.errors import ConfigError
from testbed.publish.diff import diff_runs, load_run, render_text
from testbed.report.json_report import write_results_json
from testbed.report.model import Outcome, Performance, RequestFigures, RunResults, Verdict
from tests.conftest import ROOT
from tests.unit.test_report_writers import make_results

SUITE = "sha256:" + "1" * 64


def run(**changes: object) -> RunResults:
    """The writers' sample run with every check passed and every requirement tested, changed as asked."""
    results = make_results()
    for _, check in results.all_checks():
        check.outcome, check.message = Outcome.PASSED, ""
    for requirement in results.requirements:
        requirement.outcome = Outcome.PASSED if requirement.checks else None
    results.verdict, results.exit_code, results.suite_version = Verdict.PASSES, 0, SUITE
    for name, value in changes.items():
        setattr(results, name, value)
    return results


def check(results: RunResults, check_id: str):
    return next(c for _, c in results.all_checks() if c.id == check_id)


def compare(a: RunResults, b: RunResults, **options: float):
    return diff_runs((Path("a/results.json"), a), (Path("b/results.json"), b), **options)


def test_identical_runs_have_no_regression() -> None:
    diff = compare(run(), run())
    assert diff.like_for_like and not diff.regressions and diff.exit_code == 0
    assert render_text(diff)[-1] == "no regression"


def test_a_new_failure_is_a_regression_named_with_its_reason() -> None:
    after = run(verdict=Verdict.FAILS)
    failing = check(after, "introspect-expired")
    failing.outcome, failing.message = Outcome.FAILED, "json $.active: expected false, got true\nmore"
    diff = compare(run(), after)
    assert [c.check for c in diff.new_failures] == ["token-introspection/introspect-expired"]
    assert diff.exit_code == 1
    assert diff.regressions == [
        "verdict passes -> fails",
        "new failure: token-introspection/introspect-expired (was passed): json $.active: expected false, got true",
    ]
    text = "\n".join(render_text(diff))
    assert "new failures (1):\n  token-introspection/introspect-expired: passed -> failed" in text


def test_a_fixed_check_is_listed_and_is_no_regression() -> None:
    before = run(verdict=Verdict.FAILS)
    check(before, "subscribe").outcome = Outcome.ERROR
    diff = compare(before, run())
    assert [c.check for c in diff.fixed] == ["consent-check/subscribe"] and diff.exit_code == 0


def test_a_new_error_and_an_expected_failure() -> None:
    after = run()
    check(after, "subscribe").outcome = Outcome.ERROR
    expected = check(after, "use-token")
    expected.outcome, expected.xfail = Outcome.FAILED, {"NUTS-AUTH-003": "declared in the registry"}
    diff = compare(run(), after)
    assert [c.check for c in diff.new_errors] == ["consent-check/subscribe"]
    assert [c.check for c in diff.expected_failures] == ["token-introspection/use-token"] and not diff.new_failures
    assert diff.regressions == ["new error: consent-check/subscribe (was passed): no message"]


def test_a_changed_suite_version_says_the_runs_are_not_like_for_like() -> None:
    after = run(suite_version="sha256:" + "2" * 64)
    removed = after.scenarios[1].checks.pop()  # the suite changed: a check is gone
    diff = compare(run(), after)
    assert not diff.like_for_like and [c.check for c in diff.removed] == [f"consent-check/{removed.id}"]
    assert any("not like for like" in line for line in render_text(diff))
    assert not compare(run(suite_version=""), run(suite_version="")).like_for_like  # unknown is not the same


def test_losing_the_coverage_of_a_must_is_a_regression_and_of_a_should_is_not() -> None:
    after = run()
    for requirement in after.requirements:
        if requirement.id in ("MITZ-001", "NUTS-AUTH-004"):
            requirement.outcome = Outcome.SKIPPED
    diff = compare(run(), after)
    assert {c.requirement for c in diff.coverage_lost} == {"MITZ-001", "NUTS-AUTH-004"}
    assert diff.regressions == ["no longer tested: MUST requirement MITZ-001 (was passed)"]
    assert {c.requirement for c in compare(after, run()).coverage_gained} == {"MITZ-001", "NUTS-AUTH-004"}


def figures(p95: float, rps: float, failure_rate: float = 0.0, name: str = "overall") -> RequestFigures:
    return RequestFigures(
        name=name,
        requests=1000,
        failures=int(failure_rate * 1000),
        rps=rps,
        failure_rate=failure_rate,
        avg_ms=p95 / 2,
        min_ms=1,
        max_ms=p95 * 2,
        percentiles_ms={"50": p95 / 3, "95": p95, "99": p95 * 1.5},
    )


def measured(p95: float, rps: float, failure_rate: float = 0.0) -> RunResults:
    overall = figures(p95, rps, failure_rate)
    step = figures(p95, rps, failure_rate, name="read")
    performance = Performance(users=10, spawn_rate=5, duration_s=30, workers=0, overall=overall, steps=[step])
    return run(kind="load", performance=performance)


@pytest.mark.parametrize(
    ("after", "worse"),
    [
        (measured(p95=105, rps=98), set()),  # within 10%
        (measured(p95=150, rps=100), {"avg_ms", "p50_ms", "p95_ms", "p99_ms"}),
        (measured(p95=100, rps=80), {"rps"}),
        (measured(p95=100, rps=100, failure_rate=0.03), {"failure_rate"}),  # 3 points > 1
    ],
)
def test_load_figures_beyond_the_tolerance(after: RunResults, worse: set[str]) -> None:
    diff = compare(measured(p95=100, rps=100), after)
    assert {d.metric for d in diff.performance if d.worse} == worse
    assert {d.scope for d in diff.performance} <= {"overall", "read"}
    assert diff.exit_code == (1 if worse else 0)


def test_the_tolerance_is_an_option_and_improvements_are_no_regression() -> None:
    assert compare(measured(p95=100, rps=100), measured(p95=150, rps=100), tolerance=60).exit_code == 0
    faster = compare(measured(p95=100, rps=100), measured(p95=50, rps=200))
    assert faster.performance and not any(d.worse for d in faster.performance) and faster.exit_code == 0


def test_a_run_folder_or_its_results_file_is_read_and_anything_else_refused(tmp_path: Path) -> None:
    write_results_json(run(), tmp_path / "run" / "results.json")
    assert load_run(tmp_path / "run")[1].run_id == load_run(tmp_path / "run" / "results.json")[1].run_id
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "other.json").write_text(json.dumps({"hello": "world"}), encoding="utf-8")
    for given, expected in [
        (tmp_path / "empty", "holds no results.json"),
        (tmp_path / "nowhere", "no such run folder or results file"),
        (tmp_path / "bad.json", "not a readable results file"),
        (tmp_path / "other.json", "not a testbed results file (run_id: Field required)"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(expected)):
            load_run(given)
    with pytest.raises(ConfigError, match=r"is a conformance run and .* a load run"):
        compare(run(), measured(p95=1, rps=1))


def test_the_command_exits_1_on_a_regression_0_without_and_2_on_bad_input(tmp_path: Path) -> None:
    write_results_json(run(), tmp_path / "a" / "results.json")
    failing = run(verdict=Verdict.FAILS)
    check(failing, "lookup-consent").outcome = Outcome.FAILED
    write_results_json(failing, tmp_path / "b" / "results.json")

    def diff(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "testbed.cli", "diff", *args]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, env=dict(os.environ))

    regressed = diff(str(tmp_path / "a"), str(tmp_path / "b"))
    assert regressed.returncode == 1 and "new failure: consent-check/lookup-consent" in regressed.stdout
    as_json = json.loads(diff(str(tmp_path / "b"), str(tmp_path / "a"), "--json").stdout)
    assert as_json["exit_code"] == 0 and [c["check"] for c in as_json["fixed"]] == ["consent-check/lookup-consent"]
    broken = diff(str(tmp_path / "a"), str(tmp_path / "missing"))
    assert broken.returncode == 2 and "no such run folder or results file" in broken.stderr
