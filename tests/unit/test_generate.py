"""The network generator: deterministic by seed, N respected, proportions, and every file a
valid network file (testbed.topology.load_network)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from testbed.cli import app
from testbed.generate import (
    CATEGORIES,
    MAX_ORGANISATIONS,
    REFERENCE_ORGANISATIONS,
    category_counts,
    generate_network,
    network_document,
)
from testbed.topology import NAME_PATTERN, LoadedNetwork, Role, load_network


def _load(tmp_path: Path, text: str) -> LoadedNetwork:
    path = tmp_path / "network.yaml"
    path.write_text(text, encoding="utf-8")
    return load_network(path, runtime="process")


def test_same_seed_and_count_give_the_same_bytes() -> None:
    assert generate_network(organisations=50, seed="a") == generate_network(organisations=50, seed="a")


def test_different_seeds_or_counts_give_different_files() -> None:
    assert generate_network(organisations=50, seed="a") != generate_network(organisations=50, seed="b")
    assert generate_network(organisations=50, seed="a") != generate_network(organisations=51, seed="a")


@pytest.mark.parametrize("count", [1, 7, 20, 333])
def test_the_file_loads_with_exactly_n_care_organisations(tmp_path: Path, count: int) -> None:
    loaded = _load(tmp_path, generate_network(organisations=count, seed="loads"))
    care = loaded.network.organisations[len(REFERENCE_ORGANISATIONS) :]
    assert len(care) == count and all(org.category for org in care)
    for org in care:  # each its own trust node and data station (no hosting yet)
        assert sorted(node.role for node in org.nodes) == [Role.STATION, Role.TRUST]
    assert loaded.network.seed == "loads"


def test_the_national_services_are_those_of_the_reference_network(tmp_path: Path) -> None:
    network = _load(tmp_path, generate_network(organisations=5, seed="n")).network
    assert network.credential_issuer == "authority"
    assert network.node_of("authority", Role.TRUST) is not None
    assert [n.name for _, n in network.nodes_with_role(Role.CONSENT)] == ["consent"]
    assert network.node_of("hdab", Role.HDAB) is not None and network.node_of("hdab", Role.TRUST) is not None
    assert network.node_of("welldata", Role.VAULT) is not None
    reference = load_network(Path("scenarios/networks/reference.yaml")).network
    for service in REFERENCE_ORGANISATIONS:
        assert network.organisation(service["id"]).ura == reference.organisation(service["id"]).ura


def test_proportions_for_a_thousand_organisations(tmp_path: Path) -> None:
    network = _load(tmp_path, generate_network(organisations=1000, seed="big")).network
    counted = Counter(org.category for org in network.organisations if org.category)
    total = sum(c.weight for c in CATEGORIES)
    for category in CATEGORIES:
        assert abs(counted[category.code] - 1000 * category.weight / total) <= 1, category.code
    # The categories the reference network names keep its codes.
    assert {"Z1", "Z3", "Z4"} <= set(counted)


@pytest.mark.parametrize("count", [1, 9, 20, 999, 1000, 12_345])
def test_category_counts_add_up_to_n(count: int) -> None:
    counts = category_counts(count)
    assert sum(counts.values()) == count and all(n >= 0 for n in counts.values())


def test_names_are_unique_and_fit_the_name_pattern() -> None:
    # The largest network has the widest index, so the longest names.
    document = network_document(organisations=MAX_ORGANISATIONS, seed="names")
    ids = [org["id"] for org in document["organisations"]]
    nodes = [node["name"] for org in document["organisations"] for node in org["nodes"]]
    assert len(set(ids)) == len(ids) and len(set(nodes)) == len(nodes)
    assert all(re.fullmatch(NAME_PATTERN, name) and len(name) <= 40 for name in ids + nodes)
    assert all(org["name"] and org.get("city", "x") for org in document["organisations"])


def test_uras_are_unique_eight_digit_texts() -> None:
    """URA numbers carry no published check digit: valid means 8 digits, kept as text (a
    leading zero is part of the number), and unique in the network."""
    uras = [org["ura"] for org in network_document(organisations=MAX_ORGANISATIONS, seed="uras")["organisations"]]
    assert all(isinstance(ura, str) and re.fullmatch(r"\d{8}", ura) for ura in uras)
    assert len(set(uras)) == len(uras)
    text = generate_network(organisations=200, seed="uras")
    written = [org["ura"] for org in yaml.safe_load(text)["organisations"]]
    leading_zero = next(ura for ura in written if ura.startswith("0"))
    assert f"ura: '{leading_zero}'" in text  # quoted, so no YAML reader takes it for a number


def test_a_wrong_count_is_refused() -> None:
    with pytest.raises(ValueError, match="between 1 and"):
        generate_network(organisations=0, seed="x")


def test_the_command_writes_a_file_that_validates(tmp_path: Path) -> None:
    out = tmp_path / "g.yaml"
    runner = CliRunner()
    written = runner.invoke(app, ["generate", "network", "--organisations", "20", "--seed", "x", "--out", str(out)])
    assert written.exit_code == 0, written.output
    assert out.read_text(encoding="utf-8") == generate_network(organisations=20, seed="x")
    checked = runner.invoke(app, ["validate", str(out)])
    assert checked.exit_code == 0, checked.output
    refused = runner.invoke(app, ["generate", "network", "--organisations", "0"])
    assert refused.exit_code != 0
