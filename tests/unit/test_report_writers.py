"""The report writers: results.json, its schema, JUnit XML, the HTML report and the terminal.

One run is built in code (two scenarios, every outcome, evidence on the failures, some
requirements untested), and each format is checked for what a reader of it relies on.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from rich.console import Console

from testbed.report.html import render_html, write_html
from testbed.report.json_report import (
    results_json_schema,
    write_results_json,
    write_results_schema,
)
from testbed.report.junit import write_junit
from testbed.report.model import (
    CheckResult,
    Evidence,
    ExpectationResult,
    HttpRequestRecord,
    HttpResponseRecord,
    ImplementationInfo,
    InputFile,
    Level,
    MachineInfo,
    Outcome,
    RequirementCoverage,
    RunResults,
    ScenarioResult,
    Summary,
    Verdict,
)
from testbed.report.terminal import print_check, print_summary
from testbed.report.writers import write_all

COMMITTED_SCHEMA = Path(__file__).resolve().parents[2] / "testbed" / "schemas" / "results.schema.json"

T0 = datetime(2025, 3, 4, 10, 0, 0, tzinfo=UTC)
INTROSPECT_URL = "http://127.0.0.1:18081/internal/auth/v2/accesstoken/introspect"
HOSTILE_BODY = '{"active": true, "note": "<script>alert(1)</script>"}'
LOG_TAIL = [
    "2025-03-04T10:00:01Z INFO introspection request received",
    "2025-03-04T10:00:01Z WARN token exp in the past, still reported active",
    "\x1b[31mERROR\x1b[0m terminal colour codes survive into the log",
]
ERROR_LOG = ["mitz-stub: listening on 127.0.0.1:18090", "mitz-stub: worker crashed"]


def _check(
    check_id: str,
    outcome: Outcome,
    requirements: list[str],
    offset_s: int,
    message: str = "",
    evidence: Evidence | None = None,
) -> CheckResult:
    return CheckResult(
        id=check_id,
        title=f"Title of {check_id}",
        requirements=requirements,
        outcome=outcome,
        message=message,
        started=T0 + timedelta(seconds=offset_s),
        duration_ms=125.0 + offset_s,
        evidence=evidence or Evidence(),
    )


def _failed_evidence() -> Evidence:
    return Evidence(
        request=HttpRequestRecord(
            method="POST",
            url=INTROSPECT_URL,
            headers={"content-type": "application/x-www-form-urlencoded"},
            body="token=eyJhbGciOiJFUzI1NiJ9.expired",
        ),
        response=HttpResponseRecord(
            status=200,
            headers={"content-type": "application/json"},
            body=HOSTILE_BODY,
            elapsed_ms=12.5,
        ),
        expectations=[
            ExpectationResult(what="status", expected=200, actual=200, passed=True),
            ExpectationResult(what="json $.active", expected=False, actual=True, passed=False),
        ],
        node="nuts-a",
        node_log_tail=LOG_TAIL,
    )


def _error_evidence() -> Evidence:
    return Evidence(
        request=HttpRequestRecord(method="GET", url="http://127.0.0.1:18090/subscriptions"),
        node="mitz",
        node_log_tail=ERROR_LOG,
    )


def _requirement(req_id: str, level: Level, outcome: Outcome | None, checks: list[str]):
    return RequirementCoverage(
        id=req_id,
        role="authorization-server",
        level=level,
        statement=f"Statement of {req_id}",
        source="Nuts RFC021 section 4",
        outcome=outcome,
        checks=checks,
    )


def make_results(error: str | None = None) -> RunResults:
    token = ScenarioResult(
        name="token-introspection",
        file="scenarios/token-introspection.yaml",
        sha256="a" * 64,
        description="An expired access token must be reported inactive.",
        checks=[
            _check("issue-token", Outcome.PASSED, ["NUTS-AUTH-001"], 0),
            _check(
                "introspect-expired",
                Outcome.FAILED,
                ["NUTS-AUTH-002", "NUTS-AUTH-004"],
                1,
                message="json $.active: expected false, got true",
                evidence=_failed_evidence(),
            ),
            _check(
                "use-token",
                Outcome.SKIPPED,
                ["NUTS-AUTH-003"],
                2,
                message="an earlier step did not deliver a token",
            ),
        ],
    )
    consent = ScenarioResult(
        name="consent-check",
        file="scenarios/consent-check.yaml",
        sha256="b" * 64,
        checks=[
            _check("lookup-consent", Outcome.PASSED, ["MITZ-001"], 3),
            _check(
                "subscribe",
                Outcome.ERROR,
                ["MITZ-002"],
                4,
                message="connection refused by mitz",
                evidence=_error_evidence(),
            ),
        ],
    )
    requirements = [
        _requirement("NUTS-AUTH-001", Level.MUST, Outcome.PASSED, ["token-introspection/issue-token"]),
        _requirement("NUTS-AUTH-002", Level.MUST, Outcome.FAILED, ["token-introspection/introspect-expired"]),
        _requirement("NUTS-AUTH-003", Level.SHOULD, None, []),
        _requirement("NUTS-AUTH-004", Level.MAY, Outcome.FAILED, ["token-introspection/introspect-expired"]),
        _requirement("MITZ-001", Level.MUST, Outcome.PASSED, ["consent-check/lookup-consent"]),
        _requirement("MITZ-002", Level.MUST, Outcome.ERROR, ["consent-check/subscribe"]),
        _requirement("MITZ-003", Level.SHOULD, None, []),
    ]
    return RunResults(
        run_id="run-20250304-100000-abcd",
        harness_version="0.1.0",
        git_revision="0123456789abcdef",
        started=T0,
        finished=T0 + timedelta(seconds=9),
        runtime="local-processes",
        seed="42",
        network=InputFile(path="networks/two-nodes.yaml", sha256="c" * 64),
        scenario_files=[
            InputFile(path=token.file, sha256=token.sha256),
            InputFile(path=consent.file, sha256=consent.sha256),
        ],
        implementations=[
            ImplementationInfo(
                node="nuts-a",
                role="authorization-server",
                organisation="Hospital A",
                kind="reference",
                public_url="http://127.0.0.1:18080",
                internal_url="http://127.0.0.1:18081",
                version="6.0.1",
            ),
            ImplementationInfo(
                node="mitz",
                role="consent-registry",
                organisation="Mitz stub",
                kind="url",
                public_url="https://mitz.test.example",
                internal_url="https://mitz.test.example",
            ),
        ],
        machine=MachineInfo(platform="Linux-6.1-x86_64", python="3.11.9", cpus=8),
        scenarios=[token, consent],
        requirements=requirements,
        summary=Summary(
            total=5,
            passed=2,
            failed=1,
            skipped=1,
            error=1,
            must_failed=1,
            requirements_total=7,
            requirements_covered=5,
        ),
        verdict=Verdict.ERROR if error else Verdict.FAILS,
        exit_code=2 if error else 1,
        error=error,
    )


@pytest.fixture
def results() -> RunResults:
    return make_results()


# --- results.json and its schema -------------------------------------------------------


def test_results_json_round_trips(results: RunResults, tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    write_results_json(results, path)

    text = path.read_text(encoding="utf-8")
    assert RunResults.model_validate_json(text) == results
    assert text.startswith("{\n  ")  # indented for people and diffs


def test_results_json_validates_against_committed_schema(results: RunResults, tmp_path: Path) -> None:
    schema = json.loads(COMMITTED_SCHEMA.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)

    path = tmp_path / "results.json"
    write_results_json(results, path)
    document = json.loads(path.read_text(encoding="utf-8"))
    assert list(validator.iter_errors(document)) == []

    # The schema constrains something: a document without a run id or with an unknown
    # outcome is rejected.
    del document["run_id"]
    document["scenarios"][0]["checks"][0]["outcome"] = "maybe"
    messages = [error.message for error in validator.iter_errors(document)]
    assert any("run_id" in message for message in messages)
    assert any("maybe" in message for message in messages)


def test_committed_schema_is_current(tmp_path: Path) -> None:
    # If this fails, regenerate: python -m testbed.report.json_report
    committed = json.loads(COMMITTED_SCHEMA.read_text(encoding="utf-8"))
    assert committed == results_json_schema()

    regenerated = tmp_path / "results.schema.json"
    write_results_schema(regenerated)
    assert regenerated.read_text(encoding="utf-8") == COMMITTED_SCHEMA.read_text(encoding="utf-8")


def test_schema_identifies_itself() -> None:
    schema = results_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == "https://health-network-testbed.example/schemas/results-1.1.json"
    assert schema["title"]


# --- junit.xml ---------------------------------------------------------------------------


def _junit(results: RunResults, tmp_path: Path) -> ET.Element:
    path = tmp_path / "junit.xml"
    write_junit(results, path)
    return ET.parse(path).getroot()


def _child(root: ET.Element, check_id: str, tag: str) -> ET.Element:
    found = root.find(f".//testcase[@name='{check_id}: Title of {check_id}']/{tag}")
    assert found is not None, f"{check_id} has no <{tag}>"
    return found


def _marked(cases: list[ET.Element], tag: str) -> int:
    return sum(1 for case in cases if case.find(tag) is not None)


def test_junit_counts_match_children(results: RunResults, tmp_path: Path) -> None:
    root = _junit(results, tmp_path)
    assert root.tag == "testsuites" and root.attrib == {}  # the Ant schema gives it no attributes

    suites = root.findall("testsuite")
    assert [suite.get("name") for suite in suites] == ["token-introspection", "consent-check"]
    assert [(suite.get("id"), suite.get("package")) for suite in suites] == [
        ("0", "token-introspection"),
        ("1", "consent-check"),
    ]
    for suite in suites:
        cases = suite.findall("testcase")
        assert int(suite.attrib["tests"]) == len(cases)
        assert int(suite.attrib["failures"]) == _marked(cases, "failure")
        assert int(suite.attrib["errors"]) == _marked(cases, "error")
        assert int(suite.attrib["skipped"]) == _marked(cases, "skipped")

    totals = [sum(int(suite.attrib[name]) for suite in suites) for name in ("tests", "failures", "errors", "skipped")]
    assert totals == [5, 1, 1, 1]
    assert sum(float(suite.attrib["time"]) for suite in suites) == pytest.approx(sum(125 + s for s in range(5)) / 1000)
    # UTC, whole seconds, no zone: the Ant schema's timestamp
    assert suites[0].get("timestamp") == T0.replace(tzinfo=None).isoformat()


def test_junit_one_testcase_per_check_with_requirements(results: RunResults, tmp_path: Path) -> None:
    root = _junit(results, tmp_path)
    cases = root.findall("./testsuite/testcase")
    expected = [(s.name, f"{c.id}: {c.title}", c.requirements) for s, c in results.all_checks()]
    actual = [
        (
            case.get("classname"),
            case.get("name"),
            (_suite_properties(root, case.get("classname") or "")[f"requirements:{_check_id(case)}"] or "").split(),
        )
        for case in cases
    ]
    assert actual == expected
    assert all(case.find("properties") is None for case in cases)  # the Ant schema has none on a case


def _check_id(case: ET.Element) -> str:
    return (case.get("name") or "").split(":")[0]


def _suite_properties(root: ET.Element, suite_name: str) -> dict[str | None, str | None]:
    suite = root.find(f"testsuite[@name='{suite_name}']")
    assert suite is not None
    return {p.get("name"): p.get("value") for p in suite.findall("./properties/property")}


def test_junit_failure_explains_expectations(results: RunResults, tmp_path: Path) -> None:
    root = _junit(results, tmp_path)
    failure = _child(root, "introspect-expired", "failure")
    assert failure.get("type") == "AssertionError"
    assert failure.get("message") == "json $.active: expected false, got true"
    assert "json $.active: expected false, actual true" in (failure.text or "")
    assert "response status: 200" in (failure.text or "")
    assert "requirements: " in (failure.text or "")
    assert "status: expected" not in (failure.text or "")  # passed expectations are not listed

    error = _child(root, "subscribe", "error")
    assert error.get("message") == "connection refused by mitz"
    skipped = _child(root, "use-token", "skipped")
    assert skipped.get("message") == "an earlier step did not deliver a token"


def test_junit_suite_properties_and_unsafe_characters(results: RunResults, tmp_path: Path) -> None:
    # The log tail holds ANSI escape characters, which XML 1.0 cannot carry; the file must
    # still parse (checked by _junit) and keep the readable part of the line.
    root = _junit(results, tmp_path)
    for suite in root.findall("testsuite"):
        props = {p.get("name"): p.get("value") for p in suite.findall("./properties/property")}
        assert props["run_id"] == results.run_id
        assert props["harness_version"] == results.harness_version
    out = root.find("testsuite[@name='token-introspection']/system-out")
    assert out is not None and root.find("testsuite/testcase/system-out") is None
    text = out.text or ""
    assert "[introspect-expired] " in text  # each line says which check's node log it is
    assert "token exp in the past" in text
    assert "terminal colour codes survive" in text
    assert "\x1b" not in text


# --- report.html ---------------------------------------------------------------------------


class _Page(HTMLParser):
    """Collects what a reader of the page sees: table rows, <pre> blocks and all tags."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.rows: list[tuple[str | None, list[str]]] = []  # (tr class, cell texts)
        self.pres: list[str] = []
        self._row: list[str] | None = None
        self._row_class: str | None = None
        self._cell: list[str] | None = None
        self._pre: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "tr":
            self._row, self._row_class = [], dict(attrs).get("class")
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "pre":
            self._pre = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append((self._row_class, self._row))
            self._row = None
        elif tag == "pre" and self._pre is not None:
            self.pres.append("".join(self._pre))
            self._pre = None

    def handle_data(self, data: str) -> None:
        for sink in (self._cell, self._pre):
            if sink is not None:
                sink.append(data)

    def row_starting(self, first_cell: str) -> tuple[str | None, list[str]]:
        return next(row for row in self.rows if row[1] and row[1][0] == first_cell)


