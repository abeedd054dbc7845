"""What a reader of each format sees first: the failure named before anything else, one
coverage figure everywhere, bodies readable, requests replayable, patterns as written, and
the terminal's recap and verdict at its very end."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from rich.console import Console

from testbed.report.counts import coverage, problems, requirements_covered
from testbed.report.html import curl_command, pretty_body, render_html, show_value
from testbed.report.model import HttpRequestRecord, Outcome, RunResults
from testbed.report.summary import summary_markdown
from testbed.report.terminal import print_summary
from testbed.report.writers import write_all
from tests.unit.test_report_writers import make_results


def _terminal(results: RunResults, tmp_path: Path, width: int = 100_000) -> list[str]:
    console = Console(record=True, width=width, color_system=None)
    print_summary(console, results, tmp_path)
    return console.export_text().rstrip("\n").splitlines()


def _with_skipped_requirement() -> RunResults:
    """A requirement whose only check was skipped: tested by nothing, in every format."""
    results = make_results()
    results.requirements[2].outcome = Outcome.SKIPPED  # NUTS-AUTH-003, the skipped check's
    results.requirements[2].checks = ["token-introspection/use-token"]
    return results


def test_a_skipped_check_tests_no_requirement() -> None:
    results = _with_skipped_requirement()
    assert requirements_covered(results.requirements) == 5
    assert str(coverage(results)) == "5 of 7"


def test_every_format_shows_the_same_coverage(tmp_path: Path) -> None:
    results = _with_skipped_requirement()
    results.summary.requirements_covered = requirements_covered(results.requirements)  # as the harness fills it
    paths = write_all(results, tmp_path)
    figure = "5 of 7"
    assert json.loads(paths["results.json"].read_text())["summary"]["requirements_covered"] == 5
    assert f"{figure} requirements tested" in paths["summary.md"].read_text()
    html = paths["report.html"].read_text()
    assert ">5 / 7</div>requirements tested" in html and f"Coverage ({figure})" in html
    assert any(f"covered {figure} requirements" in line for line in _terminal(results, tmp_path))
    # The skipped-only requirement is listed as untested, not as tested.
    assert "NUTS-AUTH-003" in summary_markdown(results).split("Requirements not tested in this run:")[1]


def test_html_names_the_failure_before_the_requirement_table() -> None:
    results = make_results()
    html = render_html(results)
    table = html.index('id="requirements"')
    for problem in problems(results):
        assert html.index(problem.ref) < table
        assert html.index(problem.reason) < table
    # The verdict links its first failure, and the list links each failure's evidence.
    assert 'href="#check-token-introspection--introspect-expired-evidence"' in html[: html.index('id="summary"')]
    assert html.index('id="problems"') < html.index('id="scenarios"') < table < html.index('id="run-details"')


def test_requirement_ids_link_to_their_statements_shown_beside_failures() -> None:
    html = render_html(make_results())
    assert 'id="req-NUTS-AUTH-002"' in html and 'href="#req-NUTS-AUTH-002"' in html
    problems_section = html[html.index('id="problems"') : html.index('id="scenarios"')]
    assert "Statement of NUTS-AUTH-002" in problems_section and "Statement of NUTS-AUTH-004" in problems_section


def test_html_has_filters_by_outcome_role_and_requirement() -> None:
    html = render_html(make_results())
    form = html[html.index('<form class="filters"') : html.index("</form>")]
    assert {"passed", "failed", "error", "skipped"} <= set(re.findall(r'name="outcome" value="(\w+)"', form))
    assert 'name="role"' in form and '<option value="authorization-server">' in form
    assert 'name="requirement"' in form
    assert 'data-outcome="failed"' in html and 'data-reqs="NUTS-AUTH-002 NUTS-AUTH-004"' in html


def test_html_bodies_are_indented_and_the_exact_bytes_stay_available() -> None:
    html = render_html(make_results())
    assert "{\n  &#34;active&#34;: true," in html  # the JSON body, indented (and escaped)
    assert "as recorded" in html


def test_pretty_body_reads_json_and_xml_and_leaves_the_rest() -> None:
    assert pretty_body('{"a":[1,2]}', {"Content-Type": "application/fhir+json"}) == '{\n  "a": [\n    1,\n    2\n  ]\n}'
    xml = pretty_body("<a><b>x</b></a>", {"content-type": "application/soap+xml"})
    assert xml == "<a>\n  <b>x</b>\n</a>"
    assert pretty_body("plain words", {"content-type": "text/plain"}) is None
    assert pretty_body('{"broken": ', {"content-type": "application/json"}) is None
    assert pretty_body("<a><b></a>", {}) is None  # not well-formed: shown as recorded


def test_pretty_body_never_expands_entities() -> None:
    hostile = '<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>'
    shown = pretty_body(hostile, {"content-type": "application/xml"})
    assert shown is None or "root:" not in shown


def test_curl_command_replays_the_request_in_a_shell() -> None:
    request = HttpRequestRecord(
        method="POST",
        url="https://127.0.10.3:8443/fhir/Patient?name=o'brien",
        headers={"content-type": "application/json", "content-length": "12", "authorization": "Bearer a b"},
        body='{"x": "it\'s"}',
    )
    words = shlex.split(curl_command(request))
    assert words[:5] == ["curl", "-sS", "-X", "POST", request.url]
    assert words[words.index("authorization: Bearer a b") - 1 :][:2] == ["-H", "authorization: Bearer a b"]
    assert "content-length: 12" not in words
    assert words[-2:] == ["--data-binary", request.body]
    assert 'data-for="check-token-introspection--introspect-expired-curl"' in render_html(make_results())


def test_patterns_are_shown_once_escaped() -> None:
    from testbed.report.model import ExpectationResult
    from testbed.scenario.engine import _describe

    assert show_value("matches /application/soap\\+xml/") == '"matches /application/soap\\+xml/"'
    assert show_value(200) == "200" and show_value("200") == '"200"'
    described = _describe(
        ExpectationResult(what="header content-type", expected="matches /soap\\+xml/", actual="text/html", passed=False)
    )
    assert "soap\\+xml" in described and "soap\\\\+xml" not in described


def test_terminal_ends_with_the_failures_and_the_verdict(tmp_path: Path) -> None:
    results = make_results()
    lines = _terminal(results, tmp_path)
    assert lines[-1].startswith("fails: Does not conform")
    recap = lines[-3:-1]
    assert recap[0].startswith("✗ FAILED token-introspection/introspect-expired [NUTS-AUTH-002, NUTS-AUTH-004]")
    assert recap[0].endswith("- json $.active: expected false, got true")
    assert recap[1].startswith("! ERROR consent-check/subscribe") and "connection refused by mitz" in recap[1]


def test_a_passing_run_ends_with_its_verdict_and_no_recap(tmp_path: Path) -> None:
    results = make_results()
    for _, check in results.all_checks():
        check.outcome, check.message = Outcome.PASSED, ""
    lines = _terminal(results, tmp_path)
    assert not any("failed and errored checks" in line for line in lines)
    assert lines[-1].startswith(f"{results.verdict.value}:")


def test_terminal_output_is_not_wrapped_when_not_on_a_terminal(tmp_path: Path) -> None:
    """The CLI's console outside a terminal (a CI log, a pipe) is as wide as its longest line."""
    from testbed.cli import _console

    console = _console(stderr=False)
    assert console.width >= 10_000 or console.is_terminal
    results = make_results()
    long_message = "expected " + "x" * 300
    results.scenarios[0].checks[1].message = long_message
    lines = _terminal(results, tmp_path, width=console.width)
    assert any(line.endswith(long_message) for line in lines)


def test_phases_are_shown_when_recorded(tmp_path: Path) -> None:
    results = make_results()
    results.phases = {"plan": 0.1, "start": 2.5, "replay": 4.0}
    lines = _terminal(results, tmp_path)
    assert "time: plan 0.1 s, start 2.5 s, replay 4.0 s" in lines
