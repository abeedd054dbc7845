"""Write results as JUnit XML, the format CI systems show as a test report.

Each scenario becomes a <testsuite> and each check a <testcase>. JUnit has no field for
requirement ids, so they travel as <property name="requirement"> entries on the testcase.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import datetime
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
    # Counts are derived from the very checks written as children, so they always agree.
    tally = Counter(check.outcome for check in checks)
    return {
        "tests": str(len(checks)),
        "failures": str(tally[Outcome.FAILED]),
        "errors": str(tally[Outcome.ERROR]),
        "skipped": str(tally[Outcome.SKIPPED]),
    }


def _add_properties(parent: ET.Element, pairs: list[tuple[str, str]]) -> None:
    # JUnit schemas want <properties> before the test cases, and not empty.
    if not pairs:
        return
    properties = ET.SubElement(parent, "properties")
    for name, value in pairs:
        ET.SubElement(properties, "property", name=name, value=value)


def _failure_text(check: CheckResult) -> str:
    """Explain a failed check in plain text: the failed expectations and the status seen."""
    lines = [check.message] if check.message else []
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
    if check.outcome is Outcome.FAILED:
        failure = ET.Element("failure", message=message, type="AssertionError")
        failure.text = _failure_text(check)
        return failure
    if check.outcome is Outcome.ERROR:
        error = ET.Element("error", message=message)
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
    _add_properties(case, [("requirement", req) for req in check.requirements])
    marker = _outcome_element(check)
    if marker is not None:
        case.append(marker)
    # The node log tail goes to system-out, where CI viewers show a test's captured output.
    if check.evidence.node_log_tail:
        ET.SubElement(case, "system-out").text = "\n".join(check.evidence.node_log_tail)
    return case


def _timestamp(scenario: ScenarioResult, results: RunResults) -> datetime:
    # A scenario has no start time of its own: its first check's start is the closest.
    return scenario.checks[0].started if scenario.checks else results.started


def _testsuite(scenario: ScenarioResult, results: RunResults) -> ET.Element:
    suite = ET.Element(
        "testsuite",
        {
            "name": scenario.name,
            **_counts(scenario.checks),
            "time": _seconds(sum(check.duration_ms for check in scenario.checks)),
            "timestamp": _timestamp(scenario, results).isoformat(),
        },
    )
    _add_properties(
        suite,
        [
            ("run_id", results.run_id),
            ("harness_version", results.harness_version),
            ("scenario_file", scenario.file),
            ("scenario_sha256", scenario.sha256),
        ],
    )
    for check in scenario.checks:
        suite.append(_testcase(scenario, check))
    return suite


def _verdict_suite(results: RunResults) -> ET.Element | None:
    """What no check says, as test cases a CI viewer shows in red: the harness error that ended
    the run, and each MUST of a profile's role that no check tested (the run is incomplete)."""
    cases = []
    if results.error:
        case = ET.Element("testcase", classname="run", name="the run reached a verdict", time="0")
        ET.SubElement(case, "error", message="harness or environment error").text = results.error
        cases.append(case)
    for requirement in results.summary.must_untested:
        case = ET.Element("testcase", classname="profile", name=f"{requirement} is tested", time="0")
        message = "no check of this run tested this MUST requirement of the profile's role"
        ET.SubElement(case, "failure", message=message, type="incomplete")
        cases.append(case)
    if not cases:
        return None
    suite = ET.Element(
        "testsuite",
        name=f"verdict: {results.verdict.value}",
        tests=str(len(cases)),
        failures=str(len(results.summary.must_untested)),
        errors=str(1 if results.error else 0),
        skipped="0",
        time="0",
        timestamp=results.started.isoformat(),
    )
    suite.extend(cases)
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
    all_checks = [check for _, check in results.all_checks()]
    root = ET.Element(
        "testsuites",
        {
            "name": f"{results.kind} run {results.run_id}",
            **_counts(all_checks),
            "time": _seconds(sum(check.duration_ms for check in all_checks)),
        },
    )
    for scenario in results.scenarios:
        root.append(_testsuite(scenario, results))
    verdict = _verdict_suite(results)
    if verdict is not None:
        root.append(verdict)
        for name in ("tests", "failures", "errors"):
            root.set(name, str(int(root.get(name, "0")) + int(verdict.get(name, "0"))))
    _make_xml_safe(root)
    return ET.ElementTree(root)


def write_junit(results: RunResults, path: Path) -> None:
    """Write the run as JUnit XML (UTF-8, indented) to path."""
    tree = build_junit(results)
    ET.indent(tree)
    path.parent.mkdir(parents=True, exist_ok=True)
    tree.write(path, encoding="utf-8", xml_declaration=True)
