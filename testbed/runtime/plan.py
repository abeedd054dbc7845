"""Where every node of a network will live: its address, ports and URLs, and (process
runtime) which OS process hosts it.

Each reference node gets its own loopback address (127.0.B.n) with fixed ports, so URLs
read the same in every run; B is the first block from which enough addresses are free (a
network of more than 254 started nodes runs on into the blocks after it). A small network
gives every node a process of its own; a large one shares processes (nodes.common.host),
a few per core, since a Python process costs some 60 MiB before it serves anything."""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, PrivateAttr

from testbed.errors import TestbedError
from testbed.topology import LoadedNetwork, NodeSpec, Role, UrlImplementation

PUBLIC_PORT = 8443
INTERNAL_PORT = 8081
CONTROL_PORT = 8079  # a shared process's control listener, on the address of its first node
FIRST_BLOCK, LAST_BLOCK = 10, 250
ADDRESSES_PER_BLOCK = 254
# Up to this many started nodes, each gets a process of its own (a crash or a profile of one
# node stays its own); above it, processes are shared, PROCESSES_PER_CORE per core.
ALONE_UP_TO = 32
PROCESSES_PER_CORE = 2


class NodePlan(BaseModel):
    name: str
    role: Role
    organisation: str
    managed: bool  # True: the runtime starts it (a reference node or an image); False: url:
    host: str  # the host name in the node's URLs (and, in the process runtime, its address)
    public_port: int
    internal_port: int
    public_url: str
    internal_url: str
    ca_bundle: str | None = None  # extra CA the harness trusts for an implementation under test
    image: str | None = None  # docker runtime: the image under test (None: the reference image)
    # Process runtime: the shared process that hosts this node (None: a process of its own).
    process_group: int | None = None
    # Docker runtime: the harness reaches `host` at this address, on the same ports, which the
    # runtime publishes there (the node's URLs name the container, which only peers resolve).
    reach_at: str | None = None

    @property
    def kind(self) -> str:
        if not self.managed:
            return "url"
        return "image" if self.image else "reference"


class NetworkPlan(BaseModel):
    nodes: list[NodePlan]

    _by_name: dict[str, NodePlan] = PrivateAttr(default_factory=dict)

    def node(self, name: str) -> NodePlan:
        """By name, from an index built once (a national network has a few thousand nodes)."""
        if len(self._by_name) != len(self.nodes):
            self._by_name = {n.name: n for n in self.nodes}
        return self._by_name[name]

    def managed(self) -> list[NodePlan]:
        return [n for n in self.nodes if n.managed]


def plan_network(
    loaded: LoadedNetwork,
    taken_hosts: set[str] | None = None,
    runtime: str = "process",
    *,
    nodes_per_process: int | None = None,
) -> NetworkPlan:
    """`nodes_per_process`: how many nodes share a process (process runtime; None: chosen
    from the network's size and this machine's cores, see `processes_for`)."""
    if runtime in ("docker", "swarm"):  # containers, whether on this engine or in a swarm
        return container_plan(loaded)
    images = [node.name for _, node in loaded.network.nodes() if node.image]
    if images:
        raise TestbedError(f"nodes given as an image need the docker runtime (--runtime docker): {', '.join(images)}")
    references = [node for _, node in loaded.network.nodes() if node.is_reference]
    addresses = iter(_free_addresses(len(references), taken_hosts or set()))
    plan = _plan(loaded, lambda _node: (next(addresses), PUBLIC_PORT, INTERNAL_PORT, None))
    per_process = nodes_per_process or nodes_per_process_for(len(references), cores=os.cpu_count() or 1)
    if per_process > 1:
        for index, node in enumerate(plan.managed()):
            node.process_group = index // per_process
    return plan


def nodes_per_process_for(count: int, *, cores: int) -> int:
    """A process of its own for each node of a small network; for a large one, as many nodes
    per process as spreads them over PROCESSES_PER_CORE processes per core."""
    if count <= ALONE_UP_TO:
        return 1
    return math.ceil(count / (PROCESSES_PER_CORE * cores))


def container_plan(loaded: LoadedNetwork, ports: Callable[[], int] | None = None) -> NetworkPlan:
    """Each started node is a container named after the node, its URLs `https://<name>:<port>`
    with ports free on this machine's loopback (or as `ports` hands them out); the runtime
    publishes each port on 127.0.0.1 under the same number, so the container's peers and the
    harness use one URL."""
    next_port = ports or _distinct_free_ports()
    return _plan(loaded, lambda node: (node.name, next_port(), next_port(), "127.0.0.1"))


# Where a started node lives: (host in its URLs, public port, internal port, reach-at address).
Placement = Callable[[NodeSpec], tuple[str, int, int, str | None]]


def _plan(loaded: LoadedNetwork, place: Placement) -> NetworkPlan:
    plans: list[NodePlan] = []
    for org, node in loaded.network.nodes():
        if isinstance(node.implementation, UrlImplementation):
            plans.append(_external(org.id, node.name, node.role, node.implementation))
            continue
        host, public, internal, reach_at = place(node)
        plans.append(
            NodePlan(
                name=node.name,
                role=node.role,
                organisation=org.id,
                managed=True,
                host=host,
                public_port=public,
                internal_port=internal,
                public_url=f"https://{host}:{public}",
                internal_url=f"https://{host}:{internal}",
                image=node.image,
                reach_at=reach_at,
            )
        )
    return NetworkPlan(nodes=plans)


def _external(org: str, name: str, role: Role, impl: UrlImplementation) -> NodePlan:
    public = impl.url.rstrip("/")
    internal = (impl.internal_url or impl.url).rstrip("/")
    parts = urlsplit(public)
    return NodePlan(
        name=name,
        role=role,
        organisation=org,
        managed=False,
        host=parts.hostname or "",
        public_port=parts.port or 443,
        internal_port=urlsplit(internal).port or 443,
        public_url=public,
        internal_url=internal,
        ca_bundle=impl.ca_bundle,
    )


@contextlib.contextmanager
def address_lock() -> Iterator[None]:
    """Held from choosing addresses until the nodes listen on them, so that two runs
    starting at the same moment cannot both pick the same free block."""
    path = Path(tempfile.gettempdir()) / "health-network-testbed-addresses.lock"
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _free_addresses(count: int, taken_hosts: set[str]) -> list[str]:
    """`count` loopback addresses from the first block on which all of them are free, running
    on into the next blocks when one block (254 addresses) is not enough."""
    blocks = max(1, math.ceil(count / ADDRESSES_PER_BLOCK))
    for first in range(FIRST_BLOCK, LAST_BLOCK + 2 - blocks):
        hosts = [
            f"127.0.{first + i // ADDRESSES_PER_BLOCK}.{i % ADDRESSES_PER_BLOCK + 1}" for i in range(count)
        ]
        if not taken_hosts.intersection(hosts) and all(
            _bindable(h, p) for h in hosts for p in (PUBLIC_PORT, INTERNAL_PORT, CONTROL_PORT)
        ):
            return hosts
    raise TestbedError(
        f"no {count} free loopback addresses: ports {PUBLIC_PORT}, {INTERNAL_PORT} and {CONTROL_PORT} are taken on "
        f"127.0.{FIRST_BLOCK}-{LAST_BLOCK}.x; stop earlier runs with `testbed down --all`"
    )


def _distinct_free_ports() -> Callable[[], int]:
    """Free ports, none handed out twice (the system may offer a port again once its probe closed)."""
    given: set[int] = set()

    def take() -> int:
        port = free_loopback_port()
        while port in given:
            port = free_loopback_port()
        given.add(port)
        return port

    return take


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for a helper process)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True
