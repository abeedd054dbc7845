"""Load spread over a whole network (issue 16, item 4): who may play a spread actor, and draws."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from testbed.errors import ConfigError
from testbed.generate import generate_network
from testbed.load.runner import Overrides, settings_for
from testbed.scenario.loader import load_scenario
from testbed.scenario.spread import Spread, roles_asked_of
from testbed.topology import Network, Role, load_network
from tests.conftest import ROOT

BGZ = ROOT / "scenarios" / "bgz-consent.yaml"


def _network(tmp_path: Path, *, organisations: int, vendors: int = 0) -> Network:
    path = tmp_path / "network.yaml"
    path.write_text(generate_network(organisations=organisations, seed="spread", vendors=vendors), encoding="utf-8")
    return load_network(path).network


def test_the_roles_an_actor_needs_come_from_the_steps() -> None:
    scenario = load_scenario(BGZ).scenario
    assert roles_asked_of(scenario, "holder") == {Role.TRUST, Role.STATION}
    assert Role.TRUST in roles_asked_of(scenario, "requester")
    assert roles_asked_of(scenario, "nobody") == set()


def test_candidates_are_care_organisations_with_the_nodes_asked_of_them(tmp_path: Path) -> None:
    network = _network(tmp_path, organisations=30, vendors=3)
    spread = Spread(load_scenario(BGZ).scenario, network, ["requester", "holder"])
    care = [org for org in network.organisations if org.category]
    # National services (the network authority, the consent service, the access body) never play them.
    assert {"authority", "mitz", "hdab"}.isdisjoint(spread.candidates["requester"])
    # Hosted practices count: their trust node is their vendor's.
    hosted = [org.id for org in care if org.hosted_by]
    assert hosted and set(hosted) <= set(spread.candidates["requester"])
    assert set(spread.candidates["holder"]) == {
        org.id for org in care if network.node_of(org.id, Role.STATION) is not None
    }


def test_draws_cover_the_network_and_never_cast_one_organisation_twice(tmp_path: Path) -> None:
    network = _network(tmp_path, organisations=20)
    spread = Spread(load_scenario(BGZ).scenario, network, ["requester", "holder"])
    rng = random.Random(1)
    draws = [spread.draw(rng) for _ in range(2000)]
    assert all(d["requester"] != d["holder"] for d in draws)
    assert all(d["consent"] == "mitz" for d in draws)  # actors not spread keep the scenario's organisation
    holders = Counter(d["holder"] for d in draws)
    assert set(holders) == set(spread.candidates["holder"])  # every able holder is reached
    assert Spread(load_scenario(BGZ).scenario, network, ["holder"]).draw(random.Random(1)) == Spread(
        load_scenario(BGZ).scenario, network, ["holder"]
    ).draw(random.Random(1))  # a seed gives the same draws


def test_an_actor_the_scenario_does_not_have_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="actors that scenario bgz-consent does not have: patient"):
        Spread(load_scenario(BGZ).scenario, _network(tmp_path, organisations=3), ["requester", "patient"])


def test_too_few_able_organisations_are_refused(tmp_path: Path) -> None:
    network = _network(tmp_path, organisations=1)
    spread = Spread(load_scenario(BGZ).scenario, network, ["requester", "holder"])
    assert {"gp", "hospital", "nursing"} <= set(spread.candidates["holder"])  # the reference network's, too
    # No care organisation runs a consent service.
    with pytest.raises(ConfigError, match=r"needs at least 3 care organisations .* consent: 0"):
        Spread(load_scenario(BGZ).scenario, network, ["requester", "holder", "consent"])


def test_the_command_line_replaces_the_scenarios_spread() -> None:
    loaded = load_scenario(BGZ)
    assert settings_for(loaded, Overrides()).spread == []
    assert settings_for(loaded, Overrides(spread=["requester", "holder"])).spread == ["requester", "holder"]
