"""Read a scenario file and check it against the network and the requirement catalogue
before anything starts; every problem names the file and line."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from protocols import jsonpath
from testbed.errors import ConfigError
from testbed.files import display_path, sha256_of
from testbed.scenario.expectations import split_source
from testbed.scenario.models import HARNESS_END, Fault, Scenario, Step
from testbed.scenario.templating import NAMESPACES, expression_problem, expressions, malformed, root_of, unknown_filters
from testbed.topology import LoadedNetwork, Network, Organisation, Role, UrlImplementation, kind_of, load_network
from testbed.yamlsource import PathKey, YamlDocument, read_yaml, validate, value_at


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
    if not isinstance(document.data, dict):
        raise ConfigError(
            f"{path}:1: not a scenario file: a mapping with 'name', 'network' and 'steps' was expected, "
            f"not {kind_of(document.data)}"
        )
    scenario = validate(document, Scenario, "scenario")
    return LoadedScenario(path, sha256_of(path), scenario, document)


def network_of(loaded: LoadedScenario, *, runtime: str | None = None) -> LoadedNetwork:
    """The network file the scenario names; a problem with it also names the scenario's line
    that refers to it (`runtime`: also check that it can run every node of the network)."""
    try:
        return load_network(loaded.network_path, runtime=runtime)
    except ConfigError as exc:
        where = loaded.document.where(("network",))
        raise ConfigError(f"{where}: network {loaded.scenario.network!r} cannot be used:\n{exc}") from None


class RequirementIndex(Protocol):
    """What the loader asks of the requirement catalogue: which ids exist, and which readings
    a requirement whose sources disagree records."""

    def __contains__(self, requirement_id: object) -> bool: ...

    def reading_ids(self, requirement_id: str) -> list[str]: ...


def check_scenario(loaded: LoadedScenario, network: Network, catalogue: RequirementIndex) -> None:
    """Cross-checks: unique step ids, known requirements (ids in `catalogue`), actors and nodes
    that exist in the network, placeholders that refer to something defined earlier or in the
    network, and thresholds that name steps."""
    problems = scenario_problems(loaded, network, catalogue)
    if problems:
        raise ConfigError("\n".join([f"{loaded.path}: the scenario does not fit:", *problems]))


@dataclass(frozen=True)
class _Checking:
    """What checking one scenario's steps needs at hand."""

    doc: YamlDocument
    scenario: Scenario
    network: Network
    catalogue: RequirementIndex
    shape: dict[str, Any]


def scenario_problems(loaded: LoadedScenario, network: Network, catalogue: RequirementIndex) -> list[str]:
    """Every problem check_scenario finds, each starting with file and line."""
    doc, scenario = loaded.document, loaded.scenario
    problems: list[str] = []
    org_ids = {org.id for org in network.organisations}
    vendor_ids = {vendor.id for vendor in network.vendors}
    for actor, org in scenario.actors.items():
        if org in vendor_ids:
            problems.append(
                f"{doc.where(('actors', actor))}: actor {actor!r} names vendor {org!r}: an actor is an organisation "
                "(one the vendor hosts, or any other); address a vendor's node by its name"
            )
        elif org not in org_ids:
            problems.append(
                f"{doc.where(('actors', actor))}: actor {actor!r} names organisation {org!r}, "
                "which the network does not have"
            )
    checking = _Checking(doc, scenario, network, catalogue, context_shape(network, scenario))
    defined = set(NAMESPACES)  # constants are reached as `vars.<name>`
    seen_ids: set[str] = set()
    for index, step in enumerate(scenario.steps):
        if step.id in seen_ids:
            problems.append(f"{doc.where(('steps', index, 'id'))}: duplicate step id {step.id!r}")
        seen_ids.add(step.id)
        problems.extend(_step_problems(checking, index, step, defined))
        defined.update(step.capture)
    return problems + _threshold_problems(doc, scenario)


