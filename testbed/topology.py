"""The network file: organisations, vendors, their nodes, each node's role and implementation.

An organisation runs nodes of its own, or is hosted: a vendor's (or another organisation's)
trust node serves it as one of its subjects, with a DID, credentials and wallet of its own, as
a Nuts v6 node serves all of a vendor's customers. Whoever runs a node (an organisation or a
vendor) is its operator; `Network.node_of` answers for an organisation either way, so
scenarios address a hosted organisation as they address one with its own nodes.

Validated into typed models before anything starts, so a wrong file never leaves a
half-started network behind. Errors name the file and line.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from protocols.settings import SETTINGS_BY_ROLE, settings_for
from testbed.errors import ConfigError
from testbed.files import sha256_of
from testbed.yamlsource import PathKey, YamlDocument, read_yaml, validate

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,39}$"
RUNTIME_NAMES = ("process", "docker", "swarm")  # testbed.runtime.RUNTIMES, which imports this module


class Role(StrEnum):
    TRUST = "trust"  # Nuts-like trust node: DIDs, credentials, access tokens
    CONSENT = "consent"  # Mitz-like consent service
    STATION = "station"  # Health-RI data station
    HDAB = "hdab"  # health data access body: applications, permits, central analyses
    VAULT = "vault"  # personal data vault (Solid-pod-like, WellData)


# Roles that act for their organisation through its trust node, and what they need it for.
NEEDS_TRUST_NODE = {
    Role.STATION: "to introspect access tokens",
    Role.HDAB: "to introspect access tokens and issue permits",
    Role.VAULT: "to introspect access tokens and issue access grants",
}

# Roles whose node may serve several organisations, each as a subject of its own. A data
# station, an access body and a vault each act for one organisation (its consent questions,
# catalogue, audit trail and permits name it), so they are not hosted: a hosted organisation
# runs its own station, or none.
HOSTING_ROLES = frozenset({Role.TRUST})


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UrlImplementation(Strict):
    """An implementation under test that is already running somewhere the harness can reach."""

    url: str = Field(pattern=r"^https://", description="Public base URL (HTTPS)")
    internal_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="Base URL of the internal (admin) API; defaults to `url`",
    )
    ca_bundle: str | None = Field(
        default=None, description="PEM file the harness trusts for this node, besides the network CA"
    )


class ImageImplementation(Strict):
    """An implementation under test packaged as a container image (docker runtime only); it
    is started like a reference node and gets the container contract (README)."""

    image: str = Field(pattern=r"^[a-z0-9][\w./:-]*(@sha256:[0-9a-f]{64})?$", description="Image name:tag or digest")


Implementation = Literal["reference"] | UrlImplementation | ImageImplementation


class NodeSpec(Strict):
    name: str = Field(pattern=NAME_PATTERN, description="Unique in the network")
    role: Role
    implementation: Implementation = "reference"
    settings: dict[str, Any] = Field(
        default_factory=dict, description="Role-specific settings for a reference node (protocols.settings)"
    )

    @field_validator("settings")
    @classmethod
    def _settings_fit_the_role(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """Checked here, before anything starts, with the model the node reads them with."""
        role = info.data.get("role")
        if role is None:  # the role itself was wrong: that is the error to show
            return value
        name = Role(role).value
        try:
            settings_for(name, value)
        except ValidationError as exc:
            raise ValueError(f"settings of a {name} node: {_settings_problems(exc, name)}") from exc
        return value

    @property
    def is_reference(self) -> bool:
        return self.implementation == "reference"

    @property
    def image(self) -> str | None:
        """The image an implementation under test comes as, if it comes as one."""
        return self.implementation.image if isinstance(self.implementation, ImageImplementation) else None


def _settings_problems(exc: ValidationError, role: str) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "settings"
        if error["type"] == "extra_forbidden":
            known = ", ".join(sorted(SETTINGS_BY_ROLE[role].model_fields))
            problems.append(f"{where}: unknown setting (this role takes: {known})")
        else:
            problems.append(f"{where}: {error['msg']} (got {error.get('input')!r})")
    return "; ".join(problems)


HostId = Annotated[str, Field(pattern=NAME_PATTERN)]
# `hosted_by` is an id or a mapping of roles to ids; which one is decided by the value's kind,
# so a wrong value gets the one error of the form it was written in.
Hosting = Annotated[
    Annotated[HostId, Tag("id")] | Annotated[dict[Role, HostId], Tag("per-role")],
    Discriminator(lambda value: "per-role" if isinstance(value, dict) else "id"),
]


class Organisation(Strict):
    id: str = Field(pattern=NAME_PATTERN, description="Unique among organisations and vendors")
    name: str = Field(min_length=1)
    ura: str = Field(pattern=r"^\d{8}$", description="URA number (UZI register), 8 digits")
    city: str = ""
    category: str = Field(default="", description="Care provider category code, as the consent model uses it")
    hosted_by: Hosting | None = Field(
        default=None,
        description="Who serves the organisation in the roles it runs no node of: a vendor or organisation id "
        "(every role that can be hosted, today trust), or per role, e.g. {trust: vendor-x}",
    )
    nodes: list[NodeSpec] = Field(
        default_factory=list, description="Its own nodes; may be empty when `hosted_by` serves it"
    )


class Vendor(Strict):
    """A supplier whose nodes serve its customers: organisations that name it in `hosted_by`."""

    id: str = Field(pattern=NAME_PATTERN, description="Unique among organisations and vendors")
    name: str = Field(min_length=1)
    nodes: list[NodeSpec] = Field(min_length=1, description="Nodes that host organisations (trust nodes)")


Operator = Organisation | Vendor  # who runs a node


class Network(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    seed: str = Field(min_length=1, description="Keys, identifiers and synthetic data derive from it")
    credential_issuer: str = Field(description="Organisation whose trust node issues the organisation credentials")
    organisations: list[Organisation] = Field(min_length=1)
    vendors: list[Vendor] = Field(
        default_factory=list, description="Vendors whose trust nodes serve organisations as subjects (`hosted_by`)"
    )

    def operators(self) -> list[Operator]:
        """Whoever runs nodes: the organisations, then the vendors."""
        return [*self.organisations, *self.vendors]

    @cached_property
    def node_names(self) -> frozenset[str]:
        return frozenset(node.name for _, node in self.nodes())

    @cached_property
    def operators_by_id(self) -> dict[str, Operator]:
        """Organisations and vendors by id (a 1,000-organisation network looks them up often;
        with a duplicate id, which validation refuses, the first keeps it)."""
        return {operator.id: operator for operator in reversed(self.operators())}

    def nodes(self) -> list[tuple[Operator, NodeSpec]]:
        """Every node with its operator: the organisations' own nodes, then the vendors'."""
        return [(operator, node) for operator in self.operators() for node in operator.nodes]

    def organisation(self, org_id: str) -> Organisation:
        found = self.operators_by_id.get(org_id)
        if not isinstance(found, Organisation):
            raise KeyError(org_id)
        return found

    def operator(self, operator_id: str) -> Operator:
        """The organisation or vendor with this id."""
        return self.operators_by_id[operator_id]

    def own_node(self, operator_id: str, role: Role) -> NodeSpec | None:
        """The operator's own node of `role`, hosting aside."""
        return next((n for n in self.operator(operator_id).nodes if n.role == role), None)

    def hosting(self, org: Organisation) -> dict[Role, str]:
        """Role -> the id of whoever serves `org` in it. `hosted_by: <id>` stands for every role
        that can be hosted, that `org` runs no node of, and that the host runs a node of."""
        if org.hosted_by is None:
            return {}
        if isinstance(org.hosted_by, dict):  # roles that cannot be hosted are refused when the file loads
            return {role: host for role, host in org.hosted_by.items() if role in HOSTING_ROLES}
        host = self.operators_by_id.get(org.hosted_by)
        offered = {node.role for node in host.nodes} if host is not None else set()
        own = {node.role for node in org.nodes}
        return {role: org.hosted_by for role in sorted(HOSTING_ROLES) if role in offered and role not in own}

    def node_of(self, org_id: str, role: Role) -> NodeSpec | None:
        """The node that serves the organisation (or vendor) in `role`: its own, or else its host's."""
        own = self.own_node(org_id, role)
        operator = self.operator(org_id)
        if own is not None or not isinstance(operator, Organisation):
            return own
        host = self.hosting(operator).get(role)
        return self.own_node(host, role) if host is not None and host in self.operators_by_id else None

    def host_of(self, org_id: str, role: Role) -> str | None:
        """Whoever hosts the organisation in `role` (None: it runs its own node, or has none)."""
        operator = self.operator(org_id)
        if not isinstance(operator, Organisation) or self.own_node(org_id, role) is not None:
            return None
        return self.hosting(operator).get(role)

    def nodes_with_role(self, role: Role) -> list[tuple[Operator, NodeSpec]]:
        return [(operator, node) for operator, node in self.nodes() if node.role == role]


