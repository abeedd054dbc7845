"""How the process runtime shares processes among nodes, and where a large network's nodes live."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.generate import generate_network
from testbed.runtime import plan as plan_module
from testbed.runtime.plan import ADDRESSES_PER_BLOCK, ALONE_UP_TO, nodes_per_process_for, plan_network
from testbed.topology import load_network


@pytest.mark.parametrize(
    ("nodes", "cores", "expected"),
    [
        (1, 2, 1),
        (ALONE_UP_TO, 2, 1),  # a small network: every node alone, as before
        (ALONE_UP_TO + 1, 2, 9),  # 33 nodes over 4 processes
        (208, 2, 52),
        (2013, 2, 504),
        (2013, 8, 126),  # more cores, more processes
    ],
)
def test_nodes_per_process_follows_size_and_cores(nodes: int, cores: int, expected: int) -> None:
    assert nodes_per_process_for(nodes, cores=cores) == expected


def _network(tmp_path: Path, organisations: int) -> Path:
    path = tmp_path / "network.yaml"
    path.write_text(generate_network(organisations=organisations, seed="plan"), encoding="utf-8")
    return path


def test_a_small_network_keeps_a_process_per_node(tmp_path: Path) -> None:
    plan = plan_network(load_network(_network(tmp_path, 3)))
    assert all(node.process_group is None for node in plan.nodes)


def test_groups_hold_at_most_the_given_number_and_every_node_has_one(tmp_path: Path) -> None:
    plan = plan_network(load_network(_network(tmp_path, 3)), nodes_per_process=4)
    groups = [node.process_group for node in plan.nodes]
    numbered = [group for group in groups if group is not None]
    assert len(numbered) == len(groups)
    assert max(numbered.count(g) for g in set(numbered)) == 4
    assert sorted(set(numbered)) == list(range(-(-len(plan.nodes) // 4)))


def test_more_nodes_than_one_block_run_on_into_the_next(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(plan_module, "_bindable", lambda _host, _port: True)  # no probing of 400 addresses
    plan = plan_network(load_network(_network(tmp_path, 200)))
    hosts = [node.host for node in plan.nodes]
    assert len(hosts) == len(set(hosts)) > ADDRESSES_PER_BLOCK
    first_block = hosts[0].rsplit(".", 1)[0]
    assert hosts[ADDRESSES_PER_BLOCK - 1] == f"{first_block}.254"
    next_block = f"127.0.{int(first_block.rsplit('.', 1)[1]) + 1}"
    assert hosts[ADDRESSES_PER_BLOCK] == f"{next_block}.1"  # never .0 or .255
    assert not any(host.endswith((".0", ".255")) for host in hosts)


def test_taken_addresses_push_the_network_to_a_later_block(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(plan_module, "_bindable", lambda _host, _port: True)
    loaded = load_network(_network(tmp_path, 3))
    first = plan_network(loaded)
    second = plan_network(loaded, taken_hosts={first.nodes[-1].host})
    assert {n.host for n in first.nodes}.isdisjoint({n.host for n in second.nodes})
