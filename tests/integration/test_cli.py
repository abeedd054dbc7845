"""The `testbed` command as a person runs it: exit codes, report files, and no process left
behind after a passing, failing, broken or interrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

from testbed.schemas import all_schemas
from tests.conftest import FIXTURES, REFERENCE_NETWORK, REFERENCE_NODES, ROOT

pytestmark = pytest.mark.integration
TESTBED = [sys.executable, "-m", "testbed.cli"]


def run(tmp_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TESTBED, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )


def roots(tmp_path: Path) -> list[str]:
    return ["--state", str(tmp_path / "state"), "--reports", str(tmp_path / "reports")]


def node_processes(tmp_path: Path) -> list[str]:
    """Node processes whose command line points into this test's state folder."""
    marker = f"nodes\0--config\0{tmp_path}/state/".encode()
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes()
        except OSError:
            continue  # the process ended while we looked
        if marker in text:
            found.append(text.replace(b"\0", b" ").decode(errors="replace"))
    return found


def wait_until_gone(tmp_path: Path, seconds: float = 10) -> list[str]:
    deadline = time.monotonic() + seconds
    while (left := node_processes(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def only_run_folder(tmp_path: Path) -> Path:
    [folder] = list((tmp_path / "reports").iterdir())
    return folder


def test_passing_run_writes_every_report_and_leaves_nothing(tmp_path):
    done = run(tmp_path, "conformance", "scenarios", *roots(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    folder = only_run_folder(tmp_path)
    results = json.loads((folder / "results.json").read_text())
    jsonschema.validate(results, all_schemas()["results.schema.json"])
    assert results["summary"]["failed"] == 0 and results["summary"]["must_failed"] == 0
    assert results["summary"]["passed"] == results["summary"]["total"] >= 8
    suites = ET.parse(folder / "junit.xml").getroot()
    cases = suites.findall(".//testcase")
    assert len(cases) >= 8 and sum(int(suite.get("tests") or 0) for suite in suites) == len(cases)
    assert all(
        suite.find(f"properties/property[@name='requirements:{case.get('name', '').split(':')[0]}']") is not None
        for suite in suites
        for case in suite.findall("testcase")
    )
    assert "bgz-consent" in (folder / "report.html").read_text()
    assert {p.name for p in (folder / "logs").iterdir()} >= {"hospital-trust.log", "consent.log"}
    assert "passed" in done.stdout and "report.html" in done.stdout
    assert node_processes(tmp_path) == []
    assert list((tmp_path / "state" / "runs").iterdir()) == []  # state removed, reports kept


def test_wrong_expectation_exits_one_with_evidence_in_html(tmp_path):
    done = run(tmp_path, "conformance", str(FIXTURES / "wrong-expectation.yaml"), *roots(tmp_path))
    assert done.returncode == 1, done.stdout + done.stderr
    html = (only_run_folder(tmp_path) / "report.html").read_text()
    assert "/fhir/Patient/does-not-matter" in html  # the failing request
    assert "an access token is required" in html  # the response body
    assert "GET /fhir/Patient/does-not-matter" in html  # the node's log tail
    results = json.loads((only_run_folder(tmp_path) / "results.json").read_text())
    outcomes = [c["outcome"] for c in results["scenarios"][0]["checks"]]
    assert outcomes == ["passed", "failed", "skipped"]
    assert node_processes(tmp_path) == []


def test_malformed_scenario_exits_two_naming_file_and_line(tmp_path):
    done = run(tmp_path, "conformance", str(FIXTURES / "malformed.yaml"), *roots(tmp_path))
    assert done.returncode == 2
    assert "malformed.yaml:11: steps[0].expect.status" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "reports").exists() and not (tmp_path / "state").exists()  # nothing half-done


def test_node_that_cannot_start_is_reported_with_its_log(tmp_path):
    network = ["--network", str(FIXTURES / "broken-station.yaml")]
    done = run(tmp_path, "conformance", str(FIXTURES / "slow.yaml"), *network, *roots(tmp_path))
    assert done.returncode == 2
    assert "hospital-station exited during start-up" in done.stderr
    assert "no-such-defect" in done.stderr  # the log tail carries the node's own complaint
    assert "Traceback (most recent call last)" not in done.stdout
    assert wait_until_gone(tmp_path) == []
    results = json.loads((only_run_folder(tmp_path) / "results.json").read_text())
    assert results["exit_code"] == 2 and "exited during start-up" in results["error"]


def start_slow_run(tmp_path: Path) -> tuple[subprocess.Popen[str], list[str]]:
    """`testbed conformance` on the slow fixture, returned once its first check has finished
    (every node is up) and the second waits a minute; with the output lines seen so far."""
    process = subprocess.Popen(
        [*TESTBED, "conformance", str(FIXTURES / "slow.yaml"), *roots(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if "slow/metadata" in line:
            break
    return process, seen


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_interrupted_run_leaves_no_process(tmp_path, how):
    process, seen = start_slow_run(tmp_path)
    assert len(node_processes(tmp_path)) == REFERENCE_NODES, "".join(seen)
    process.send_signal(how)
    process.wait(timeout=30)
    rest = process.stdout.read()
    if how != signal.SIGKILL:
        assert process.returncode == 130
        assert "interrupted: every node this run started has been stopped" in rest
        assert list((tmp_path / "state" / "runs").iterdir()) == []
    # Even a killed harness leaves no process: its nodes notice and stop themselves.
    assert wait_until_gone(tmp_path) == []
    if how == signal.SIGKILL:
        # Its state stays until the next run sweeps it away.
        [abandoned] = list((tmp_path / "state" / "runs").iterdir())
        next_run = run(tmp_path, "conformance", str(FIXTURES / "wrong-expectation.yaml"), *roots(tmp_path))
        assert f"cleaned up run {abandoned.name}" in next_run.stdout
        assert not abandoned.exists()


def test_up_status_attach_down(tmp_path):
    up = run(tmp_path, "up", "--network", str(REFERENCE_NETWORK), *roots(tmp_path))
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert len(node_processes(tmp_path)) == REFERENCE_NODES
        status = run(tmp_path, "status", *roots(tmp_path))
        assert status.returncode == 0 and status.stdout.count(" up ") >= REFERENCE_NODES, status.stdout
        attached = run(tmp_path, "conformance", "scenarios", "--attach", *roots(tmp_path))
        assert attached.returncode == 0, attached.stdout + attached.stderr
        assert len(node_processes(tmp_path)) == REFERENCE_NODES  # attaching leaves the network running
    finally:
        down = run(tmp_path, "down", *roots(tmp_path))
    assert down.returncode == 0 and "stopped run" in down.stdout
    assert wait_until_gone(tmp_path) == []
    after = run(tmp_path, "status", *roots(tmp_path))
    assert after.returncode == 2 and "no network is up" in after.stderr


def test_down_all_cleans_leftovers_of_a_killed_up(tmp_path):
    up = run(tmp_path, "up", "--network", str(REFERENCE_NETWORK), *roots(tmp_path))
    assert up.returncode == 0, up.stderr
    down = run(tmp_path, "down", "--all", *roots(tmp_path))
    assert down.returncode == 0
    assert wait_until_gone(tmp_path) == []
    assert list((tmp_path / "state" / "runs").iterdir()) == []


@dataclass(frozen=True)
class UrlCase:
    """Nodes of another running network that stand in for this network's nodes, named by URL,
    and what the run against them must pass."""

    replaced: tuple[str, ...]
    arguments: tuple[str, ...]
    scenarios: frozenset[str]
    untested: str = ""  # a prefix of the MUSTs left untested on purpose: the run is then incomplete (exit 3)


# A trust node under test uses the discovery server it was configured with. The hospital's node
# of another run knows that run's server, so its case leaves the discovery scenario out (and is
# incomplete for just the discovery requirements); the
# authority's node is itself the server, so its case runs everything. A station comes with its
# organisation's trust node and the consent service it was configured with; an access body with
# its organisation's trust node (it harvested the stations of its own network).
URL_CASES = {
    "hospital-trust": UrlCase(
        ("hospital-trust",),
        (
            "scenarios",
            "scenarios/profiles/trust/token-rules.yaml",
            "scenarios/profiles/trust/subjects-and-tokens.yaml",
            "scenarios/profiles/trust/status-list-outage.yaml",
        ),
        frozenset(
            {
                "bgz-consent",
                "bgz-dpop",
                "trust-token-rules",
                "trust-subjects-and-tokens",
                "trust-status-list-outage",
                "federated-analysis",
            }
        ),
        untested="TRUST-DISC-",
    ),
    "authority-trust": UrlCase(("authority-trust",), (), frozenset({"trust-discovery", "welldata", "bgz-consent"})),
    "consent": UrlCase(("consent",), ("--profile", "consent"), frozenset({"consent-closed-question"})),
    "station": UrlCase(
        ("hospital-trust", "hospital-station", "consent"),
        ("--profile", "station"),
        frozenset({"station-primary-use", "station-secondary-use"}),
        # The station asks the consent service it was set up with, reached by URL here: the
        # harness cannot stop it, so the outage checks are skipped and their MUST untested.
        untested="STATION-RESIL",
    ),
    "hdab": UrlCase(
        (
            "hdab-trust",
            "hdab",
            *("hospital-trust", "hospital-station", "gp-trust", "gp-station", "nursing-trust", "nursing-station"),
            "consent",
        ),
        ("--profile", "hdab"),
        frozenset({"hdab-applications"}),
    ),
    "vault": UrlCase(("welldata-trust", "welldata-vault"), ("--profile", "vault"), frozenset()),
}


def with_url_nodes(network: str, nodes: dict[str, dict[str, str]]) -> str:
    """The network file with each named node's implementation given by its URLs."""
    for name, plan in nodes.items():
        role = plan["role"]
        declared = f"      - name: {name}\n        role: {role}\n"
        assert declared in network, name
        network = network.replace(
            declared,
            f"{declared}        implementation:\n"
            f"          url: {plan['public_url']}\n"
            f"          internal_url: {plan['internal_url']}\n",
        )
    return network


@pytest.mark.parametrize("case", sorted(URL_CASES))
def test_role_replaced_by_url_of_a_running_implementation(tmp_path, case):
    """The vendor path: a role's implementation is something already running, named by URL;
    the harness bootstraps and tests it through its APIs only."""
    spec = URL_CASES[case]
    ca = ["--ca", str(tmp_path / "ca")]
    other = tmp_path / "other"
    other_roots = ["--state", str(other / "state"), "--reports", str(other / "reports")]
    up = run(tmp_path, "up", "--network", str(REFERENCE_NETWORK), *ca, *other_roots)
    assert up.returncode == 0, up.stderr
    try:
        [running] = list((other / "state" / "runs").iterdir())
        state = json.loads((running / "state.json").read_text())
        plans = {n["plan"]["name"]: n["plan"] for n in state["nodes"]}
        network_file = tmp_path / "with-url-nodes.yaml"
        network_file.write_text(with_url_nodes(REFERENCE_NETWORK.read_text(), {n: plans[n] for n in spec.replaced}))
        done = run(tmp_path, "conformance", *spec.arguments, "--network", str(network_file), *ca, *roots(tmp_path))
        assert done.returncode == (3 if spec.untested else 0), done.stdout + done.stderr
        results = json.loads((only_run_folder(tmp_path) / "results.json").read_text())
        assert results["summary"]["failed"] == 0
        untested = results["summary"]["must_untested"]
        assert all(r.startswith(spec.untested) for r in untested) and bool(untested) == bool(spec.untested), untested
        assert {s["name"] for s in results["scenarios"]} >= spec.scenarios
        kinds = {i["node"]: i["kind"] for i in results["implementations"]}
        assert all(kinds[name] == "url" for name in spec.replaced) and kinds["institute-trust"] == "reference"
        assert len(node_processes(tmp_path)) == 0  # this run's own nodes are gone
        assert len(node_processes(other)) == REFERENCE_NODES  # the implementations under test were left alone
    finally:
        run(tmp_path, "down", "--all", *other_roots)
    assert wait_until_gone(other) == []


@pytest.mark.parametrize("stand_in", ["a station", "nothing"])
def test_a_node_that_is_not_what_the_network_says_stops_the_run_before_any_check(tmp_path, stand_in):
    """A consent node named by URL where a station answers (every consent endpoint a 404), or
    where nothing listens, must not pass a single check: the harness asks each node's role first."""
    ca = ["--ca", str(tmp_path / "ca")]
    other = tmp_path / "other"
    other_roots = ["--state", str(other / "state"), "--reports", str(other / "reports")]
    consent = {"role": "consent", "public_url": "https://127.0.0.1:9", "internal_url": "https://127.0.0.1:9"}
    if stand_in == "a station":
        up = run(tmp_path, "up", "--network", str(REFERENCE_NETWORK), *ca, *other_roots)
        assert up.returncode == 0, up.stderr
        [running] = list((other / "state" / "runs").iterdir())
        state = json.loads((running / "state.json").read_text())
        station = next(n["plan"] for n in state["nodes"] if n["plan"]["name"] == "hospital-station")
        consent |= {"public_url": station["public_url"], "internal_url": station["internal_url"]}
    try:
        network_file = tmp_path / "consent-elsewhere.yaml"
        network_file.write_text(with_url_nodes(REFERENCE_NETWORK.read_text(), {"consent": consent}))
        done = run(
            tmp_path, "conformance", "--profile", "consent", "--network", str(network_file), *ca, *roots(tmp_path)
        )
        assert done.returncode == 2, done.stdout + done.stderr
        expected = "says role 'station'; a consent node was expected" if stand_in == "a station" else "consent"
        assert expected in " ".join(done.stderr.split())
        results = json.loads((only_run_folder(tmp_path) / "results.json").read_text())
        assert results["verdict"] == "error" and results["summary"]["passed"] == 0
        listed = {i["node"]: i for i in results["implementations"]}
        assert listed["consent"]["kind"] == "url" and listed["consent"]["public_url"] == consent["public_url"]
        html = (only_run_folder(tmp_path) / "report.html").read_text()
        assert 'class="alert alert-ok"' not in html and "no verdict on the implementations" in html
    finally:
        run(tmp_path, "down", "--all", *other_roots)
    assert wait_until_gone(tmp_path) == []


def first_variant(role: str) -> str:
    from testbed.conformance.mutants import load_variants

    return load_variants(role)[0].fault


@pytest.mark.parametrize("role", ["trust", "consent", "station", "hdab", "vault"])
def test_the_selftest_catches_a_faulty_variant_and_passes_the_reference_node(tmp_path, role):
    """One variant per role (the whole set runs in `testbed selftest`): the profile catches the
    defect, and against the reference node itself it conforms, covering its role completely."""
    variant = first_variant(role)
    done = run(tmp_path, "selftest", "--profile", role, "--variant", variant, *roots(tmp_path), timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    [folder] = list((tmp_path / "reports").iterdir())
    report = json.loads((folder / "selftest.json").read_text())
    outcomes = {v["variant"]: v for v in report["variants"]}
    assert outcomes["identity"]["caught"] and outcomes["identity"]["exit_code"] == 0
    assert outcomes[variant]["caught"] and outcomes[variant]["caught_by"], outcomes[variant]
    identity = json.loads((folder / role / "identity" / "results.json").read_text())
    assert identity["verdict"] == "conforms" and identity["profiles"] == [role]
    assert {r["role"] for r in identity["requirements"]} == {role}
    assert all(r["outcome"] == "passed" for r in identity["requirements"] if r["level"] in ("MUST", "SHOULD"))
    assert wait_until_gone(tmp_path) == []
