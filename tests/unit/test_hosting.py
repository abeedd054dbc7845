"""Vendor-hosted organisations: a vendor's (or another organisation's) trust node serves an
organisation as a subject. Which node serves whom, what bootstrap does on the hosting node,
what nodes are told, how scenarios reach a hosted organisation, and every rule that refuses
a hosting the network cannot run (the corpus in tests/corpus has a file per refusal too)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from testbed.bootstrap import bootstrap
from testbed.conformance.catalogue import Catalogue
from testbed.errors import ConfigError
from testbed.runtime.nodeconfig import operator_info, peers
from testbed.runtime.plan import NetworkPlan, plan_network
from testbed.scenario.loader import check_scenario, context_shape, load_scenario, resolve_node
from testbed.topology import LoadedNetwork, Network, Organisation, Role, Vendor, load_network
from tests.hosted_scenarios import HOSTED_NETWORK, hosted_copy

VENDOR_TRUST = "ehr-vendor-trust"
SMALL = """\
name: small
seed: s
credential_issuer: authority
vendors:
  - id: vendor
    name: Vendor
    nodes:
      - {name: vendor-trust, role: trust}
organisations:
  - id: authority
    name: Authority
    ura: "10000001"
    hosted_by: vendor
  - id: gp
    name: GP
    ura: "10000002"
    hosted_by: {trust: vendor}
    nodes:
      - {name: gp-station, role: station}
  - id: mitz
    name: Mitz
    ura: "10000003"
    nodes:
      - {name: consent, role: consent}
