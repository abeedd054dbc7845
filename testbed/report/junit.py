"""Write results as JUnit XML, the format CI systems show as a test report.

The file is valid against the Apache Ant JUnit schema (the common one; Jenkins' xunit schema
accepts it too): each scenario is a <testsuite> and each check a <testcase>. That schema lets
a test case carry no properties and no output, so a check's requirement ids travel as the
suite's property `requirements:<check id>`, and the node log tails of its checks go to the
suite's <system-out>, each line marked with its check. Timestamps are UTC without a zone, as
the schema has them; <testsuites> carries no attributes, as the schema has it.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from testbed.report.model import CheckResult, Outcome, RunResults, ScenarioResult

# Characters XML 1.0 cannot carry at all, not even escaped. Messages, expectation values and
# log lines come from the systems under test and may hold them; left in, the file won't parse.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_safe(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _seconds(milliseconds: float) -> str:
    # JUnit readers expect seconds as a decimal; millisecond resolution is plenty.
    return f"{milliseconds / 1000:.3f}"


def _show(value: Any) -> str:
    # Expected and actual values can be any JSON value; show them as JSON so that
    # the string "200" and the number 200 stay distinguishable in the failure text.
    return json.dumps(value, ensure_ascii=False, default=str)


def _counts(checks: list[CheckResult]) -> dict[str, str]:
    # Counts are derived from the very checks written as children, so they always agree: an
    # expected failure (xfail) is written as <skipped>, as pytest writes one.
    tally = Counter(check.outcome for check in checks)
    expected = sum(check.expected_failure for check in checks)
    return {
        "tests": str(len(checks)),
        "failures": str(tally[Outcome.FAILED] - expected),
        "errors": str(tally[Outcome.ERROR]),
        "skipped": str(tally[Outcome.SKIPPED] + expected),
    }


def _add_properties(parent: ET.Element, pairs: list[tuple[str, str]]) -> None:
    # The Ant schema wants <properties> first in every suite, even when it is empty.
    properties = ET.SubElement(parent, "properties")
    for name, value in pairs:
        ET.SubElement(properties, "property", name=name, value=value)


def _utc(moment: datetime) -> str:
    """YYYY-MM-DDTHH:MM:SS in UTC: the Ant schema's timestamp has no fraction and no zone."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None, microsecond=0).isoformat()


def _failure_text(check: CheckResult) -> str:
    """Explain a failed check in plain text: the failed expectations and the status seen."""
    lines = [check.message] if check.message else []
    lines.append(f"requirements: {', '.join(check.requirements)}")
    for expectation in check.evidence.expectations:
        if not expectation.passed:
            lines.append(
                f"{expectation.what}: expected {_show(expectation.expected)}, actual {_show(expectation.actual)}"
            )
    response = check.evidence.response
    lines.append(f"response status: {response.status if response else 'no response'}")
    return "\n".join(lines)


def _outcome_element(check: CheckResult) -> ET.Element | None:
    """The child that marks a non-passed testcase; None for a passed check."""
    message = check.message or check.outcome.value
    if check.expected_failure:  # failed as the implementations registry declared: shown, not hidden
        reasons = "; ".join(f"{requirement}: {reason}" for requirement, reason in check.xfail.items())
        skipped = ET.Element("skipped", message=f"xfail (expected failure): {reasons}")
        skipped.text = _failure_text(check)
        return skipped
    if check.outcome is Outcome.FAILED:
        failure = ET.Element("failure", message=message, type="AssertionError")
        failure.text = _failure_text(check)
        return failure
    if check.outcome is Outcome.ERROR:
        error = ET.Element("error", message=message, type="HarnessError")
        error.text = check.message or None
        return error
    if check.outcome is Outcome.SKIPPED:
        return ET.Element("skipped", message=message)
    return None


def _testcase(scenario: ScenarioResult, check: CheckResult) -> ET.Element:
    case = ET.Element(
        "testcase",
        classname=scenario.name,
        name=f"{check.id}: {check.title}",
        time=_seconds(check.duration_ms),
    )
    marker = _outcome_element(check)
    if marker is not None:
        case.append(marker)
    return case


def _suite_output(parent: ET.Element, checks: list[CheckResult]) -> None:
    """The node log tails of the suite's checks, where CI viewers show captured output (the
    Ant schema has <system-out> on suites only), and an empty <system-err>."""
    lines = [f"[{check.id}] {line}" for check in checks for line in check.evidence.node_log_tail]
    ET.SubElement(parent, "system-out").text = "\n".join(lines)
    ET.SubElement(parent, "system-err").text = ""