def organisation_subject(org_id: str) -> str:
    """The subject an organisation has on its trust node: bootstrap creates it under the
    organisation's id, and nodes that act for the organisation refer to it so."""
    return org_id


class LoadedNetwork(BaseModel):
    """A validated network together with the file it came from."""

    path: Path
    sha256: str
    network: Network


def load_network(path: Path, *, runtime: str | None = None) -> LoadedNetwork:
    """The network file, validated and cross-checked; `runtime`: also check that this runtime
    can run every node it starts (an image needs docker)."""
    doc = read_yaml(path)
    if not isinstance(doc.data, dict):
        raise ConfigError(
            f"{path}:1: not a network file: a mapping with 'name', 'seed' and 'organisations' was expected, "
            f"not {kind_of(doc.data)}"
        )
    network = validate(doc, Network, "network")
    _check_references(doc, network)
    if runtime is not None and (problems := _runtime_problems(doc, network, runtime)):
        raise ConfigError("\n".join([f"{doc.path}: the network cannot run on the {runtime} runtime:", *problems]))
    digest = sha256_of(path)
    return LoadedNetwork(path=path, sha256=digest, network=network)


def _check_references(doc: YamlDocument, network: Network) -> None:
    """Rules that span several fields; each error points at the line that breaks it."""
    problems = [
        *_id_problems(doc, network),
        *_node_problems(doc, network),
        *_hosting_problems(doc, network),
        *_trust_needs(doc, network),
        *_network_service_problems(doc, network),
    ]
    if problems:
        raise ConfigError("\n".join([f"{doc.path}: the network file is inconsistent:", *problems]))