"""


def served(network: Network, org_id: str, role: Role) -> str | None:
    """The name of the node that serves the organisation in `role`."""
    node = network.node_of(org_id, role)
    return node.name if node is not None else None


@pytest.fixture(scope="module")
def hosted() -> LoadedNetwork:
    return load_network(HOSTED_NETWORK, runtime="process")


@pytest.fixture(scope="module")
def hosted_plan(hosted: LoadedNetwork) -> NetworkPlan:
    return plan_network(hosted)


def test_a_hosted_organisation_resolves_to_its_hosts_node(hosted: LoadedNetwork) -> None:
    network = hosted.network
    assert served(network, "gp", Role.TRUST) == VENDOR_TRUST
    assert served(network, "pharmacy", Role.TRUST) == VENDOR_TRUST
    assert served(network, "nursing", Role.TRUST) == "hospital-trust"
    assert served(network, "gp", Role.STATION) == "gp-station"
    assert network.node_of("pharmacy", Role.STATION) is None  # a station is never hosted
    assert network.host_of("gp", Role.TRUST) == "ehr-vendor"
    assert network.host_of("nursing", Role.TRUST) == "hospital"
    assert network.host_of("hospital", Role.TRUST) is None  # runs its own
    assert network.host_of("mitz", Role.TRUST) is None  # has none, hosted by nobody


def test_a_vendors_nodes_are_nodes_of_the_network(hosted: LoadedNetwork, hosted_plan: NetworkPlan) -> None:
    operators = {node.name: operator for operator, node in hosted.network.nodes()}
    assert isinstance(operators[VENDOR_TRUST], Vendor)
    assert isinstance(operators["gp-station"], Organisation)
    assert [node.name for _, node in hosted.network.nodes_with_role(Role.TRUST)] == [
        "authority-trust",
        "hospital-trust",
        VENDOR_TRUST,
    ]
    assert hosted_plan.node(VENDOR_TRUST).organisation == "ehr-vendor"
    with pytest.raises(KeyError):
        hosted.network.organisation("ehr-vendor")  # a vendor is no organisation


def test_a_hosted_organisations_station_works_through_the_vendors_trust_node(
    hosted: LoadedNetwork, hosted_plan: NetworkPlan
) -> None:
    vendor = hosted_plan.node(VENDOR_TRUST)
    told = peers(hosted, hosted_plan, hosted_plan.node("gp-station"))
    assert told["trust_internal"] == vendor.internal_url
    assert told["authorization_server"] == f"{vendor.public_url}/oauth2/gp"  # the practice's subject, not another
    hospital = peers(hosted, hosted_plan, hosted_plan.node("hospital-station"))
    assert hospital["authorization_server"] == f"{hosted_plan.node('hospital-trust').public_url}/oauth2/hospital"


def test_a_vendors_node_runs_for_the_vendor_which_has_no_ura(hosted: LoadedNetwork) -> None:
    info = operator_info(hosted.network.operator("ehr-vendor"))
    assert (info.id, info.name, info.ura) == ("ehr-vendor", "Voorbeeld EPD Leverancier", "")
    assert operator_info(hosted.network.operator("gp")).ura == "90000003"


def test_the_credential_issuer_may_be_hosted(write_yaml: Any) -> None:
    loaded = load_network(write_yaml(SMALL), runtime="process")
    network = loaded.network
    assert served(network, "authority", Role.TRUST) == "vendor-trust"
    plan = plan_network(loaded)
    # The discovery server is the issuer's trust node: here the vendor's, which hosts it.
    assert peers(loaded, plan, plan.node("vendor-trust"))["discovery_server"] == plan.node("vendor-trust").public_url


def test_scenarios_reach_a_hosted_organisation_as_any_other(hosted: LoadedNetwork, tmp_path: Path) -> None:
    actors = {"requester": "pharmacy", "holder": "gp"}
    assert resolve_node("requester.trust", actors, hosted.network) == VENDOR_TRUST
    assert resolve_node("holder.trust", actors, hosted.network) == VENDOR_TRUST
    assert resolve_node("holder.station", actors, hosted.network) == "gp-station"
    with pytest.raises(LookupError, match="organisation 'pharmacy' \\(actor 'requester'\\) has no station node"):
        resolve_node("requester.station", actors, hosted.network)
    scenario = load_scenario(hosted_copy(tmp_path, requester="pharmacy", holder="gp"))
    check_scenario(scenario, hosted.network, Catalogue.load())  # every placeholder and node fits
    shape = context_shape(hosted.network, scenario.scenario)
    assert shape["orgs"]["pharmacy"].keys() == shape["orgs"]["hospital"].keys() >= {"did", "subject", "trust_node"}
    assert "did" not in shape["orgs"]["mitz"]
    assert VENDOR_TRUST in shape["nodes"]


class FakeTrustNodes:
    """Trust nodes' internal APIs as bootstrap calls them, recording which node got what."""

    def __init__(self, plan: NetworkPlan):
        self.by_host = {node.internal_url.removeprefix("https://"): node.name for node in plan.nodes}
        self.calls: list[tuple[str, str, str]] = []  # (node, method, path)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        node = self.by_host[f"{request.url.host}:{request.url.port}"]
        path = request.url.path
        self.calls.append((node, request.method, path))
        if path == "/internal/vdr/v2/subject":
            subject = json.loads(request.content)["subject"]
            return httpx.Response(200, json={"documents": [{"id": f"did:web:{node}:iam:{subject}"}]})
        if path == "/internal/vcr/v2/issuer/vc":
            return httpx.Response(200, json=f"jwt-about-{json.loads(request.content)['credentialSubject']['id']}")
        return httpx.Response(204)

    def to(self, node: str, path_start: str) -> list[str]:
        return [path for name, _, path in self.calls if name == node and path.startswith(path_start)]


