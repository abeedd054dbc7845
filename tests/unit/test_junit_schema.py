"""junit.xml is valid against the Ant JUnit schema (our own statement of it in tests/fixtures,
and, where this machine has copies, the published Ant and Jenkins xunit schemas)."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from lxml import etree

from testbed.report.junit import build_junit
from testbed.report.model import Outcome, RunResults, Summary, Verdict
from tests.unit.test_report_writers import make_results

ANT_SCHEMA = Path(__file__).parents[1] / "fixtures" / "junit" / "ant-junit.xsd"
# Published schemas, read from local mirrors of their repositories when present (never committed).
PUBLISHED = {
    "ant (windyroad/JUnit-Schema)": ("/work/.mirror/windyroad+JUnit-Schema/repo", "JUnit.xsd"),
    "jenkins xunit junit-10": (
        "/work/.mirror/jenkinsci+xunit-plugin/repo",
        "src/main/resources/org/jenkinsci/plugins/xunit/types/model/xsd/junit-10.xsd",
    ),
}


def _documents() -> list[tuple[str, bytes]]:
    """A run with every outcome, and an incomplete run with a harness error (the verdict suite)."""
    plain = make_results()
    incomplete = make_results()
    incomplete.profiles = ["consent"]
    incomplete.summary = Summary(total=5, passed=2, must_untested=["CONSENT-MTLS-01"])
    incomplete.verdict, incomplete.error = Verdict.INCOMPLETE, "the consent node stopped answering"
    return [(name, _xml(results)) for name, results in [("every outcome", plain), ("incomplete", incomplete)]]


def _xml(results: RunResults) -> bytes:
    root = build_junit(results).getroot()
    assert root is not None
    return ET.tostring(root, encoding="utf-8")


def _schema(text: bytes) -> etree.XMLSchema:
    return etree.XMLSchema(etree.fromstring(text))


@pytest.mark.parametrize(("name", "document"), _documents())
def test_junit_is_valid_against_the_ant_schema(name: str, document: bytes) -> None:
    schema = _schema(ANT_SCHEMA.read_bytes())
    assert schema.validate(etree.fromstring(document)), f"{name}: {schema.error_log}"


@pytest.mark.parametrize("published", sorted(PUBLISHED))
def test_junit_is_valid_against_the_published_schemas(published: str) -> None:
    mirror, path = PUBLISHED[published]
    if not Path(mirror).exists():
        pytest.skip(f"no local copy of the {published} schema on this machine")
    text = subprocess.run(["git", "--git-dir", mirror, "show", f"HEAD:{path}"], capture_output=True, check=True).stdout
    schema = _schema(text)
    for name, document in _documents():
        assert schema.validate(etree.fromstring(document)), f"{name} against {published}: {schema.error_log}"


@pytest.mark.parametrize(
    "defect",
    [
        "properties inside a testcase",
        "timestamp with fraction and zone",
        "no hostname",
        "attributes on testsuites",
        "error without a type",
    ],
)
def test_the_schema_refuses_what_the_old_writer_did(defect: str) -> None:
    """The schema check can fail: each way the writer used to break the Ant schema is refused."""
    results = make_results()
    results.scenarios[0].checks[1].outcome = Outcome.ERROR
    root = build_junit(results).getroot()
    assert root is not None
    suite = root.find("testsuite")
    case = root.find("testsuite/testcase")
    assert suite is not None and case is not None
    if defect == "properties inside a testcase":
        ET.SubElement(ET.SubElement(case, "properties"), "property", name="requirement", value="X")
    elif defect == "timestamp with fraction and zone":
        suite.set("timestamp", "2025-03-04T10:00:00.123456+00:00")
    elif defect == "no hostname":
        del suite.attrib["hostname"]
    elif defect == "attributes on testsuites":
        root.set("skipped", "1")
    else:
        error = root.find(".//error")
        assert error is not None
        del error.attrib["type"]
    schema = _schema(ANT_SCHEMA.read_bytes())
    assert not schema.validate(etree.fromstring(ET.tostring(root)))
