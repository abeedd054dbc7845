"""What a started node is told: its NodeConfig, the same for every runtime but for where it
binds and where its files are (the container contract is this model as JSON, and as
environment variables)."""

from __future__ import annotations

import shutil
from pathlib import Path

from protocols.nodeconfig import NodeConfig, OrganisationInfo, TlsConfig
from testbed.pki import NetworkCA
from testbed.runtime.plan import NetworkPlan, NodePlan
from testbed.topology import LoadedNetwork, Operator, Role, Vendor, organisation_subject

CONTAINER_HOME = Path("/node")  # where a container finds its configuration, certificates and data


def container_node_dir(
    loaded: LoadedNetwork,
    plan: NetworkPlan,
    node: NodePlan,
    *,
    node_dir: Path,
    ca: NetworkCA,
    trust_bundle: Path,
    egress_proxy: str | None = None,
) -> NodeConfig:
    """A node's folder as a container sees it at /node: certificate, trust bundle, data folder
    and node.json (the docker runtime and the compose export alike). `egress_proxy`: the run's
    link-fault proxy as the container reaches it (None: none)."""
    tls = ca.issue(node_dir / "tls", node.name, [node.name, "localhost"])
    shutil.copy(trust_bundle, node_dir / "tls" / "trust-bundle.pem")
    (node_dir / "data").mkdir(parents=True, exist_ok=True)
    config = node_config(
        loaded,
        plan,
        node,
        bind="0.0.0.0",
        tls=TlsConfig(
            cert=CONTAINER_HOME / "tls" / tls.cert.name,
            key=CONTAINER_HOME / "tls" / tls.key.name,
            ca=CONTAINER_HOME / "tls" / "trust-bundle.pem",
        ),
        data_dir=CONTAINER_HOME / "data",
        owner_pid=None,  # a container cannot watch the harness: teardown goes by label
        egress_proxy=egress_proxy,
    )
    config.write(node_dir / "node.json")
    return config


def node_config(
    loaded: LoadedNetwork,
    plan: NetworkPlan,
    node: NodePlan,
    *,
    bind: str,
    tls: TlsConfig,
    data_dir: Path,
    owner_pid: int | None,
    egress_proxy: str | None = None,
) -> NodeConfig:
    """`egress_proxy`: the run's link-fault proxy, as this node reaches it (None: none)."""
    network = loaded.network
    return NodeConfig(
        name=node.name,
        role=node.role.value,
        organisation=operator_info(network.operator(node.organisation)),
        seed=network.seed,
        host=bind,
        public_port=node.public_port,
        internal_port=node.internal_port,
        public_url=node.public_url,
        internal_url=node.internal_url,
        tls=tls,
        data_dir=data_dir,
        parent_pid=owner_pid,
        peers=peers(loaded, plan, node),
        settings=next(n for _, n in network.nodes() if n.name == node.name).settings,
        egress_proxy=egress_proxy,
    )


def operator_info(operator: Operator) -> OrganisationInfo:
    """Who runs the node. A vendor's node acts for no organisation of its own (its customers
    are subjects on it), so it has no URA, city or category."""
    if isinstance(operator, Vendor):
        return OrganisationInfo(id=operator.id, name=operator.name, ura="")
    return OrganisationInfo(
        id=operator.id, name=operator.name, ura=operator.ura, city=operator.city, category=operator.category
    )


def peers(loaded: LoadedNetwork, plan: NetworkPlan, node: NodePlan) -> dict[str, str]:
    """What a node needs to find: its organisation's trust node (its own, or the one that hosts
    the organisation as a subject) and the consent service."""
    peers: dict[str, str] = {}
    trust = loaded.network.node_of(node.organisation, Role.TRUST)
    if trust is not None and trust.name != node.name:
        peers["trust_internal"] = plan.node(trust.name).internal_url
        subject = organisation_subject(node.organisation)
        peers["authorization_server"] = f"{plan.node(trust.name).public_url}/oauth2/{subject}"
    if node.role == Role.TRUST:
        # The discovery server of the network: the credential issuer's trust node.
        server = loaded.network.node_of(loaded.network.credential_issuer, Role.TRUST)
        if server is not None:
            peers["discovery_server"] = plan.node(server.name).public_url
    consent = loaded.network.nodes_with_role(Role.CONSENT)
    if consent and node.role != Role.CONSENT:
        peers["consent"] = plan.node(consent[0][1].name).public_url
    hdab = loaded.network.nodes_with_role(Role.HDAB)
    if hdab and node.role == Role.STATION:
        peers["hdab"] = plan.node(hdab[0][1].name).public_url  # named in the station's catalogue
        peers["hdab_name"] = hdab[0][0].name  # not an address: the body's name, which the catalogue states
    if node.role == Role.HDAB:
        for org, station in loaded.network.nodes_with_role(Role.STATION):
            peers[f"station:{org.id}"] = plan.node(station.name).public_url  # whose catalogues it harvests
    return peers
