"""`testbed matrix` and `testbed diff` on real nodes: the reference consent service named twice
by URL, as two vendors, has the same outcomes twice; a consent service started with a defect,
registered as a third implementation, shows its failures; and the diff of a passing and a
failing run of the consent profile exits 1, naming the regression.

The consent profile is the quickest: the implementations under test run in one small network
of their own (the CA shared with the matrix's runs, as a vendor's would be), and each matrix run
boots the reference network around the implementation it tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from testbed.network import RunningNetwork, network_session
from testbed.runtime.state import RunFolder, new_run_id
from testbed.topology import load_network
from tests.conftest import ROOT

pytestmark = pytest.mark.integration
FAULT = "closed-question-always-permit"  # breaks CONSENT-XACML-02, CONSENT-DEC-02 and CONSENT-JSON-01
BROKEN = ("CONSENT-XACML-02", "CONSENT-DEC-02", "CONSENT-JSON-01")
# Two consent services side by side (a network without stations may have several), the second
# with a known defect; a trust node, because a network's credential issuer needs one.
IMPLEMENTATIONS_NETWORK = f"""
name: vendors
seed: vendors-under-test
credential_issuer: authority
organisations:
  - id: authority
    name: Network Authority
    ura: "90000001"
    nodes:
      - {{name: authority-trust, role: trust}}
  - id: mitz
    name: Landelijke Toestemmingsvoorziening
    ura: "90000004"
    nodes:
      - {{name: consent, role: consent}}
  - id: broken
    name: Broken Consent Vendor
    ura: "90000009"
    nodes:
      - {{name: broken-consent, role: consent, settings: {{fault: {FAULT}}}}}
"""


def registry_text(running: RunningNetwork) -> str:
    plans = {node.plan.name: node.plan for node in running.state.nodes}

    def entry(name: str, vendor: str, node: str, xfail: str = "") -> str:
        plan = plans[node]
        reached = f"{{url: '{plan.public_url}', internal_url: '{plan.internal_url}'}}"
        return (
            f"  - name: {name}\n    vendor: {vendor}\n    product: Consent service\n    version: '1.0'\n"
            f"    role: consent\n    implementation: {reached}\n" + xfail
        )

    declared = "    xfail:\n      CONSENT-XACML-04: purpose of use is read from release 1.1 on\n"
    return "title: Consent services\nimplementations:\n" + "".join(
        [
            entry("vendor-a", "Vendor A", "consent", declared),
            entry("vendor-b", "Vendor B", "consent"),
            entry("vendor-c", "Vendor C", "broken-consent"),
        ]
    )


def run_testbed(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "testbed.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )


@dataclass
class MatrixRun:
    out: Path
    done: subprocess.CompletedProcess[str]
    seconds: float

    @property
    def matrix(self) -> dict:
        return json.loads((self.out / "matrix.json").read_text(encoding="utf-8"))

    def row(self, name: str) -> dict:
        return next(row for row in self.matrix["implementations"] if row["name"] == name)


@pytest.fixture(scope="module")
def matrix_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MatrixRun]:
    base = tmp_path_factory.mktemp("matrix")
    network = base / "vendors.yaml"
    network.write_text(IMPLEMENTATIONS_NETWORK, encoding="utf-8")
    folder = RunFolder(base / "vendor-state", base / "vendor-reports", new_run_id("vendors"))
    ca = base / "ca"
    with network_session(
        load_network(network), "process", folder, owner_pid=os.getpid(), progress=lambda _: None, ca_dir=ca
    ) as running:
        registry = base / "implementations.yaml"
        registry.write_text(registry_text(running), encoding="utf-8")
        out = base / "out"
        started = time.monotonic()
        done = run_testbed("matrix", str(registry), "--out", str(out), "--ca", str(ca), "--state", str(base / "state"))
        yield MatrixRun(out, done, time.monotonic() - started)


def test_two_registrations_of_one_implementation_have_the_same_outcomes(matrix_run: MatrixRun) -> None:
    done = matrix_run.done
    assert done.returncode == 1, done.stdout + done.stderr  # the broken third fails its profile
    a, b = matrix_run.row("vendor-a"), matrix_run.row("vendor-b")
    assert a["verdict"] == b["verdict"] == "conforms"
    assert a["vendor"] == "Vendor A" and b["vendor"] == "Vendor B"
    assert a["cells"].keys() == b["cells"].keys() and len(a["cells"]) > 20
    assert {k: c["state"] for k, c in a["cells"].items()} == {k: c["state"] for k, c in b["cells"].items()}
    assert a["suite_version"] == b["suite_version"] and a["suite_version"].startswith("sha256:")
    # Vendor A's declared expected failure is shown although it passed, with its reason.
    assert a["cells"]["CONSENT-XACML-04"] == {
        "state": "passed",
        "xfail": "purpose of use is read from release 1.1 on",
        "checks": a["cells"]["CONSENT-XACML-04"]["checks"],
    }
    markdown = (matrix_run.out / "matrix.md").read_text(encoding="utf-8")
    assert "purpose of use is read from release 1.1 on" in markdown and "vendor-a" in markdown
    print(f"matrix of three consent implementations: {matrix_run.seconds:.0f} s")


def test_a_broken_implementation_shows_its_failures(matrix_run: MatrixRun) -> None:
    c = matrix_run.row("vendor-c")
    assert c["verdict"] == "fails" and c["failed"] > 0
    failed = {k for k, cell in c["cells"].items() if cell["state"] == "failed"}
    assert failed & set(BROKEN), failed
    assert all(matrix_run.row("vendor-a")["cells"][k]["state"] == "passed" for k in failed)
    html = (matrix_run.out / "matrix.html").read_text(encoding="utf-8")
    assert "vendor-c" in html and "✗ failed" in html
    results = json.loads((matrix_run.out / c["run"] / "results.json").read_text(encoding="utf-8"))
    assert [r["name"] for r in results["registered"]] == ["vendor-c"]
    assert results["registered"][0]["node"] == "consent"


def test_diff_of_a_passing_and_a_failing_run_names_the_regression(matrix_run: MatrixRun) -> None:
    passing = matrix_run.out / matrix_run.row("vendor-a")["run"]
    failing = matrix_run.out / matrix_run.row("vendor-c")["run"] / "results.json"
    done = run_testbed("diff", str(passing), str(failing), timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "REGRESSIONS" in done.stdout and "verdict conforms -> fails" in done.stdout
    regressed = json.loads(run_testbed("diff", str(passing), str(failing), "--json", timeout=60).stdout)
    assert regressed["like_for_like"] is True and regressed["new_failures"]
    first = regressed["new_failures"][0]["check"]
    assert f"new failure: {first}" in done.stdout
    back = run_testbed("diff", str(failing), str(passing), timeout=60)
    assert back.returncode == 0, back.stdout + back.stderr
    assert "fixed" in back.stdout and "no regression" in back.stdout