def _located(network: Network) -> list[tuple[PathKey, Operator]]:
    """Every operator with where it stands in the file."""
    return [(("organisations", i), org) for i, org in enumerate(network.organisations)] + [
        (("vendors", k), vendor) for k, vendor in enumerate(network.vendors)
    ]


def _kind(operator: Operator) -> str:
    return "vendor" if isinstance(operator, Vendor) else "organisation"


def _id_problems(doc: YamlDocument, network: Network) -> list[str]:
    problems: list[str] = []
    seen: dict[str, Operator] = {}
    for base, operator in _located(network):
        first = seen.setdefault(operator.id, operator)
        if first is operator:
            continue
        where = doc.where((*base, "id"))
        if _kind(first) == _kind(operator):
            problems.append(f"{where}: duplicate {_kind(operator)} id {operator.id!r}")
        else:
            problems.append(
                f"{where}: {_kind(operator)} id {operator.id!r} is also an {_kind(first)}'s id "
                "(organisations and vendors share one set of ids)"
            )
    return problems


def _node_problems(doc: YamlDocument, network: Network) -> list[str]:
    """Unique node names, one node per role and operator, vendors' nodes of a hosting role,
    CA bundles that exist; an organisation runs a node or is hosted."""
    problems: list[str] = []
    seen_nodes: set[str] = set()
    for base, operator in _located(network):
        roles = [n.role for n in operator.nodes]
        if isinstance(operator, Organisation) and not operator.nodes and operator.hosted_by is None:
            problems.append(
                f"{doc.where((*base, 'nodes'))}: nodes: organisation {operator.id!r} has none: it needs at least 1 "
                "node of its own, or `hosted_by` naming the vendor (or organisation) whose trust node serves it"
            )
        for j, node in enumerate(operator.nodes):
            where = doc.where((*base, "nodes", j, "name"))
            if node.name in seen_nodes:
                problems.append(f"{where}: duplicate node name {node.name!r}")
            seen_nodes.add(node.name)
            if roles.count(node.role) > 1:
                problems.append(f"{where}: {_kind(operator)} {operator.id!r} has more than one {node.role} node")
            if isinstance(operator, Vendor) and node.role not in HOSTING_ROLES:
                problems.append(
                    f"{doc.where((*base, 'nodes', j, 'role'))}: vendor {operator.id!r}: a {node.role} node cannot "
                    f"serve organisations yet (only {_hosting_roles_text()} nodes host them, as subjects); "
                    "give the node to the organisation it serves"
                )
            problems.extend(_ca_bundle_problems(doc, (*base, "nodes", j), node))
    return problems


