"""Read a scenario file and check it against the network and the requirement catalogue
before anything starts; every problem names the file and line."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Protocol

from protocols import jsonpath
from testbed.errors import ConfigError
from testbed.files import display_path, sha256_of
from testbed.scenario.expectations import split_source
from testbed.scenario.models import Scenario, Step
from testbed.scenario.templating import NAMESPACES, roots, unknown_filters
from testbed.topology import Network, Role
from testbed.yamlsource import YamlDocument, read_yaml, validate


@dataclass(frozen=True)
class LoadedScenario:
    path: Path
    sha256: str
    scenario: Scenario
    document: YamlDocument

    @property
    def network_path(self) -> Path:
        return (self.path.parent / self.scenario.network).resolve()

    @cached_property
    def display_path(self) -> str:
        """The file as reports name it (worked out once: a load run replays it many times)."""
        return display_path(self.path)


def load_scenario(path: Path) -> LoadedScenario:
    document = read_yaml(path)
    scenario = validate(document, Scenario, "scenario")
    return LoadedScenario(path, sha256_of(path), scenario, document)


class RequirementIndex(Protocol):
    """What the loader asks of the requirement catalogue: which ids exist, and which readings
    a requirement whose sources disagree records."""

    def __contains__(self, requirement_id: object) -> bool: ...

    def reading_ids(self, requirement_id: str) -> list[str]: ...


def check_scenario(loaded: LoadedScenario, network: Network, catalogue: RequirementIndex) -> None:
    """Cross-checks: unique step ids, known requirements (ids in `catalogue`), actors and nodes
    that exist in the network, and placeholders that refer to something defined earlier."""
    doc, scenario = loaded.document, loaded.scenario
    problems: list[str] = []
    org_ids = {org.id for org in network.organisations}
    for actor, org in scenario.actors.items():
        if org not in org_ids:
            problems.append(
                f"{doc.where(('actors', actor))}: actor {actor!r} names organisation {org!r}, "
                "which the network does not have"
            )
    defined = set(NAMESPACES)  # constants are reached as `vars.<name>`
    seen_ids: set[str] = set()
    for index, step in enumerate(scenario.steps):
        where = doc.where(("steps", index))
        if step.id in seen_ids:
            problems.append(f"{doc.where(('steps', index, 'id'))}: duplicate step id {step.id!r}")
        seen_ids.add(step.id)
        for n, requirement in enumerate(step.requirements):
            if requirement not in catalogue:
                problems.append(
                    f"{doc.where(('steps', index, 'requirements', n))}: unknown requirement id {requirement!r}"
                )
        problems.extend(f"{where}: step {step.id!r}: {p}" for p in _reading_problems(step, catalogue))
        problems.extend(f"{where}: step {step.id!r}: {p}" for p in _target_problems(step, scenario, network))
        problems.extend(f"{where}: step {step.id!r}: {p}" for p in _expression_problems(step))
        problems.extend(f"{where}: step {step.id!r}: {p}" for p in _refusal_problems(step))
        values = step.model_dump(by_alias=True, exclude={"capture"})
        for name in sorted(set(unknown_filters(values))):
            problems.append(f"{where}: step {step.id!r} uses unknown filter {name!r}")
        for root in sorted(set(roots(values))):
            if root not in defined:
                problems.append(f"{where}: step {step.id!r} uses {{{{ {root} }}}} before any step captures it")
        defined.update(step.capture)
    if problems:
        raise ConfigError("\n".join([f"{loaded.path}: the scenario does not fit:", *problems]))


def _expression_problems(step: Step) -> list[str]:
    """Regular expressions that do not compile and JSON paths outside the supported subset
    would otherwise only surface half-way through a run."""
    problems = []
    patterns = [c.matches for c in step.expect.json_checks if c.matches is not None]
    patterns += list(step.expect.headers.values())
    patterns += [step.expect.body_matches] if step.expect.body_matches is not None else []
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            problems.append(f"regular expression {pattern!r} does not compile: {exc}")
    for path in step.body_paths:
        try:
            jsonpath.parse(split_source(path)[1])
        except jsonpath.JsonPathError as exc:
            problems.append(str(exc))
    return problems


def _refusal_problems(step: Step) -> list[str]:
    """A check that a request is refused must show which rule refused it: a status alone is
    also what a missing endpoint, a generic error page or a refusal for another reason gives."""
    expected = step.expect.status
    statuses = expected if isinstance(expected, list) else [expected] if expected is not None else []
    if step.request is None or not statuses or any(s < 400 for s in statuses):
        return []
    if step.expect.json_checks or step.expect.headers or step.expect.body_matches is not None:
        return []
    return [
        "expects a refusal but checks only its status: also assert what identifies the rule that refused "
        "(the problem type, the OAuth error, the OperationOutcome's code, the SOAP fault's subcode)"
    ]


def _reading_problems(step: Step, catalogue: RequirementIndex) -> list[str]:
    """A step may say which reading of a disputed requirement it follows: only of a requirement
    it verifies, and only a reading that requirement records."""
    problems = []
    for requirement, reading in step.readings.items():
        if requirement not in step.requirements:
            problems.append(f"readings: {requirement} is not one of the step's requirements")
        elif requirement in catalogue and reading not in (known := catalogue.reading_ids(requirement)):
            recorded = ", ".join(known) if known else "none"
            problems.append(f"readings: {requirement} records no reading {reading!r} (it records: {recorded})")
    return problems


def _target_problems(step: Step, scenario: Scenario, network: Network) -> list[str]:
    if step.request is not None:
        try:
            resolve_node(step.request.node, scenario.actors, network)
        except LookupError as exc:
            return [str(exc)]
        return []
    action = step.action
    assert action is not None
    if action.name == "request-access-token":
        missing = [n for n in ("requester", "holder", "scope") if getattr(action, n) is None]
        if missing:
            return [f"action request-access-token needs {', '.join(missing)}"]
        actors = (str(action.requester), str(action.holder))  # both given: checked just above
        unknown = [a for a in actors if a not in scenario.actors]
        if unknown:
            return [f"unknown actor {a!r} (declare it under 'actors')" for a in unknown]
        return [
            f"actor {a!r} is organisation {scenario.actors[a]!r}, which has no trust node"
            for a in actors
            if network.node_of(scenario.actors[a], Role.TRUST) is None
        ]
    if action.name == "wait" and action.seconds is None:
        return ["action wait needs 'seconds'"]
    return []


def resolve_node(reference: str, actors: dict[str, str], network: Network) -> str:
    """'<actor>.<role>' or a node name -> the node name."""
    names = {node.name for _, node in network.nodes()}
    if reference in names:
        return reference
    actor, _, role = reference.partition(".")
    if actor in actors and role in {r.value for r in Role}:
        node = network.node_of(actors[actor], Role(role))
        if node is None:
            raise LookupError(f"organisation {actors[actor]!r} (actor {actor!r}) has no {role} node")
        return node.name
    raise LookupError(f"node {reference!r} is neither a node of the network nor '<actor>.<role>'")