def test_bootstrap_gives_each_hosted_organisation_its_subject_did_and_wallet_on_the_hosting_node(
    hosted: LoadedNetwork, hosted_plan: NetworkPlan
) -> None:
    nodes = FakeTrustNodes(hosted_plan)
    with httpx.Client(transport=httpx.MockTransport(nodes)) as client:
        context = bootstrap(hosted.network, hosted_plan, client, progress=lambda _: None)
    orgs = context["orgs"]
    for org_id in ("gp", "pharmacy"):
        assert orgs[org_id]["did"] == f"did:web:{VENDOR_TRUST}:iam:{org_id}"
        assert (orgs[org_id]["trust_node"], orgs[org_id]["hosted_by"]) == (VENDOR_TRUST, "ehr-vendor")
        vendor = hosted_plan.node(VENDOR_TRUST)
        assert orgs[org_id]["authorization_server"] == f"{vendor.public_url}/oauth2/{org_id}"
    assert orgs["gp"]["did"] != orgs["pharmacy"]["did"]
    assert (orgs["nursing"]["trust_node"], orgs["nursing"]["hosted_by"]) == ("hospital-trust", "hospital")
    assert (orgs["hospital"]["trust_node"], orgs["hospital"]["hosted_by"]) == ("hospital-trust", "")
    assert "did" not in orgs["mitz"] and "trust_node" not in orgs["mitz"]
    # Each hosted organisation's credential goes into its own wallet on the vendor's node.
    assert nodes.to(VENDOR_TRUST, "/internal/vcr/v2/holder/") == [
        "/internal/vcr/v2/holder/gp/vc",
        "/internal/vcr/v2/holder/pharmacy/vc",
    ]
    assert nodes.to("hospital-trust", "/internal/vcr/v2/holder/") == [
        "/internal/vcr/v2/holder/hospital/vc",
        "/internal/vcr/v2/holder/nursing/vc",
    ]
    # The issuer is trusted once per trust node (the vendor's too), not once per organisation.
    trusted = [name for name, _, path in nodes.calls if path == "/internal/vcr/v2/verifier/trust"]
    assert sorted(trusted) == ["authority-trust", "ehr-vendor-trust", "hospital-trust"]
    assert context["nodes"][VENDOR_TRUST]["organisation"] == "ehr-vendor"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("hosted_by: vendor\n", "hosted_by: nobody\n"), r":\d+: hosted_by: 'nobody' is neither a vendor nor an"),
        (("hosted_by: {trust: vendor}", "hosted_by: {trust: gp}"), r"organisation 'gp' cannot host itself"),
        (("hosted_by: {trust: vendor}", "hosted_by: {station: vendor}"), r"a station node cannot be hosted yet"),
        (("hosted_by: {trust: vendor}", "hosted_by: {trust: mitz}"), r"organisation 'mitz' runs no trust node to host"),
        (("hosted_by: {trust: vendor}", "hosted_by: {trust: authority}"), r"hosting does not chain"),
        (
            (
                "{name: gp-station, role: station}",
                "{name: gp-station, role: station}\n      - {name: gp-trust, role: trust}",
            ),
            r"runs its own trust node and cannot also be hosted for trust",
        ),
        (("hosted_by: {trust: vendor}", "hosted_by: {doctor: vendor}"), r"hosted_by\.doctor: Input should be 'trust'"),
        (("hosted_by: vendor\n", "hosted_by: Vendor X\n"), r"hosted_by: String should match pattern"),
        (("{name: vendor-trust, role: trust}", "{name: vendor-trust, role: consent}"), r"a consent node cannot serve"),
        (("{name: vendor-trust, role: trust}", "{name: consent, role: trust}"), r"duplicate node name 'consent'"),
        (("  - id: vendor\n", "  - id: gp\n"), r"vendor id 'gp' is also an organisation's id"),
        (("credential_issuer: authority", "credential_issuer: vendor"), r"'vendor' is not an organisation id"),
        (("    hosted_by: vendor\n", ""), r"nodes: organisation 'authority' has none: it needs at least 1 node"),
    ],
)
def test_a_hosting_the_network_cannot_run_is_refused_with_line(
    write_yaml: Any, change: tuple[str, str], expected: str
) -> None:
    assert change[0] in SMALL
    with pytest.raises(ConfigError, match=expected) as refused:
        load_network(write_yaml(SMALL.replace(*change, 1)))
    assert "file.yaml:" in str(refused.value)


def test_a_hosting_cycle_is_named_as_one(write_yaml: Any) -> None:
    text = SMALL.replace("    hosted_by: vendor\n", "    hosted_by: gp\n").replace(
        "hosted_by: {trust: vendor}", "hosted_by: {trust: authority}"
    )
    with pytest.raises(ConfigError, match=r"hosting cycle for trust: authority -> gp -> authority"):
        load_network(write_yaml(text))


def test_a_station_needs_a_trust_node_its_own_or_its_hosts(write_yaml: Any) -> None:
    """Without hosted_by the hosted practice's station has no trust node to introspect with."""
    text = SMALL.replace("    hosted_by: {trust: vendor}\n", "")
    with pytest.raises(ConfigError, match=r"station node 'gp-station' needs a trust node in organisation 'gp'"):
        load_network(write_yaml(text))