def _page(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


def test_html_is_self_contained(results: RunResults, tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    write_html(results, path)
    html = path.read_text(encoding="utf-8")
    page = _page(html)

    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert "<link" not in html.lower()
    # Only the report's own inline scripts (filters, links, copy-as-curl): none loads a file, and
    # the hostile body's script is escaped, not run.
    assert not re.search(r"<script[^>]*\bsrc\s*=", html, re.IGNORECASE)
    assert html.lower().count("<script") == 1 and "<script>alert(1)" not in html
    for _tag, attrs in page.tags:
        for name in ("src", "href"):
            value = attrs.get(name)
            assert value is None or value.startswith("#"), (name, value)


def test_html_shows_evidence_of_failed_check_escaped(results: RunResults) -> None:
    html = render_html(results)
    page = _page(html)

    assert INTROSPECT_URL in html
    assert HOSTILE_BODY in page.pres  # shown exactly, as text inside a <pre>
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    log = next(pre for pre in page.pres if LOG_TAIL[0] in pre)
    assert log.splitlines()[:2] == LOG_TAIL[:2]
    assert "\n".join(ERROR_LOG) in page.pres  # the error check has evidence too

    # Expectation rows are the 4-cell rows; only the failing one is highlighted.
    expectations = [(cls, cells) for cls, cells in page.rows if len(cells) == 4]
    assert ("row-failed", ["json $.active", "false", "true", "NO"]) in expectations
    assert [cells[0] for cls, cells in expectations if cls == "row-failed"] == ["json $.active"]


def test_html_evidence_open_for_failed_and_error_folded_for_the_rest(results: RunResults) -> None:
    details = {
        attrs.get("id"): "open" in attrs
        for tag, attrs in _page(render_html(results)).tags
        if tag == "details" and (attrs.get("id") or "").endswith("-evidence")
    }
    assert details["check-token-introspection--introspect-expired-evidence"] is True
    assert details["check-consent-check--subscribe-evidence"] is True
    assert details["check-token-introspection--use-token-evidence"] is False
    assert details["check-token-introspection--issue-token-evidence"] is False


def test_html_requirements_and_scenarios(results: RunResults) -> None:
    page = _page(render_html(results))

    untested = page.row_starting("MITZ-003")
    assert untested[0] == "row-untested"
    assert "not tested" in untested[1]
    assert "failed" in page.row_starting("NUTS-AUTH-002")[1]

    skipped_cls, skipped = page.row_starting("skipped")
    assert skipped_cls == "row-skipped"  # skipped checks are coloured apart from failures
    assert skipped[1:3] == ["use-token", "Title of use-token"]
    assert skipped[5] == "an earlier step did not deliver a token"
    failed_cls, failed = page.row_starting("failed")
    assert failed_cls == "row-failed"
    assert failed[1:4] == [
        "introspect-expired",
        "Title of introspect-expired",
        "NUTS-AUTH-002, NUTS-AUTH-004",
    ]


def test_html_header_summary_and_run_error(results: RunResults) -> None:
    html = render_html(results)
    for fragment in (
        results.run_id,
        "local-processes",
        "0123456789abcdef",
        "networks/two-nodes.yaml",
        "c" * 64,
        "scenarios/consent-check.yaml",
        "Does not conform",
        "1 check(s) of a MUST requirement failed",
        "Hospital A",
        "not reported",  # the mitz node reported no version
    ):
        assert fragment in html
    assert 'role="img"' in html and "<rect" in html
    assert "stopped with a harness or environment error" not in html
    assert html.index('id="verdict"') < html.index("Run id")  # the verdict comes first

    broken = render_html(make_results(error="network file: node <nuts-a> did not start"))
    assert "stopped with a harness or environment error" in broken
    assert "node &lt;nuts-a&gt; did not start" in broken
    assert broken.index("did not start") < broken.index('id="summary"')
    # An error is never shown in green, and the implementations are listed all the same.
    assert 'class="alert alert-ok"' not in broken and "Every MUST check passed" not in broken
    assert "Hospital A" in broken


# --- terminal ------------------------------------------------------------------------------


def test_terminal_check_lines(results: RunResults) -> None:
    console = Console(record=True, width=120, color_system=None)
    for scenario, check in results.all_checks():
        print_check(console, scenario.name, check)
    lines = console.export_text().splitlines()

    assert len(lines) == 5
    assert lines[0].startswith("✓ token-introspection/issue-token [NUTS-AUTH-001] 125 ms")
    assert "Title of" not in lines[0]
    assert lines[1].startswith("✗ token-introspection/introspect-expired")
    assert "NUTS-AUTH-002, NUTS-AUTH-004" in lines[1]
    assert lines[1].endswith("json $.active: expected false, got true")
    assert "an earlier step did not deliver a token" in lines[2]
    assert lines[4].startswith("! consent-check/subscribe [MITZ-002] 129 ms")


def test_terminal_summary(results: RunResults, tmp_path: Path) -> None:
    console = Console(record=True, width=120, color_system=None)
    print_summary(console, results, tmp_path)
    text = console.export_text()

    def counts(label: str) -> list[str]:
        line = next(line for line in text.splitlines() if f" {label} " in line)
        return re.findall(r"\b\d+\b", line)

    # Columns: passed, failed, skipped, error.
    assert counts("token-introspection") == ["1", "1", "1", "0"]
    assert counts("consent-check") == ["1", "0", "0", "1"]
    assert counts("total") == ["2", "1", "1", "1"]
    assert "covered 5 of 7 requirements" in text
    for name in ("results.json", "junit.xml", "report.html"):
        assert str(tmp_path / name) in text


# --- all writers ---------------------------------------------------------------------------


def test_write_all_writes_every_report(results: RunResults, tmp_path: Path) -> None:
    report_dir = tmp_path / "reports" / results.run_id
    paths = write_all(results, report_dir)

    assert paths == {
        name: report_dir / name for name in ("results.json", "junit.xml", "report.html", "earl.jsonld", "summary.md")
    }
    assert RunResults.model_validate_json(paths["results.json"].read_text("utf-8")) == results
    assert len(ET.parse(paths["junit.xml"]).getroot().findall("testsuite/testcase")) == 5
    assert results.run_id in paths["report.html"].read_text("utf-8")


def test_earl_has_one_assertion_per_check_about_the_node_it_talked_to(results: RunResults) -> None:
    from testbed.report.earl import OUTCOMES, earl_document

    graph = earl_document(results)["@graph"]
    assertions = [g for g in graph if g.get("@type") == "earl:Assertion"]
    checks = results.all_checks()
    assert len(assertions) == len(checks)
    subjects = {g["@id"] for g in graph if "earl:TestSubject" in g.get("@type", [])}
    # one per implementation, and the run's network for the checks that talked to no one node
    assert len(subjects) == len(results.implementations) + 1
    for assertion, (scenario, check) in zip(assertions, checks, strict=True):
        assert assertion["earl:test"]["@id"].endswith(f"{scenario.name}/{check.id}")
        assert assertion["earl:result"]["earl:outcome"]["@id"] == OUTCOMES[check.outcome]
        if check.evidence.node:
            assert assertion["earl:subject"]["@id"] in subjects
    assert {a["earl:result"]["earl:outcome"]["@id"] for a in assertions} <= set(OUTCOMES.values())


def test_summary_names_the_verdict_and_every_failed_check(results: RunResults) -> None:
    from testbed.report.summary import summary_markdown

    text = summary_markdown(results)
    assert text.startswith(f"# Conformance run {results.run_id}")
    failed = [(s, c) for s, c in results.all_checks() if c.outcome in (Outcome.FAILED, Outcome.ERROR)]
    assert failed and all(f"`{s.name}/{c.id}`" in text for s, c in failed)
    assert f"| {results.scenarios[0].name} |" in text


def test_an_incomplete_profile_run_says_so_in_every_format(tmp_path: Path) -> None:
    """Nothing failed, but a MUST of the profile's role went untested: no format may show it as
    conforming, and each names what was not tested."""
    from testbed.report.earl import earl_document
    from testbed.report.junit import build_junit
    from testbed.report.summary import summary_markdown

    results = make_results()
    for _, check in results.all_checks():
        check.outcome = Outcome.PASSED
    results.profiles = ["consent"]
    results.summary = Summary(total=5, passed=5, must_untested=["CONSENT-MTLS-01"])
    results.verdict, results.exit_code = Verdict.INCOMPLETE, 3

    html = render_html(results)
    assert "Incomplete: not shown to conform to the consent profile" in html and "CONSENT-MTLS-01" in html
    assert 'class="alert alert-ok"' not in html
    assert summary_markdown(results).startswith(f"# Conformance run {results.run_id}: incomplete")
    untested = [
        case
        for case in build_junit(results).getroot().iter("testcase")  # type: ignore[union-attr]
        if case.get("name") == "CONSENT-MTLS-01 is tested"
    ]
    assert len(untested) == 1 and untested[0].find("failure") is not None
    earl = earl_document(results)
    assert earl["dct:description"].startswith("verdict: incomplete")
    assert any(
        a.get("earl:test", {}).get("@id", "").endswith("requirement:CONSENT-MTLS-01")
        and a["earl:result"]["earl:outcome"]["@id"] == "earl:untested"
        for a in earl["@graph"]
    )
