"""Load spread over a whole network: each flow of a simulated user draws the organisations that
play some of the scenario's actors (`load: spread: [requester, holder]`) from every care
organisation able to play them, so traffic reaches every node as real traffic would, not the
one pair of organisations the scenario names.

An organisation can play an actor when it is a care provider (it has a care category) and it
has, of its own or through its host, every node the scenario's steps ask of that actor (a
holder whose station the scenario reads needs a station; a requester asking for a token needs
a trust node). Actors drawn in one flow are distinct organisations."""

from __future__ import annotations

import random

from testbed.errors import ConfigError
from testbed.scenario.models import Scenario
from testbed.topology import Network, Role


def node_references(scenario: Scenario) -> list[str]:
    """Every '<actor>.<role>' (or node name) the scenario's steps send to."""
    return [reference for step in scenario.steps if (reference := step.node_reference) is not None]


def roles_asked_of(scenario: Scenario, actor: str) -> set[Role]:
    """The roles whose nodes the scenario sends to on behalf of `actor`."""
    known = {role.value for role in Role}
    roles = {
        Role(role)
        for reference in node_references(scenario)
        if reference.partition(".")[0] == actor and (role := reference.partition(".")[2]) in known
    }
    for step in scenario.steps:  # the holder of a token request answers at its trust node's authorization server
        if step.action is not None and step.action.name == "request-access-token" and step.action.holder == actor:
            roles.add(Role.TRUST)
    return roles


class Spread:
    """Who may play each spread actor, and a draw for one flow."""

    def __init__(self, scenario: Scenario, network: Network, actors: list[str]):
        self.fixed = dict(scenario.actors)
        self.candidates: dict[str, list[str]] = {}
        unknown = [actor for actor in actors if actor not in scenario.actors]
        if unknown:
            raise ConfigError(
                f"load spread names actors that scenario {scenario.name} does not have: {', '.join(unknown)} "
                f"(its actors: {', '.join(scenario.actors)})"
            )
        for actor in actors:
            needed = roles_asked_of(scenario, actor)
            able = [
                org.id
                for org in network.organisations
                if org.category and all(network.node_of(org.id, role) is not None for role in needed)
            ]
            self.candidates[actor] = able
        if actors and min(len(able) for able in self.candidates.values()) < len(actors):
            counts = ", ".join(f"{actor}: {len(able)}" for actor, able in self.candidates.items())
            raise ConfigError(
                f"load spread over {', '.join(actors)} needs at least {len(actors)} care organisations able to play "
                f"each of them in network {network.name}; there are {counts}"
            )

    def draw(self, rng: random.Random) -> dict[str, str]:
        """The scenario's actors with each spread actor played by an organisation drawn anew,
        no organisation playing two of them."""
        actors = dict(self.fixed)
        taken: set[str] = set()
        for actor, able in self.candidates.items():
            choice = rng.choice(able)
            while choice in taken:
                choice = rng.choice(able)
            actors[actor] = choice
            taken.add(choice)
        return actors
