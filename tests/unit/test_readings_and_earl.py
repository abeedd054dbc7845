"""Disagreeing sources are recorded, followed and shown; EARL names implementations, not runs,
and types its tests, so that results of many runs merge; nodes are identified as real Nuts
nodes identify themselves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import rdflib
import yaml

from testbed.conformance.catalogue import Catalogue
from testbed.conformance.runner import finalise
from testbed.errors import ConfigError
from testbed.network import _identity_from_diagnostics
from testbed.report.earl import earl_document
from testbed.report.html import render_html
from testbed.report.junit import build_junit
from testbed.report.model import ImplementationInfo, RunResults
from testbed.report.summary import summary_markdown
from testbed.scenario.loader import check_scenario, load_scenario
from testbed.topology import load_network
from tests.conftest import REFERENCE_NETWORK
from tests.unit.test_report_writers import make_results

READINGS = [
    {"id": "specification", "says": "The audience is the server's DID.", "source": "RFC021 section 4"},
    {"id": "nuts-node", "says": "The audience is the issuer URL of the server.", "source": "nuts-node v6.2.10"},
]


def _catalogue(tmp_path: Path, **extra: Any) -> Catalogue:
    requirement = {
        "id": "TRUST-AUD-01",
        "level": "MUST",
        "statement": "The token request names the authorization server as its audience.",
        "source": "Nuts RFC021",
        **extra,
    }
    (tmp_path / "trust.yaml").write_text(yaml.safe_dump({"role": "trust", "requirements": [requirement]}))
    return Catalogue.load(tmp_path)


@pytest.mark.parametrize(
    ("extra", "complaint"),
    [
        ({"readings": READINGS[:1], "follows": "specification"}, "at least two readings"),
        ({"readings": READINGS}, "'follows' names the reading"),
        ({"follows": "nuts-node"}, "'follows' names the reading"),
        ({"readings": READINGS, "follows": "rumour"}, "is not one of the readings"),
        ({"readings": [READINGS[0], READINGS[0]], "follows": "specification"}, "reading ids repeat"),
    ],
)
def test_a_disagreement_is_recorded_whole_or_refused(tmp_path: Path, extra: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        _catalogue(tmp_path, **extra)


def test_a_step_may_follow_only_a_recorded_reading_of_its_own_requirement(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    catalogue = _catalogue(tmp_path / "c", readings=READINGS, follows="nuts-node")
    network = load_network(REFERENCE_NETWORK).network

    def scenario(readings: str) -> Path:
        path = tmp_path / "s.yaml"
        path.write_text(
            f"name: sample\nnetwork: {REFERENCE_NETWORK}\nactors:\n  holder: hospital\nsteps:\n"
            "  - id: one\n    title: metadata\n    requirements: [TRUST-AUD-01]\n"
            f"    readings: {readings}\n"
            "    request:\n      node: holder.trust\n      path: /status\n    expect:\n      status: 200\n"
        )
        return path

    check_scenario(load_scenario(scenario("{TRUST-AUD-01: specification}")), network, catalogue)
    with pytest.raises(ConfigError, match="records no reading 'rumour' \\(it records: specification, nuts-node\\)"):
        check_scenario(load_scenario(scenario("{TRUST-AUD-01: rumour}")), network, catalogue)
    with pytest.raises(ConfigError, match="TRUST-OTHER-01 is not one of the step's requirements"):
        check_scenario(load_scenario(scenario("{TRUST-OTHER-01: specification}")), network, catalogue)


def _disputed_run(tmp_path: Path) -> RunResults:
    catalogue = _catalogue(tmp_path, readings=READINGS, follows="nuts-node")
    results = make_results()
    first, second = results.scenarios[0].checks[:2]
    first.requirements = second.requirements = ["TRUST-AUD-01"]
    second.readings = {"TRUST-AUD-01": "specification"}
    finalise(results, catalogue)
    return results


def test_checks_follow_the_requirement_s_reading_unless_they_say_otherwise(tmp_path: Path) -> None:
    results = _disputed_run(tmp_path)
    first, second = results.scenarios[0].checks[:2]
    assert first.readings == {"TRUST-AUD-01": "nuts-node"}
    assert second.readings == {"TRUST-AUD-01": "specification"}
    coverage = next(r for r in results.requirements if r.id == "TRUST-AUD-01")
    assert coverage.follows == "nuts-node" and [r.id for r in coverage.readings] == ["specification", "nuts-node"]


def test_every_report_shows_the_disagreement_and_the_reading_followed(tmp_path: Path) -> None:
    results = _disputed_run(tmp_path)
    summary = summary_markdown(results)
    assert "## Where the sources disagree" in summary
    assert "**TRUST-AUD-01** (checks of this run followed: nuts-node, specification)" in summary
    assert "`specification`: The audience is the server's DID. (RFC021 section 4)" in summary
    html = render_html(results)
    assert "Sources disagree." in html and "TRUST-AUD-01: follows reading specification" in html
    root = build_junit(results).getroot()
    assert root is not None
    properties = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert properties["readings:" + results.scenarios[0].checks[1].id] == "TRUST-AUD-01=specification"


def _run(run_id: str, version: str = "0.1.0") -> RunResults:
    results = make_results()
    results.run_id = run_id
    results.implementations = [
        ImplementationInfo(
            node="nuts-a", role="trust", organisation="a", kind="reference", product="Ref", version=version
        ),
        ImplementationInfo(
            node="nuts-b", role="trust", organisation="b", kind="reference", product="Ref", version=version
        ),
        ImplementationInfo(node="mitz", role="consent", organisation="m", kind="url", public_url="https://mitz.test"),
    ]
    return results


def _graph(document: dict[str, Any]) -> rdflib.Graph:
    return rdflib.Graph().parse(data=json.dumps(document), format="json-ld")


EARL = rdflib.Namespace("http://www.w3.org/ns/earl#")


def test_earl_subjects_are_implementations_so_two_runs_merge() -> None:
    one, two = _graph(earl_document(_run("run-1"))), _graph(earl_document(_run("run-2")))

    def implementations(graph: rdflib.Graph) -> set[str]:
        subjects = {str(s) for s in graph.subjects(rdflib.RDF.type, EARL.TestSubject)}
        return {s for s in subjects if ":run:" not in s}  # the run's network is a subject of its own

    subjects_one = implementations(one)
    assert subjects_one == implementations(two)
    assert subjects_one == {
        "urn:health-network-testbed:implementation:trust:ref:0.1.0",  # two nodes, one implementation
        "https://mitz.test",  # known only by its URL
    }
    merged = one + two
    asserted = list(merged.subjects(rdflib.RDF.type, EARL.Assertion))
    assert len(asserted) == 2 * len(list(one.subjects(rdflib.RDF.type, EARL.Assertion)))
    other_version = {
        str(s) for s in _graph(earl_document(_run("run-3", "0.2.0"))).subjects(rdflib.RDF.type, EARL.TestSubject)
    }
    assert "urn:health-network-testbed:implementation:trust:ref:0.2.0" in other_version


def test_every_earl_test_is_typed_and_every_assertion_complete() -> None:
    graph = _graph(earl_document(_run("run-1")))
    for assertion in graph.subjects(rdflib.RDF.type, EARL.Assertion):
        test = graph.value(assertion, EARL.test)
        subject = graph.value(assertion, EARL.subject)
        result = graph.value(assertion, EARL.result)
        assert test is not None and subject is not None and result is not None
        assert set(graph.objects(test, rdflib.RDF.type)) & {EARL.TestCase, EARL.TestRequirement}, test
        assert (subject, rdflib.RDF.type, EARL.TestSubject) in graph, subject
        assert graph.value(result, EARL.outcome) is not None


def test_a_nuts_node_is_known_by_its_diagnostics() -> None:
    nuts = _identity_from_diagnostics(
        {"status": {"software_version": "v6.2.10", "git_commit": "abc"}, "vdr": {"did_documents_count": 3}, "vcr": {}}
    )
    assert (nuts.role, nuts.product, nuts.version) == ("trust", "nuts-node", "v6.2.10")
    ours = _identity_from_diagnostics(
        {"status": {"software_version": "0.1.0"}, "testbed": {"role": "consent", "implementation": "x"}}
    )
    assert (ours.role, ours.product) == ("consent", "x")
    # diagnostics without the trust engines say nothing about a role
    assert _identity_from_diagnostics({"status": {"software_version": "1"}}).role is None