def _step_problems(checking: _Checking, index: int, step: Step, defined: set[str]) -> list[str]:
    doc, catalogue = checking.doc, checking.catalogue
    where = f"{doc.where(('steps', index))}: step {step.id!r}"
    problems = [
        f"{doc.where(('steps', index, 'requirements', n))}: unknown requirement id {requirement!r}"
        for n, requirement in enumerate(step.requirements)
        if requirement not in catalogue
    ]
    problems.extend(f"{where}: {p}" for p in _reading_problems(step, catalogue))
    problems.extend(_target_problems(checking, index, step))
    problems.extend(f"{where}: {p}" for p in _expression_problems(step))
    problems.extend(f"{where}: {p}" for p in _refusal_problems(step))
    values = step.model_dump(by_alias=True, include={"request", "action", "expect"})
    located = functools.partial(_where_text, doc, ("steps", index))
    problems.extend(f"{located(p[1:40])}: step {step.id!r}: {p}" for p in malformed(values))
    for name in sorted(set(unknown_filters(values))):
        problems.append(f"{located(name)}: step {step.id!r} uses unknown filter {name!r}")
    for expression in dict.fromkeys(expressions(values)):
        root = root_of(expression)
        if root not in defined:
            problems.append(
                f"{located(expression)}: step {step.id!r} uses {{{{ {root} }}}} before any step captures it"
            )
        elif (problem := expression_problem(expression, checking.shape)) is not None:
            problems.append(f"{located(expression)}: step {step.id!r}: {problem}")
    return problems


def _where_text(doc: YamlDocument, base: PathKey, text: str) -> str:
    """File and line of the first value (or key) under `base` whose text holds `text`: a
    placeholder's problem points at the line it is written on, not at its step."""
    found = _find_text(value_at(doc.data, base), text, base)
    return doc.where(found if found is not None else base)


def _find_text(value: Any, text: str, location: PathKey) -> PathKey | None:
    if isinstance(value, str):
        return location if text in value else None
    items: list[tuple[Any, Any]] = list(enumerate(value)) if isinstance(value, list) else []
    items += list(value.items()) if isinstance(value, dict) else []
    for key, item in items:
        if isinstance(key, str) and text in key:
            return (*location, key)
        found = _find_text(item, text, (*location, key))
        if found is not None:
            return found
    return None


def context_shape(network: Network, scenario: Scenario) -> dict[str, Any]:
    """What a run's placeholders are filled from before its first step (bootstrap's `orgs`,
    `nodes` and `network`; the engine's `vars`, `actors`, `run`, `time` and `user`), with
    stand-ins for what only the running network knows: placeholders are checked against it
    before anything starts. Captured variables are not in it: their shape is the answer's."""
    from testbed.scenario.engine import time_variables  # the engine imports this module

    orgs = {org.id: _organisation_shape(org, network) for org in network.organisations}
    node_keys = ("name", "role", "organisation", "url", "internal_url")
    return {
        "orgs": orgs,
        "nodes": {node.name: dict.fromkeys(node_keys, "") for _, node in network.nodes()},
        "actors": {actor: orgs[org] for actor, org in scenario.actors.items() if org in orgs},
        "network": dict.fromkeys(("name", "seed", "credential_issuer", "run_id"), ""),
        "vars": scenario.variables,
        "run": {"id": ""},
        "time": time_variables(datetime.now(UTC)),
        "user": {"index": 0, "iteration": 1},
    }


def _organisation_shape(org: Organisation, network: Network) -> dict[str, Any]:
    keys = ["id", "name", "ura", "city", "category"]
    if network.node_of(org.id, Role.TRUST) is not None:  # its own, or the one that hosts it
        keys += ["subject", "did", "did_document_path", "authorization_server", "trust_node", "hosted_by"]
    return dict.fromkeys(keys, "")


def _threshold_problems(doc: YamlDocument, scenario: Scenario) -> list[str]:
    if scenario.load is None:
        return []
    steps = {step.id for step in scenario.steps}
    return [
        f"{doc.where(('load', 'thresholds', scope))}: threshold for {scope!r}, which is neither 'overall' "
        "nor a step of this scenario"
        for scope in scenario.load.thresholds
        if scope != "overall" and scope not in steps
    ]


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


