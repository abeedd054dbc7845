"""Expected failures and the suite version in every report format: results.json (valid against
its schema), JUnit, HTML, summary.md, EARL and the terminal; and the suite version itself, a
digest that is the same for the same files anywhere and changes with any of them."""

from __future__ import annotations

import io
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

from jsonschema import Draft202012Validator
from rich.console import Console

from testbed.publish.registry import apply_xfail
from testbed.publish.suite import suite_entries, suite_name, suite_version
from testbed.report.earl import earl_document
from testbed.report.html import render_html
from testbed.report.json_report import results_json_schema
from testbed.report.junit import build_junit
from testbed.report.model import Outcome, RegisteredImplementation, RunResults
from testbed.report.summary import summary_markdown
from testbed.report.terminal import print_check, print_summary
from tests.conftest import ROOT
from tests.unit.test_report_writers import _check, make_results

REASON = "not <yet> supported"
SUITE = "sha256:" + "ab" * 32


def declared() -> RunResults:
    """The writers' sample run with one SHOULD check failing as the registry expects, and the
    registry's entry for the node it talked to."""
    results = make_results()
    expected = _check("should-thing", Outcome.FAILED, ["NUTS-AUTH-003"], 5, message="no purpose of use read")
    expected.evidence.node = "nuts-a"
    results.scenarios[0].checks.append(expected)
    next(r for r in results.requirements if r.id == "NUTS-AUTH-003").outcome = Outcome.FAILED
    results.suite_version = SUITE
    results.registered = [
        RegisteredImplementation(
            name="acme",
            vendor="Acme & Sons",
            product="Acme Auth",
            version="2.0",
            role="authorization-server",
            node="nuts-a",
            reached_by="url https://acme.example",
            xfail={"NUTS-AUTH-003": REASON},
        )
    ]
    apply_xfail(results)
    return results


def test_results_json_carries_them_and_stays_valid() -> None:
    results = declared()
    document = results.model_dump(mode="json")
    assert document["schema_version"] == "1.1" and document["suite_version"] == SUITE
    assert document["summary"]["xfailed"] == 1
    assert document["scenarios"][0]["checks"][-1]["xfail"] == {"NUTS-AUTH-003": REASON}
    assert list(Draft202012Validator(results_json_schema()).iter_errors(document)) == []
    assert RunResults.model_validate(document).scenarios[0].checks[-1].expected_failure


def test_results_of_schema_1_0_are_still_read() -> None:
    document = make_results().model_dump(mode="json")
    document["schema_version"] = "1.0"
    for key in ("suite_version", "registered"):
        document.pop(key)
    read = RunResults.model_validate(document)
    assert read.suite_version == "" and read.registered == [] and read.summary.xfailed == 0


def test_junit_shows_an_expected_failure_as_skipped_with_its_reason() -> None:
    root = build_junit(declared()).getroot()
    assert root is not None
    case = next(c for c in root.iter("testcase") if c.get("name", "").startswith("should-thing"))
    skipped = case.find("skipped")
    assert skipped is not None and skipped.get("message") == f"xfail (expected failure): NUTS-AUTH-003: {REASON}"
    assert "no purpose of use read" in (skipped.text or "")
    suite = next(s for s in root.iter("testsuite") if s.get("name") == "token-introspection")
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["xfail:should-thing"] == f"NUTS-AUTH-003={REASON}" and properties["suite_version"] == SUITE
    assert suite.get("failures") == "1" and suite.get("skipped") == "2"  # introspect-expired still fails
    ET.tostring(root)  # well-formed


def test_html_summary_and_earl_show_the_reason_escaped() -> None:
    results = declared()
    html = render_html(results)
    assert 'id="xfail"' in html and "not &lt;yet&gt; supported" in html and REASON not in html
    assert "Expected failure (xfail)" in html and SUITE in html and "Acme &amp; Sons" in html
    summary = summary_markdown(results)
    assert f"- **NUTS-AUTH-003** (SHOULD, failed in this run): {REASON}" in summary
    assert "`token-introspection/should-thing` (NUTS-AUTH-003), failed as expected (xfail)" in summary
    assert f"Suite version `{SUITE}`." in summary and "Registered: `acme`, Acme Auth 2.0 by Acme & Sons" in summary
    earl = earl_document(results)
    assert earl["dct:hasVersion"] == SUITE
    subject = next(i for i in earl["@graph"] if i.get("dct:identifier") == "acme")
    assert subject["@id"].endswith(":authorization-server:acme-sons:acme-auth:2.0")
    assert REASON in subject["dct:abstract"]
    assertion = next(i for i in earl["@graph"] if i.get("earl:test", {}).get("@id", "").endswith("should-thing"))
    assert assertion["earl:result"]["earl:outcome"] == {"@id": "earl:failed"}
    assert f"expected to fail (xfail) NUTS-AUTH-003: {REASON}" in assertion["earl:result"]["dct:description"]


def test_the_terminal_shows_every_declared_expected_failure(tmp_path: Path) -> None:
    results = declared()
    stream = io.StringIO()
    console = Console(file=stream, width=200, highlight=False, markup=False)
    print_check(console, "token-introspection", results.scenarios[0].checks[-1])
    print_summary(console, results, tmp_path)
    shown = stream.getvalue()
    assert f"xfail: NUTS-AUTH-003: {REASON}" in shown and f"suite version {SUITE}" in shown
    assert "expected failures declared (xfail): 1" in shown and f"NUTS-AUTH-003 (failed): {REASON}" in shown
    assert "XFAIL token-introspection/should-thing" in shown


def test_the_suite_version_depends_on_the_files_not_on_where_they_are(tmp_path: Path) -> None:
    profile = sorted((ROOT / "scenarios" / "profiles" / "consent").glob("*.yaml"))
    version = suite_version(profile)
    assert version.startswith("sha256:") and len(version) == len("sha256:") + 64
    assert suite_version(list(reversed(profile))) == version  # order of the files given does not matter
    copy = tmp_path / "elsewhere" / "scenarios" / "profiles" / "consent"
    copy.mkdir(parents=True)
    for path in profile:
        (copy / path.name).write_bytes(path.read_bytes())
    here = Path.cwd()
    try:
        os.chdir(tmp_path)
        assert suite_version(sorted(copy.glob("*.yaml"))) == version  # another checkout, another folder
    finally:
        os.chdir(here)
    (copy / profile[0].name).write_text(profile[0].read_text() + "\n# changed\n", encoding="utf-8")
    assert suite_version(sorted(copy.glob("*.yaml"))) != version
    assert suite_version(profile[:-1]) != version
    assert suite_name(profile[0]) == f"profiles/consent/{profile[0].name}"
    assert suite_name(tmp_path / "mine.yaml") == "mine.yaml"
    names = [name for name, _ in suite_entries(profile)]
    assert names == sorted(names) and "requirements/consent.yaml" in names


def test_a_changed_requirement_file_changes_the_suite_version(tmp_path: Path) -> None:
    scenario = [ROOT / "scenarios" / "bgz-consent.yaml"]
    catalogue = sorted((ROOT / "testbed" / "conformance" / "requirements").glob("*.yaml"))
    assert suite_version(scenario, catalogue) == suite_version(scenario)
    changed = tmp_path / catalogue[0].name
    changed.write_text(catalogue[0].read_text() + "\n", encoding="utf-8")
    assert suite_version(scenario, [changed, *catalogue[1:]]) != suite_version(scenario)
    assert json.dumps(suite_version(scenario))  # a plain string
