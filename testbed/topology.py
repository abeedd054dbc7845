"""The network file: organisations, their nodes, each node's role and implementation.

Validated into typed models before anything starts, so a wrong file never leaves a
half-started network behind. Errors name the file and line.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from protocols.settings import SETTINGS_BY_ROLE, settings_for
from testbed.errors import ConfigError
from testbed.files import sha256_of
from testbed.yamlsource import YamlDocument, read_yaml, validate

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,39}$"
RUNTIME_NAMES = ("process", "docker")  # testbed.runtime.RUNTIMES, which imports this module


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


class Organisation(Strict):
    id: str = Field(pattern=NAME_PATTERN)
    name: str = Field(min_length=1)
    ura: str = Field(pattern=r"^\d{8}$", description="URA number (UZI register), 8 digits")
    city: str = ""
    category: str = Field(default="", description="Care provider category code, as the consent model uses it")
    nodes: list[NodeSpec] = Field(min_length=1)


class Network(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    seed: str = Field(min_length=1, description="Keys, identifiers and synthetic data derive from it")
    credential_issuer: str = Field(description="Organisation whose trust node issues the organisation credentials")
    organisations: list[Organisation] = Field(min_length=1)

    def nodes(self) -> list[tuple[Organisation, NodeSpec]]:
        return [(org, node) for org in self.organisations for node in org.nodes]

    def organisation(self, org_id: str) -> Organisation:
        for org in self.organisations:
            if org.id == org_id:
                return org
        raise KeyError(org_id)

    def node_of(self, org_id: str, role: Role) -> NodeSpec | None:
        return next((n for n in self.organisation(org_id).nodes if n.role == role), None)

    def nodes_with_role(self, role: Role) -> list[tuple[Organisation, NodeSpec]]:
        return [(org, node) for org, node in self.nodes() if node.role == role]


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
    problems: list[str] = []
    seen_orgs: set[str] = set()
    seen_nodes: set[str] = set()
    for i, org in enumerate(network.organisations):
        if org.id in seen_orgs:
            problems.append(f"{doc.where(('organisations', i, 'id'))}: duplicate organisation id {org.id!r}")
        seen_orgs.add(org.id)
        roles = [n.role for n in org.nodes]
        for j, node in enumerate(org.nodes):
            where = doc.where(("organisations", i, "nodes", j, "name"))
            if node.name in seen_nodes:
                problems.append(f"{where}: duplicate node name {node.name!r}")
            seen_nodes.add(node.name)
            if roles.count(node.role) > 1:
                problems.append(f"{where}: organisation {org.id!r} has more than one {node.role} node")
            if isinstance(node.implementation, UrlImplementation) and node.implementation.ca_bundle:
                # Relative to the network file, like every other path in it.
                bundle = (doc.path.parent / node.implementation.ca_bundle).resolve()
                if not bundle.is_file():
                    line = doc.where(("organisations", i, "nodes", j, "implementation", "ca_bundle"))
                    problems.append(
                        f"{line}: ca_bundle {node.implementation.ca_bundle} does not exist (looked at {bundle})"
                    )
                node.implementation.ca_bundle = str(bundle)
            if node.role in NEEDS_TRUST_NODE and Role.TRUST not in roles:
                problems.append(
                    f"{where}: {node.role} node {node.name!r} needs a trust node in organisation {org.id!r} "
                    + NEEDS_TRUST_NODE[node.role]
                )
    issuer_where = doc.where(("credential_issuer",))
    if network.credential_issuer not in seen_orgs:
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
    if problems:
        raise ConfigError("\n".join([f"{doc.path}: the network file is inconsistent:", *problems]))


def _runtime_problems(doc: YamlDocument, network: Network, runtime: str) -> list[str]:
    """What the runtime would refuse only after the run began (the process runtime starts
    reference nodes alone; an implementation given as an image needs docker)."""
    if runtime not in RUNTIME_NAMES:
        return [f"{doc.path}: unknown runtime {runtime!r}; available: {', '.join(RUNTIME_NAMES)}"]
    if runtime == "docker":
        return []
    return [
        f"{doc.where(('organisations', i, 'nodes', j, 'implementation', 'image'))}: node {node.name!r} is given as "
        "an image, which needs the docker runtime (--runtime docker)"
        for i, org in enumerate(network.organisations)
        for j, node in enumerate(org.nodes)
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
