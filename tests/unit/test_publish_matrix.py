"""The matrix without nodes: which pairs run which use cases in which places, the network files
it writes, the cells and the exit code, and the pages it renders (every expected failure shown,
everything from the registry escaped)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.conformance.runner import collect_scenario_files
from testbed.errors import ConfigError
from testbed.publish.matrix import (
    Placement,
    PlannedRun,
    _profile_run,
    _write_networks,
    matrix_exit_code,
    matrix_state,
    plan_pairs,
    scenario_state,
)
from testbed.publish.matrix_model import Cell, ImplementationRow, Matrix, PairCell, RequirementRow
from testbed.publish.matrix_report import matrix_html, matrix_markdown
from testbed.publish.registry import Entry, load_registry
from testbed.report.model import Level, Outcome, Verdict
from tests.conftest import ROOT
from tests.unit.test_report_writers import make_results

USE_CASES = collect_scenario_files([ROOT / "scenarios"])
# The use cases in which a station and its consent service (or two trust nodes) meet
FAULTING_BGZ = ["bgz-consent", "bgz-dpop", "resilience", "resilience-links"]
PROFILES = ROOT / "scenarios" / "profiles"


def entry(name: str, role: str, **fields: Any) -> Entry:
    reached = fields.pop("implementation", {"image": "health-testbed-node:latest"})
    data = {"name": name, "vendor": "V", "product": "P", "version": "1", "role": role, "implementation": reached}
    return Entry.model_validate({**data, **fields})


def planned(entries: list[Entry]) -> dict[str, tuple[list[str], list[str]]]:
    runs, _ = plan_pairs(entries, USE_CASES)
    return {run.name: ([p.node for p in run.placements], sorted(f.stem for f in run.scenario_files)) for run in runs}


def test_two_trust_nodes_pair_both_ways_as_requester_and_holder() -> None:
    runs = planned([entry("ta", "trust"), entry("tb", "trust")])
    assert runs["ta--tb"] == (["gp-trust", "hospital-trust"], FAULTING_BGZ)
    assert runs["tb--ta"] == (["gp-trust", "hospital-trust"], FAULTING_BGZ)
    assert runs["ta--tb-2"] == (["institute-trust", "hdab-trust"], ["federated-analysis"])
    assert runs["ta--tb-3"] == (["institute-trust", "welldata-trust"], ["welldata"])
    assert len(runs) == 6


def test_roles_pair_only_where_they_talk_and_in_the_use_cases_that_involve_both() -> None:
    runs = planned([entry("s", "station"), entry("c", "consent"), entry("v", "vault"), entry("c2", "consent")])
    assert runs == {
        "s--c": (["hospital-station", "consent"], FAULTING_BGZ),
        "s--c2": (["hospital-station", "consent"], FAULTING_BGZ),
    }  # two consent services never talk to each other; a vault talks to no station or consent service
    runs = planned([entry("h", "hdab"), entry("s", "station"), entry("t", "trust")])
    assert runs["h--s"] == (["hdab", "hospital-station"], ["federated-analysis"])
    assert runs["h--t"] == (["hdab", "hdab-trust"], ["federated-analysis"])  # its own organisation's trust node
    assert runs["s--t"][0] == ["hospital-station", "hospital-trust"]


def test_a_pair_that_cannot_stand_where_a_use_case_puts_it_is_not_run_and_says_why() -> None:
    station = entry(
        "s",
        "station",
        implementation={"url": "https://station.example:8443"},
        companions={"consent": {"url": "https://consent.example:8443"}},
    )
    runs, unplaced = plan_pairs([station, entry("c", "consent")], USE_CASES)
    assert not runs and {cell.scenario for cell in unplaced} == set(FAULTING_BGZ)
    assert all(c.state == "not run" and "s comes with its own consent" in c.note for c in unplaced)
    by_url = entry("t", "trust", implementation={"url": "https://127.0.0.1:8443"})
    runs, unplaced = plan_pairs([by_url, entry("u", "trust")], USE_CASES)
    assert not runs and all("containers cannot reach" in cell.note for cell in unplaced)


def test_a_profile_run_stands_in_for_its_node_and_its_companions_must_exist(write_yaml) -> None:
    registry = load_registry(
        write_yaml(
            "implementations:\n"
            "  - {name: t, vendor: V, product: P, version: '1', role: trust, implementation: {image: a:1}}\n"
            "  - {name: s, vendor: V, product: P, version: '1', role: station, node: consent,\n"
            "     implementation: {image: a:1}}\n"
            "  - {name: w, vendor: V, product: P, version: '1', role: vault, implementation: {image: a:1},\n"
            "     companions: {welldata-trust: {url: 'https://x:1'}, nowhere: {url: 'https://y:1'}}}\n",
            "registry.yaml",
        )
    )
    t, s, w = registry.registry.implementations
    run = _profile_run(registry, t, PROFILES)
    assert run.placements[0].node == "authority-trust"  # the first trust node of the profile's network
    assert [f.parent.name for f in run.scenario_files] == ["trust"] * len(run.scenario_files)
    with pytest.raises(ConfigError, match=r"registry\.yaml:3: node 'consent' is not a station node of"):
        _profile_run(registry, s, PROFILES)
    with pytest.raises(ConfigError, match=r"registry\.yaml:6: 'nowhere' is not a node of") as caught:
        _profile_run(registry, w, PROFILES)
    assert "welldata-trust" not in str(caught.value)


def test_the_network_of_a_run_has_the_implementations_in_their_places(tmp_path: Path) -> None:
    station = entry(
        "s", "station", implementation={"image": "vendor/station:2"}, companions={"gp-trust": {"url": "https://t:1"}}
    )
    run = PlannedRun(
        "s", "profile", [], ROOT / "scenarios" / "networks" / "reference.yaml", [Placement("gp-station", station)]
    )
    _write_networks([run], tmp_path)
    assert run.network_file == tmp_path / "s.network.yaml"
    written = yaml.safe_load(run.network_file.read_text(encoding="utf-8"))
    nodes = {n["name"]: n for org in written["organisations"] for n in org["nodes"]}
    assert nodes["gp-station"] == {
        "name": "gp-station",
        "role": "station",
        "implementation": {"image": "vendor/station:2"},
    }
    assert nodes["gp-trust"]["implementation"] == {"url": "https://t:1"}
    assert "implementation" not in nodes["hospital-station"] and run.runtime("process") == "docker"


def test_cells_and_the_exit_code() -> None:
    assert matrix_state(None, None) == "untested"
    assert matrix_state(Outcome.FAILED, "declared") == "xfail"
    assert matrix_state(Outcome.PASSED, "declared") == "passed"
    results = make_results()
    token = results.scenarios[0].checks
    assert scenario_state(token, results) == "failed"
    assert scenario_state(results.scenarios[1].checks, results) == "error"
    token[1].xfail = {r: "expected" for r in token[1].requirements}
    assert scenario_state(token, results) == "xfail"
    assert scenario_state([], results.model_copy(update={"error": "down"})) == "error"
    matrix = sample_matrix()
    assert matrix_exit_code(matrix) == 1
    matrix.implementations[1].verdict = Verdict.INCOMPLETE
    assert matrix_exit_code(matrix) == 1  # the pair failed
    matrix.pairs[0].state = "passed"
    assert matrix_exit_code(matrix) == 3
    matrix.pairs.append(PairCell(a="a", b="b", roles=["trust", "trust"], how="h", scenario="x", state="error"))
    assert matrix_exit_code(matrix) == 2


def sample_matrix() -> Matrix:
    def row(name: str, verdict: Verdict, cells: dict[str, Cell], xfail: dict[str, str]) -> ImplementationRow:
        return ImplementationRow(
            name=name, vendor="<b>Vendor</b>", product="P", version="1", role="consent", node="consent",
            reached_by="url https://x", run=f"runs/{name}", verdict=verdict, exit_code=0,
            suite_version="sha256:" + "a" * 64, xfail=xfail, cells=cells,
        )  # fmt: skip

    declared = {"CONSENT-XACML-04": "purpose of use <i>later</i>"}
    return Matrix(
        title="Consent & co",
        registry="implementations.yaml",
        registry_sha256="f" * 64,
        started=datetime(2026, 1, 1, tzinfo=UTC),
        runtime="process",
        requirements=[
            RequirementRow(id="CONSENT-DEC-01", role="consent", level=Level.MUST, statement="s"),
            RequirementRow(id="CONSENT-XACML-04", role="consent", level=Level.SHOULD, statement="s"),
        ],
        implementations=[
            row("a", Verdict.CONFORMS, {"CONSENT-DEC-01": Cell(state="passed")}, {}),
            row(
                "c",
                Verdict.FAILS,
                {
                    "CONSENT-DEC-01": Cell(state="failed"),
                    "CONSENT-XACML-04": Cell(state="xfail", xfail=declared["CONSENT-XACML-04"]),
                },
                declared,
            ),
        ],
        pairs=[
            PairCell(a="s", b="a", roles=["station", "consent"], how="asks", scenario="bgz-consent", state="failed",
                     run="runs/s--a", passed=3, failed=1),
        ],
    )  # fmt: skip


def test_the_pages_show_every_expected_failure_and_escape_what_the_registry_says() -> None:
    matrix = sample_matrix()
    markdown = matrix_markdown(matrix)
    assert "| CONSENT-DEC-01 | MUST | passed | failed |" in markdown
    assert "| CONSENT-XACML-04 | SHOULD | untested | xfail |" in markdown
    assert "- c: **CONSENT-XACML-04** (xfail): purpose of use <i>later</i>" in markdown
    assert "| s → a | station → consent | failed (3/4) |" in markdown
    html = matrix_html(matrix)
    assert "<b>Vendor</b>" not in html and "&lt;b&gt;Vendor&lt;/b&gt;" in html
    assert "purpose of use &lt;i&gt;later&lt;/i&gt;" in html and 'href="runs/c/report.html"' in html
    assert "<script" not in html and "http" not in html.replace("https://x", "")