def _hosting_roles_text() -> str:
    return ", ".join(sorted(HOSTING_ROLES))


def _ca_bundle_problems(doc: YamlDocument, base: PathKey, node: NodeSpec) -> list[str]:
    if not isinstance(node.implementation, UrlImplementation) or not node.implementation.ca_bundle:
        return []
    # Relative to the network file, like every other path in it.
    given = node.implementation.ca_bundle
    bundle = (doc.path.parent / given).resolve()
    node.implementation.ca_bundle = str(bundle)
    if bundle.is_file():
        return []
    where = doc.where((*base, "implementation", "ca_bundle"))
    return [f"{where}: ca_bundle {given} does not exist (looked at {bundle})"]


def _hosting_problems(doc: YamlDocument, network: Network) -> list[str]:
    """`hosted_by` names someone who runs a node of each hosted role, for roles that can be
    hosted and that the organisation has no node of; hosting does not chain."""
    problems: list[str] = []
    for i, org in enumerate(network.organisations):
        if org.hosted_by is None:
            continue
        base: PathKey = ("organisations", i, "hosted_by")
        if isinstance(org.hosted_by, str):
            problems.extend(_whole_hosting_problems(doc, network, org, base))
            continue
        for role, host in org.hosted_by.items():
            where = doc.where((*base, role.value))
            if role not in HOSTING_ROLES:
                problems.append(
                    f"{where}: hosted_by: a {role} node cannot be hosted yet: only a {_hosting_roles_text()} node "
                    f"serves several organisations; organisation {org.id!r} needs a {role} node of its own"
                )
            elif network.own_node(org.id, role) is not None:
                problems.append(
                    f"{where}: hosted_by: organisation {org.id!r} runs its own {role} node and cannot also be "
                    f"hosted for {role}"
                )
            else:
                problems.extend(_host_problems(doc, network, org, (role, host, where)))
    return problems


def _whole_hosting_problems(doc: YamlDocument, network: Network, org: Organisation, base: PathKey) -> list[str]:
    """`hosted_by: <id>`: the host must serve at least one role the organisation lacks."""
    host = str(org.hosted_by)
    where = doc.where(base)
    lacking = sorted(HOSTING_ROLES - {node.role for node in org.nodes})
    if not lacking:
        return [
            f"{where}: hosted_by: organisation {org.id!r} runs its own {_hosting_roles_text()} node, so {host!r} "
            "would serve it in nothing (only trust nodes host organisations)"
        ]
    return [problem for role in lacking for problem in _host_problems(doc, network, org, (role, host, where))]


