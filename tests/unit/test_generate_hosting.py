"""The network generator with vendors (`--vendors V`): small practices hosted on a few vendors'
trust nodes, institutions on their own; deterministic by seed; without vendors the file is
exactly what it was."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from testbed.cli import app
from testbed.errors import ConfigError
from testbed.generate import CATEGORIES, MAX_VENDORS, REFERENCE_ORGANISATIONS, generate_network, network_document
from testbed.topology import LoadedNetwork, Network, Role, load_network

SMALL_CODES = {c.code for c in CATEGORIES if c.small}


def _load(tmp_path: Path, text: str) -> LoadedNetwork:
    path = tmp_path / "network.yaml"
    path.write_text(text, encoding="utf-8")
    return load_network(path, runtime="process")


def test_no_vendors_is_the_file_without_the_option() -> None:
    assert generate_network(organisations=40, seed="v", vendors=0) == generate_network(organisations=40, seed="v")
    assert "vendors" not in network_document(organisations=40, seed="v")


def test_small_practices_are_hosted_and_institutions_keep_their_nodes(tmp_path: Path) -> None:
    network = _load(tmp_path, generate_network(organisations=200, seed="v", vendors=4)).network
    assert [vendor.id for vendor in network.vendors] == ["vendor-01", "vendor-02", "vendor-03", "vendor-04"]
    care = network.organisations[len(REFERENCE_ORGANISATIONS) :]
    for org in care:
        own = sorted(node.role for node in org.nodes)
        if org.category in SMALL_CODES:
            assert org.hosted_by in {vendor.id for vendor in network.vendors}, org.id
            assert own == [Role.STATION]  # its own station: a station serves one organisation
            trust = network.node_of(org.id, Role.TRUST)
            assert trust is not None and trust.name == f"{org.hosted_by}-trust"
        else:
            assert org.hosted_by is None and own == [Role.STATION, Role.TRUST], org.id
    for service in network.organisations[: len(REFERENCE_ORGANISATIONS)]:
        assert service.hosted_by is None


def test_a_few_vendors_hold_most_of_the_market_and_each_has_a_customer() -> None:
    document = network_document(organisations=1000, seed="market", vendors=5)
    customers = Counter(org["hosted_by"] for org in document["organisations"] if "hosted_by" in org)
    shares = [customers[f"vendor-0{k}"] for k in range(1, 6)]
    assert all(share >= 1 for share in shares)
    assert shares[0] == max(shares) and shares[0] > 2 * shares[-1]  # shares fall with rank (1/k)
    care = document["organisations"][len(REFERENCE_ORGANISATIONS) :]  # the reference network's own are not hosted
    assert sum(shares) == sum(1 for org in care if org.get("category") in SMALL_CODES)


def test_the_same_seed_gives_the_same_hosting_and_only_hosting_differs() -> None:
    assert generate_network(organisations=80, seed="s", vendors=3) == generate_network(
        organisations=80, seed="s", vendors=3
    )
    assert generate_network(organisations=80, seed="s", vendors=3) != generate_network(
        organisations=80, seed="t", vendors=3
    )
    plain = network_document(organisations=80, seed="s")["organisations"]
    hosted = network_document(organisations=80, seed="s", vendors=3)["organisations"]
    identity = ("id", "name", "ura", "city", "category")
    assert [[o.get(k) for k in identity] for o in plain] == [[o.get(k) for k in identity] for o in hosted]


def test_fewer_trust_nodes_serve_the_same_organisations(tmp_path: Path) -> None:
    plain = _load(tmp_path, generate_network(organisations=100, seed="n")).network
    hosted = _load(tmp_path, generate_network(organisations=100, seed="n", vendors=3)).network
    reference = {org["id"] for org in REFERENCE_ORGANISATIONS}

    def care_trust_nodes(network: Network) -> int:
        return sum(1 for operator, _ in network.nodes_with_role(Role.TRUST) if operator.id not in reference)

    assert care_trust_nodes(hosted) < care_trust_nodes(plain) / 3
    assert all(hosted.node_of(org.id, Role.TRUST) for org in hosted.organisations if org.id != "mitz")


def test_more_vendors_than_practices_to_host_is_refused() -> None:
    with pytest.raises(ValueError, match="3 vendors need at least as many small practices"):
        network_document(organisations=2, seed="x", vendors=3)
    with pytest.raises(ValueError, match=f"between 0 and {MAX_VENDORS}"):
        network_document(organisations=500, seed="x", vendors=MAX_VENDORS + 1)


def test_the_command_takes_vendors(tmp_path: Path) -> None:
    out = tmp_path / "g.yaml"
    runner = CliRunner()
    arguments = ["generate", "network", "-n", "20", "--seed", "x", "--vendors", "2", "--out", str(out)]
    written = runner.invoke(app, arguments)
    assert written.exit_code == 0, written.output
    assert out.read_text(encoding="utf-8") == generate_network(organisations=20, seed="x", vendors=2)
    checked = runner.invoke(app, ["validate", str(out)])
    assert checked.exit_code == 0, checked.output
    refused = runner.invoke(app, ["generate", "network", "-n", "2", "--vendors", "3"])
    # A message for a person (the command line prints a ConfigError without a traceback).
    assert isinstance(refused.exception, ConfigError)
    assert "3 vendors need at least as many small practices" in str(refused.exception)


def test_patients_per_station_is_set_on_every_care_station_only() -> None:
    from testbed.generate import REFERENCE_ORGANISATIONS, network_document

    national = {service["id"] for service in REFERENCE_ORGANISATIONS}
    document = network_document(organisations=12, seed="p", patients=200)
    nodes = [(org["id"], node) for org in document["organisations"] for node in org.get("nodes", [])]
    stations = [(org_id, node) for org_id, node in nodes if node["role"] == "station"]
    assert [node.get("settings") for org_id, node in stations if org_id not in national] == [{"patients": 200}] * 12
    assert all("patients" not in node.get("settings", {}) for org_id, node in stations if org_id in national)
    plain = network_document(organisations=12, seed="p")
    assert not any("settings" in node for org in plain["organisations"] for node in org.get("nodes", []))


def test_patients_out_of_range_is_refused() -> None:
    import pytest

    from testbed.generate import network_document

    with pytest.raises(ValueError, match="patients must be between 1 and 100000"):
        network_document(organisations=3, patients=0)
