"""The link-fault proxy on the docker runtime: a container of the node image on the run's
network, which the nodes reach by its container name and the harness at ports published on
127.0.0.1 (the proxy port, for the harness's own links, and the control listener). It forwards
only to the run's containers, by name; it goes when the run's containers go (by label)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from docker.errors import DockerException, ImageNotFound, NotFound

import docker
from protocols.nodeconfig import TlsConfig
from testbed.errors import NodeStartError
from testbed.faults import links  # a module, not its names: it imports the runtime package in turn
from testbed.faults.proxy import LinkFaultError, ProxyConfig
from testbed.pki import NetworkCA
from testbed.runtime.plan import NetworkPlan, free_loopback_port
from testbed.runtime.state import LinkProxyState, RunFolder, RunState

INSIDE = Path("/proxy")  # where the container finds its configuration and certificate
READY_SECONDS = 30.0


def proxy_container_name(run_id: str) -> str:
    """`<run id>--link-proxy`: a node's container is `<run id>-<node>`, and no node name starts
    with a dash, so the two never meet."""
    return f"{run_id}--link-proxy"


def start_proxy_container(
    client: docker.DockerClient,
    plan: NetworkPlan,
    folder: RunFolder,
    *,
    state: RunState,
    ca: NetworkCA,
    network: str,
    image: str,
    labels: dict[str, str],
    seed: str,
) -> LinkProxyState:
    """Run the proxy container (not waiting for it: `wait_for_proxy` does, once the nodes are
    starting too)."""
    try:
        client.images.get(image)
    except ImageNotFound:
        raise NodeStartError(f"the link proxy's image {image} is not on this machine: run `make images`") from None
    home = folder.state_dir / "link-proxy"
    tls = ca.issue(home / "tls", "testbed link proxy", [links.LOOPBACK, "localhost"])
    shutil.copy(state.trust_bundle, home / "tls" / "trust-bundle.pem")
    proxy_port = free_loopback_port()
    control_port = free_loopback_port()
    while control_port == proxy_port:
        control_port = free_loopback_port()
    config = ProxyConfig(
        listen_host="0.0.0.0",
        proxy_port=proxy_port,
        control_port=control_port,
        nodes={node.name: links.node_endpoints(node) for node in plan.nodes},
        allow_loopback=False,  # loopback in the container is the proxy itself
        tls=TlsConfig(
            cert=INSIDE / "tls" / tls.cert.name,
            key=INSIDE / "tls" / tls.key.name,
            ca=INSIDE / "tls" / "trust-bundle.pem",
        ),
        seed=seed,
    )
    (home / "proxy.json").write_text(config.model_dump_json(indent=2), encoding="utf-8")
    name = proxy_container_name(state.run_id)
    try:
        client.containers.run(
            image,
            entrypoint=["python", "-m", "testbed.faults.proxy"],
            command=["--config", str(INSIDE / "proxy.json")],
            name=name,
            labels=labels,
            network=network,
            ports={f"{port}/tcp": (links.LOOPBACK, port) for port in (proxy_port, control_port)},
            volumes={str(home.resolve()): {"bind": str(INSIDE), "mode": "ro"}},
            detach=True,
        )
    except DockerException as exc:
        raise NodeStartError(f"the link proxy's container could not start: {exc}") from exc
    return LinkProxyState(
        url=f"http://{links.LOOPBACK}:{proxy_port}",
        node_url=f"http://{name}:{proxy_port}",
        control=f"{links.LOOPBACK}:{control_port}",
        config_path=str(home / "proxy.json"),
        container=name,
    )


def wait_for_proxy(client: docker.DockerClient, state: RunState) -> None:
    """Until the proxy's control listener answers; its log when the container stops first."""
    proxy = state.link_proxy
    if proxy is None or proxy.container is None:
        return
    deadline = time.monotonic() + READY_SECONDS
    while True:
        try:
            links.LinkFaults(state, timeout=2.0).show()
            return
        except LinkFaultError as exc:
            problem = str(exc)
        try:
            container = client.containers.get(proxy.container)
        except NotFound:
            raise NodeStartError(f"the link proxy's container {proxy.container} is gone") from None
        if container.status in ("exited", "dead") or time.monotonic() > deadline:
            log = container.logs(tail=20).decode("utf-8", errors="replace")
            raise NodeStartError(f"the link proxy did not come up ({problem})\n{log}".rstrip())
        time.sleep(0.2)
