"""A network with vendor-hosted organisations, running: one vendor trust node serves a general
practice and a pharmacy as subjects (scenarios/networks/hosted.yaml). Each has its own DID and
its own organisation credential on that node, and the BgZ-with-consent scenario, unchanged but
for its actors, passes with a hosted organisation as requester and as holder."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed.conformance.runner import ConformanceOptions, run_conformance
from testbed.network import RunningNetwork, network_session
from testbed.report.model import Outcome
from testbed.runtime.state import RunFolder, new_run_id
from testbed.topology import load_network
from tests.hosted_scenarios import HOSTED_NETWORK, hosted_copy

pytestmark = pytest.mark.integration
VENDOR_TRUST = "ehr-vendor-trust"


@pytest.fixture(scope="module")
def hosted_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    loaded = load_network(HOSTED_NETWORK)
    folder = RunFolder(tmp_path_factory.mktemp("state"), tmp_path_factory.mktemp("reports"), new_run_id("hosted"))
    with network_session(loaded, "process", folder, owner_pid=os.getpid(), progress=lambda _: None) as running:
        yield running


def claims_of(jwt: str) -> dict[str, Any]:
    """The payload of a JWT, unverified (the trust node verified it when it took it in)."""
    payload = jwt.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def test_each_hosted_organisation_has_its_own_did_and_credential(hosted_network: RunningNetwork) -> None:
    context = hosted_network.state.context
    vendor = context["nodes"][VENDOR_TRUST]
    issuer = context["orgs"]["authority"]["did"]
    with hosted_network.client() as client:
        for org_id in ("gp", "pharmacy"):
            org = context["orgs"][org_id]
            assert (org["trust_node"], org["hosted_by"]) == (VENDOR_TRUST, "ehr-vendor")
            assert org["authorization_server"] == f"{vendor['url']}/oauth2/{org_id}"
            document = client.get(f"{vendor['url']}{org['did_document_path']}")
            assert document.status_code == 200 and document.json()["id"] == org["did"]
            wallet = client.get(f"{vendor['internal_url']}/internal/vcr/v2/holder/{org['subject']}/vc")
            assert wallet.status_code == 200, wallet.text
            [credential] = wallet.json()  # its own wallet holds its own credential, and only that
            claims = claims_of(credential)
            assert (claims["iss"], claims["sub"]) == (issuer, org["did"])
            assert "NutsOrganizationCredential" in claims["vc"]["type"]
            assert claims["vc"]["credentialSubject"]["organization"]["ura"] == org["ura"]
    assert context["orgs"]["gp"]["did"] != context["orgs"]["pharmacy"]["did"]
    assert context["orgs"]["nursing"]["trust_node"] == "hospital-trust"  # hosted by an organisation


@pytest.mark.parametrize(
    ("requester", "holder"),
    [
        ("pharmacy", "hospital"),  # a hosted requester with no node of its own
        ("nursing", "gp"),  # a holder whose own station introspects at the vendor's trust node
        ("pharmacy", "gp"),  # requester and holder on one trust node
    ],
)
def test_bgz_with_consent_passes_for_hosted_organisations(
    hosted_network: RunningNetwork, tmp_path: Path, requester: str, holder: str
) -> None:
    scenario = hosted_copy(tmp_path, requester=requester, holder=holder)
    folder = RunFolder(tmp_path / "state", tmp_path / "reports", new_run_id("attached"))
    results = run_conformance(
        ConformanceOptions(
            scenario_paths=[scenario], network_path=None, runtime="process", folder=folder, attach=hosted_network.folder
        )
    )
    not_passed = [
        f"{c.id}: {c.outcome} {c.message}" for _, c in results.all_checks() if c.outcome != Outcome.PASSED
    ]
    assert not_passed == [] and results.error is None, not_passed or results.error
    assert len(results.all_checks()) == 31 and results.exit_code == 0