def _host_problems(doc: YamlDocument, network: Network, org: Organisation, hosted: tuple[Role, str, str]) -> list[str]:
    """The host exists, is not the organisation itself and runs its own node of the role."""
    role, host, where = hosted
    if host == org.id:
        return [f"{where}: hosted_by: organisation {org.id!r} cannot host itself"]
    if host not in network.operators_by_id:
        return [f"{where}: hosted_by: {host!r} is neither a vendor nor an organisation of this network"]
    if network.own_node(host, role) is not None:
        return []
    chain = _hosting_chain(network, org.id, role)
    if chain[-1] == org.id:
        return [f"{where}: hosted_by: a hosting cycle for {role}: {' -> '.join(chain)}"]
    if len(chain) > 2:
        return [
            f"{where}: hosted_by: {host!r} runs no {role} node of its own (it is itself hosted by "
            f"{chain[2]!r}); hosting does not chain: name the one whose node serves {org.id!r}"
        ]
    return [f"{where}: hosted_by: {_kind(network.operator(host))} {host!r} runs no {role} node to host {org.id!r} on"]


def _hosting_chain(network: Network, org_id: str, role: Role) -> list[str]:
    """org -> the host it names -> the host that one names ... until someone runs the node,
    names nobody, or an id comes round again."""
    chain = [org_id]
    while True:
        operator = network.operators_by_id.get(chain[-1])
        if not isinstance(operator, Organisation) or network.own_node(operator.id, role) is not None:
            return chain
        named = operator.hosted_by.get(role) if isinstance(operator.hosted_by, dict) else operator.hosted_by
        if named is None:
            return chain
        chain.append(named)
        if named in chain[:-1]:
            return chain


def _trust_needs(doc: YamlDocument, network: Network) -> list[str]:
    """Roles that act through their organisation's trust node find one: its own or its host's."""
    problems = []
    for base, operator in _located(network):
        for j, node in enumerate(operator.nodes):
            if node.role in NEEDS_TRUST_NODE and network.node_of(operator.id, Role.TRUST) is None:
                problems.append(
                    f"{doc.where((*base, 'nodes', j, 'name'))}: {node.role} node {node.name!r} needs a trust node in "
                    f"{_kind(operator)} {operator.id!r} {NEEDS_TRUST_NODE[node.role]} "
                    "(its own, or the one `hosted_by` names)"
                )
    return problems


def _network_service_problems(doc: YamlDocument, network: Network) -> list[str]:
    problems = []
    issuer_where = doc.where(("credential_issuer",))
    issuer = network.operators_by_id.get(network.credential_issuer)
    if not isinstance(issuer, Organisation):
        problems.append(f"{issuer_where}: credential_issuer {network.credential_issuer!r} is not an organisation id")
    elif network.node_of(network.credential_issuer, Role.TRUST) is None:
        problems.append(f"{issuer_where}: credential_issuer {network.credential_issuer!r} has no trust node")
    consent_nodes = network.nodes_with_role(Role.CONSENT)
    if len(network.nodes_with_role(Role.HDAB)) > 1:
        problems.append(f"{doc.where(('organisations',))}: a network has at most one access body (hdab) node")
    if network.nodes_with_role(Role.STATION) and len(consent_nodes) != 1:
        problems.append(
            f"{doc.where(('organisations',))}: a network with data stations needs exactly one "
            f"consent node (found {len(consent_nodes)})"
        )
    return problems


def _runtime_problems(doc: YamlDocument, network: Network, runtime: str) -> list[str]:
    """What the runtime would refuse only after the run began (the process runtime starts
    reference nodes alone; an implementation given as an image needs docker or swarm)."""
    if runtime not in RUNTIME_NAMES:
        return [f"{doc.path}: unknown runtime {runtime!r}; available: {', '.join(RUNTIME_NAMES)}"]
    if runtime in ("docker", "swarm"):
        return []
    return [
        f"{doc.where((*base, 'nodes', j, 'implementation', 'image'))}: node {node.name!r} is given as "
        "an image, which needs the docker runtime (--runtime docker)"
        for base, operator in _located(network)
        for j, node in enumerate(operator.nodes)
        if node.image
    ]


def kind_of(value: Any) -> str:
    """What a file holds instead of a mapping, in a few words: never the value itself, which
    may be a whole file read as one text."""
    if isinstance(value, str):
        return f"a text of {len(value)} characters"
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    return f"a value of type {type(value).__name__}"