def _target_problems(checking: _Checking, index: int, step: Step) -> list[str]:
    """Whom the step talks to; a problem points at the line naming the node or actor."""
    doc, scenario, network = checking.doc, checking.scenario, checking.network
    if step.fault is not None:
        return _fault_problems(checking, index, step)
    if step.request is not None:
        try:
            resolve_node(step.request.node, scenario.actors, network)
        except LookupError as exc:
            return [f"{doc.where(('steps', index, 'request', 'node'))}: step {step.id!r}: {exc.args[0]}"]
        return []
    action = step.action
    assert action is not None
    where = f"{doc.where(('steps', index, 'action'))}: step {step.id!r}"
    if action.name == "request-access-token":
        missing = [n for n in ("requester", "holder", "scope") if getattr(action, n) is None]
        if missing:
            return [f"{where}: action request-access-token needs {', '.join(missing)}"]
        problems = []
        for field in ("requester", "holder"):
            actor = str(getattr(action, field))  # given: checked just above
            line = doc.where(("steps", index, "action", field))
            if actor not in scenario.actors:
                problems.append(f"{line}: step {step.id!r}: unknown actor {actor!r} (declare it under 'actors')")
            elif scenario.actors[actor] not in network.operators_by_id:
                continue  # the actor's line says so already
            elif network.node_of(scenario.actors[actor], Role.TRUST) is None:
                problems.append(
                    f"{line}: step {step.id!r}: actor {actor!r} is organisation {scenario.actors[actor]!r}, "
                    "which has no trust node (of its own, or one that hosts it)"
                )
        return problems
    if action.name == "wait" and action.seconds is None:
        return [f"{where}: action wait needs 'seconds'"]
    return []


def _fault_problems(checking: _Checking, index: int, step: Step) -> list[str]:
    """A fault must name nodes of the network (one reached by URL is not refused here: the
    scenario is then not run, see `unfaultable`); a link's ends each point at their own line."""
    fault = step.fault
    if fault is None:
        return []
    scenario, network = checking.scenario, checking.network
    if fault.node is not None:
        line = f"{checking.doc.where(('steps', index, 'fault', 'node'))}: step {step.id!r}"
        try:
            resolve_node(fault.node, scenario.actors, network)
        except LookupError as exc:
            return [f"{line}: {exc.args[0]}"]
        return []
    if fault.link is None:
        return []
    problems = []
    names = []
    for n, end in enumerate(fault.link):
        line = f"{checking.doc.where(('steps', index, 'fault', 'link', n))}: step {step.id!r}"
        try:
            names.append(resolve_link_end(end, scenario.actors, network))
        except LookupError as exc:
            problems.append(f"{line}: link end {n + 1}: {exc.args[0]}")
    if not problems and names[0] == names[1]:
        line = checking.doc.where(("steps", index, "fault", "link"))
        problems.append(f"{line}: step {step.id!r}: both ends of the link are node {names[0]!r}")
    return problems


def resolve_link_end(end: str, actors: dict[str, str], network: Network) -> str:
    """A link end as the scenario names it -> a node name, or HARNESS_END for the harness."""
    if end != HARNESS_END:
        return resolve_node(end, actors, network)
    if end in network.node_names:  # the name could mean either: neither is assumed
        raise LookupError(
            f"{HARNESS_END!r} names the harness in a link, and the network has a node by that name too; "
            "name that node as '<actor>.<role>'"
        )
    return end


def resolve_fault(fault: Fault, actors: dict[str, str], network: Network) -> Fault:
    """The fault with its node, or its link's ends, as node names (the harness stays HARNESS_END)."""
    if fault.node is not None:
        return fault.model_copy(update={"node": resolve_node(fault.node, actors, network)})
    if fault.link is not None:
        first, second = (resolve_link_end(end, actors, network) for end in fault.link)
        return fault.model_copy(update={"link": (first, second)})
    return fault


def link_directions(fault: Fault) -> list[tuple[str, str]]:
    """The (from, to) directions a link fault holds for: connections `from` opens to `to`. The
    harness is only ever the opening side: nobody connects to it."""
    assert fault.link is not None
    first, second = fault.link
    if HARNESS_END in fault.link:
        return [(HARNESS_END, second if first == HARNESS_END else first)]
    return [(first, second)] if fault.one_way else [(first, second), (second, first)]