def _timestamp(scenario: ScenarioResult, results: RunResults) -> datetime:
    # A scenario has no start time of its own: its first check's start is the closest.
    return scenario.checks[0].started if scenario.checks else results.started


def _suite_element(*, name: str, index: int, counts: dict[str, str], time: str, started: datetime) -> ET.Element:
    """A <testsuite> with the attributes the Ant schema requires of one in <testsuites>."""
    return ET.Element(
        "testsuite",
        {
            "name": name,
            "package": name,
            "id": str(index),
            **counts,
            "time": time,
            "timestamp": _utc(started),
            # The schema asks for the host; the runs talk to loopback nodes only.
            "hostname": "localhost",
        },
    )


def _testsuite(scenario: ScenarioResult, results: RunResults, index: int) -> ET.Element:
    suite = _suite_element(
        name=scenario.name,
        index=index,
        counts=_counts(scenario.checks),
        time=_seconds(sum(check.duration_ms for check in scenario.checks)),
        started=_timestamp(scenario, results),
    )
    _add_properties(
        suite,
        [
            ("run_id", results.run_id),
            ("harness_version", results.harness_version),
            ("suite_version", results.suite_version),
            ("scenario_file", scenario.file),
            ("scenario_sha256", scenario.sha256),
            *[(f"requirements:{check.id}", " ".join(check.requirements)) for check in scenario.checks],
            *[
                (f"readings:{check.id}", " ".join(f"{req}={reading}" for req, reading in check.readings.items()))
                for check in scenario.checks
                if check.readings
            ],
            *[
                (f"xfail:{check.id}", "; ".join(f"{req}={reason}" for req, reason in check.xfail.items()))
                for check in scenario.checks
                if check.xfail
            ],
        ],
    )
    for check in scenario.checks:
        suite.append(_testcase(scenario, check))
    _suite_output(suite, scenario.checks)
    return suite


def _verdict_suite(results: RunResults, index: int) -> ET.Element | None:
    """What no check says, as test cases a CI viewer shows in red: the harness error that ended
    the run, and each MUST of a profile's role that no check tested (the run is incomplete)."""
    cases = []
    if results.error:
        case = ET.Element("testcase", classname="run", name="the run reached a verdict", time="0")
        ET.SubElement(case, "error", message="harness or environment error", type="HarnessError").text = results.error
        cases.append(case)
    for requirement in results.summary.must_untested:
        case = ET.Element("testcase", classname="profile", name=f"{requirement} is tested", time="0")
        message = "no check of this run tested this MUST requirement of the profile's role"
        ET.SubElement(case, "failure", message=message, type="incomplete")
        cases.append(case)
    if not cases:
        return None
    counts = {
        "tests": str(len(cases)),
        "failures": str(len(results.summary.must_untested)),
        "errors": str(1 if results.error else 0),
        "skipped": "0",
    }
    suite = _suite_element(
        name=f"verdict: {results.verdict.value}", index=index, counts=counts, time="0", started=results.started
    )
    _add_properties(suite, [("verdict", results.verdict.value)])
    suite.extend(cases)
    _suite_output(suite, [])
    return suite


def _make_xml_safe(root: ET.Element) -> None:
    # One pass over the finished tree instead of guarding every place text is set.
    for element in root.iter():
        if element.text:
            element.text = _xml_safe(element.text)
        for key, value in element.attrib.items():
            element.set(key, _xml_safe(value))


def build_junit(results: RunResults) -> ET.ElementTree:
    """Build the JUnit document for a run (apart from writing, so it can be inspected)."""
    root = ET.Element("testsuites")  # the Ant schema gives it no attributes: totals are the suites' sums
    for index, scenario in enumerate(results.scenarios):
        root.append(_testsuite(scenario, results, index))
    verdict = _verdict_suite(results, len(results.scenarios))
    if verdict is not None:
        root.append(verdict)
    _make_xml_safe(root)
    return ET.ElementTree(root)


def write_junit(results: RunResults, path: Path) -> None:
    """Write the run as JUnit XML (UTF-8, indented) to path."""
    tree = build_junit(results)
    ET.indent(tree)
    path.parent.mkdir(parents=True, exist_ok=True)
    tree.write(path, encoding="utf-8", xml_declaration=True)
