"""Where every node of a network will live: its address, ports and URLs.

Each reference node gets its own loopback address (127.0.B.n) with fixed ports, so URLs
read the same in every run; the block B is the first one whose addresses are free."""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel

from testbed.errors import TestbedError
from testbed.topology import LoadedNetwork, NodeSpec, Role, UrlImplementation

PUBLIC_PORT = 8443
INTERNAL_PORT = 8081
FIRST_BLOCK, LAST_BLOCK = 10, 250


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

    def node(self, name: str) -> NodePlan:
        return next(n for n in self.nodes if n.name == name)

    def managed(self) -> list[NodePlan]:
        return [n for n in self.nodes if n.managed]


def plan_network(loaded: LoadedNetwork, taken_hosts: set[str] | None = None, runtime: str = "process") -> NetworkPlan:
    if runtime == "docker":
        return container_plan(loaded)
    images = [node.name for _, node in loaded.network.nodes() if node.image]
    if images:
        raise TestbedError(f"nodes given as an image need the docker runtime (--runtime docker): {', '.join(images)}")
    references = [node for _, node in loaded.network.nodes() if node.is_reference]
    block = _free_block(len(references), taken_hosts or set())
    addresses = (f"127.0.{block}.{n}" for n in itertools.count(1))
    return _plan(loaded, lambda _node: (next(addresses), PUBLIC_PORT, INTERNAL_PORT, None))


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


def _free_block(count: int, taken_hosts: set[str]) -> int:
    for block in range(FIRST_BLOCK, LAST_BLOCK + 1):
        hosts = [f"127.0.{block}.{i}" for i in range(1, count + 1)]
        if not taken_hosts.intersection(hosts) and all(
            _bindable(h, p) for h in hosts for p in (PUBLIC_PORT, INTERNAL_PORT)
        ):
            return block
    raise TestbedError(
        f"no free loopback block: ports {PUBLIC_PORT} and {INTERNAL_PORT} are taken on "
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