def unfaultable(scenario: Scenario, network: Network) -> str | None:
    """Why the scenario cannot run on this network: a fault step falls on a node reached by
    URL, which the harness does not run (a vendor's station set up with its own consent
    service, say), or a link fault would have to catch the connections such a node opens,
    which do not pass the harness's link proxy. Its checks are then skipped, so its
    requirements stay untested: the run is incomplete, never passed on a fault that did not
    happen."""
    for step in scenario.steps:
        if step.fault is None or (step.fault.node is None and step.fault.link is None):
            continue
        fault = resolve_fault(step.fault, scenario.actors, network)
        if fault.node is not None and (url := _url_of(fault.node, network)) is not None:
            return (
                f"not run: step {step.id!r} would {fault.operation} node {fault.node!r}, which is reached by URL "
                f"({url}); the harness faults only nodes the run starts"
            )
        for source, target in link_directions(fault) if fault.link is not None else []:
            if source != HARNESS_END and (url := _url_of(source, network)) is not None:
                return (
                    f"not run: step {step.id!r} would {fault.operation} the link {source} -> {target}, and "
                    f"{source!r} is reached by URL ({url}): the connections it opens do not pass the harness's "
                    "link proxy. A link to such a node can fail from the harness, or one way from a node the run "
                    "starts"
                )
    return None


def _url_of(name: str, network: Network) -> str | None:
    """The URL a node is reached at when the network file gives one (None: the run starts it)."""
    spec = next(node for _, node in network.nodes() if node.name == name)
    return spec.implementation.url if isinstance(spec.implementation, UrlImplementation) else None


def faulted_nodes(loaded: LoadedScenario, network: Network) -> set[str]:
    """The nodes (by name) that the scenario's fault steps stop, kill, pause or restart, or
    whose own connections a link fault cuts, slows down or loses: none of them can be a node
    reached by URL."""
    actors = loaded.scenario.actors
    faulted: set[str] = set()
    for step in loaded.scenario.steps:
        if step.fault is None or (step.fault.node is None and step.fault.link is None):
            continue
        fault = resolve_fault(step.fault, actors, network)
        if fault.node is not None:
            faulted.add(fault.node)
        else:
            faulted.update(source for source, _ in link_directions(fault) if source != HARNESS_END)
    return faulted


def fault_step_problems(loaded: LoadedScenario, purpose: str) -> list[str]:
    """Each fault step of the scenario, as a problem for a run (`purpose`) that cannot apply faults."""
    return [
        f"{loaded.document.where(('steps', index, 'fault'))}: step {step.id!r} is a fault step, and {purpose}"
        for index, step in enumerate(loaded.scenario.steps)
        if step.fault is not None
    ]


def resolve_node(reference: str, actors: dict[str, str], network: Network) -> str:
    """'<actor>.<role>' or a node name -> the node name; for an organisation hosted in that
    role, the node of whoever hosts it."""
    if reference in network.node_names:
        return reference
    actor, _, role = reference.partition(".")
    if actor in actors and role in {r.value for r in Role}:
        if actors[actor] not in network.operators_by_id:
            raise LookupError(f"actor {actor!r} names organisation {actors[actor]!r}, which the network does not have")
        node = network.node_of(actors[actor], Role(role))
        if node is None:
            raise LookupError(f"organisation {actors[actor]!r} (actor {actor!r}) has no {role} node")
        return node.name
    raise LookupError(f"node {reference!r} is neither a node of the network nor '<actor>.<role>'")


def validate_file(path: Path, catalogue: RequirementIndex, *, runtime: str | None = None) -> str:
    """Every check a run makes of a scenario or network file before it starts a node; returns
    what the file is ("scenario" or "network"), raises ConfigError naming each problem."""
    doc = read_yaml(path)
    if isinstance(doc.data, dict) and "steps" in doc.data:
        scenario = load_scenario(path)
        check_scenario(scenario, network_of(scenario, runtime=runtime).network, catalogue)
        return "scenario"
    if isinstance(doc.data, dict) and "organisations" in doc.data:
        load_network(path, runtime=runtime)
        return "network"
    raise ConfigError(f"{path}:1: neither a scenario (has 'steps') nor a network file (has 'organisations')")
