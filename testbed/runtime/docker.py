"""The docker runtime: every started node is a container on a bridge network made for the run.

Containers are named after their node inside the network (peers find each other by name)
and their URLs are `https://<node>:<port>`; each port is published on 127.0.0.1 under the
same number, where the harness reaches it (see runtime/client.py). Every container and
network carries the label `health-testbed.run=<run id>`: teardown removes by label, after a
crash or Ctrl-C as well, and `testbed down --all` removes what earlier runs left.

Testcontainers' reaper container would need an image pull, so it is not used: the Docker SDK
and the labels do the work."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from docker.errors import DockerException, ImageNotFound, NotFound
from docker.models.containers import Container

import docker
from protocols.nodeconfig import NodeConfig
from testbed.errors import NodeStartError, TestbedError
from testbed.faults import docker_proxy, links  # modules, not their names: they import the runtime package
from testbed.pki import NetworkCA
from testbed.runtime.nodeconfig import CONTAINER_HOME, container_node_dir
from testbed.runtime.plan import NetworkPlan, NodePlan
from testbed.runtime.process import LOG_TAIL_LINES, wait_healthy
from testbed.runtime.state import NodeState, RunFolder, RunState
from testbed.topology import LoadedNetwork

RUN_LABEL = "health-testbed.run"
NODE_LABEL = "health-testbed.node"
REFERENCE_IMAGE = "health-testbed-node:latest"
INSIDE = CONTAINER_HOME
STATE_LABEL = "health-testbed.state"  # the state folder whose run it is (down --all keeps to its own)
STOP_SECONDS = 5
Progress = Callable[[str], None]


class DockerUnavailable(TestbedError):
    """No Docker Engine answers; the message says so and what to do."""


def docker_client() -> docker.DockerClient:
    try:
        client = docker.from_env()
        client.ping()
    except DockerException as exc:
        raise DockerUnavailable(f"the docker runtime needs a Docker Engine, and none answers here: {exc}") from exc
    return client


class DockerRuntime:
    name = "docker"

    def start(
        self,
        loaded: LoadedNetwork,
        plan: NetworkPlan,
        folder: RunFolder,
        *,
        state: RunState,
        ca: NetworkCA,
        owner_pid: int | None,
        progress: Progress,
        link_proxy: bool = True,
    ) -> None:
        client = docker_client()
        labels = run_labels(state.run_id, folder.state_root)
        try:
            network = client.networks.create(f"testbed-{state.run_id}", driver="bridge", labels=labels)
        except DockerException as exc:
            raise NodeStartError(f"the run's docker network could not be made: {exc}") from exc
        progress(f"network {network.name}")
        # Every node opens its connections to peers through the run's link-fault proxy (unless
        # the run leaves it out: `link_proxy=False`).
        if link_proxy:
            state.link_proxy = docker_proxy.start_proxy_container(
                client,
                plan,
                folder,
                state=state,
                ca=ca,
                network=network.name,
                image=REFERENCE_IMAGE,
                labels={**labels, NODE_LABEL: "link-proxy"},
                seed=loaded.network.seed,
            )
            folder.save(state)
        for node_plan in plan.nodes:
            node_state = NodeState(plan=node_plan)
            state.nodes.append(node_state)
            if node_plan.managed:
                try:
                    container = self._run(client, loaded, plan, node_plan, folder, state, ca, network.name)
                except DockerException as exc:
                    raise NodeStartError(f"{node_plan.name}: its container could not start: {exc}") from exc
                node_state.container = container.name
                node_state.log_path = str(folder.logs_dir / f"{node_plan.name}.log")
                progress(f"started {node_plan.name} ({node_plan.role}) as container {container.name}")
            folder.save(state)
        if state.link_proxy is not None:
            docker_proxy.wait_for_proxy(client, state)
        wait_healthy(state, progress, exited=lambda node: _exited(client, node), tail=self.log_tail)

    def _run(
        self,
        client: docker.DockerClient,
        loaded: LoadedNetwork,
        plan: NetworkPlan,
        node: NodePlan,
        folder: RunFolder,
        state: RunState,
        ca: NetworkCA,
        network: str,
    ) -> Container:
        node_dir = folder.state_dir / "nodes" / node.name
        config = container_node_dir(
            loaded,
            plan,
            node,
            node_dir=node_dir,
            ca=ca,
            trust_bundle=Path(state.trust_bundle),
            egress_proxy=links.node_egress(state, node.name),
        )
        image = node.image or REFERENCE_IMAGE
        try:
            client.images.get(image)
        except ImageNotFound:
            hint = "run `make images`" if image == REFERENCE_IMAGE else "build or load it first"
            raise NodeStartError(f"{node.name}: image {image} is not on this machine: {hint}") from None
        ports = {f"{p}/tcp": ("127.0.0.1", p) for p in (node.public_port, node.internal_port)}
        return client.containers.run(
            image,
            name=f"{state.run_id}-{node.name}",
            hostname=node.name,
            environment=contract_environment(config),
            labels={**run_labels(state.run_id, folder.state_root), NODE_LABEL: node.name},
            network=network,
            ports=ports,
            volumes={str(node_dir.resolve()): {"bind": str(INSIDE), "mode": "rw"}},
            detach=True,
        )

    def log_tail(self, node: NodeState, lines: int = LOG_TAIL_LINES) -> list[str]:
        if not node.container:
            return []
        with contextlib.suppress(DockerException):
            container = docker_client().containers.get(node.container)
            logs: bytes = container.logs(tail=lines)
            return logs.decode("utf-8", errors="replace").splitlines()
        return []

    def stop(self, state: RunState) -> list[str]:
        """Keep each container's log and resource use, then remove the run's containers and
        network by label. Returns the nodes that had to be killed."""
        try:
            client = docker_client()
        except DockerUnavailable:
            return []
        return remove_run(client, state.run_id, _logs_dir(state))

    # --- faults -----------------------------------------------------------------------------
    def fault(self, state: RunState, node: str, operation: str) -> str:
        client = docker_client()
        try:
            container = client.containers.get(_container_of(state, node))
            network = client.networks.get(f"testbed-{state.run_id}")
        except NotFound:
            raise TestbedError(f"node {node!r} of run {state.run_id} has no container (any more)") from None
        actions: dict[str, Callable[[], Any]] = {
            "stop": lambda: container.stop(timeout=STOP_SECONDS),
            "start": container.start,
            "kill": container.kill,
            "pause": container.pause,
            "unpause": container.unpause,
            "restart": lambda: container.restart(timeout=STOP_SECONDS),
            "disconnect": lambda: network.disconnect(container),
            "connect": lambda: network.connect(container, aliases=[node]),
        }
        if operation not in actions:
            raise TestbedError(f"unknown fault {operation!r}; known: {', '.join(actions)}")
        try:
            actions[operation]()
        except DockerException as exc:  # e.g. unpausing a running container
            raise TestbedError(f"{operation} {node}: the Docker Engine refused: {exc}") from exc
        container.reload()
        return str(container.status)


def contract_environment(config: NodeConfig) -> dict[str, str]:
    """The container contract: what any node image is told (README, "Nodes as images")."""
    return {
        "TESTBED_CONFIG": str(INSIDE / "node.json"),  # all of the below as one JSON file
        "TESTBED_ROLE": config.role,
        "TESTBED_NAME": config.name,
        "TESTBED_ORGANISATION": config.organisation.model_dump_json(),
        "TESTBED_SEED": config.seed,
        "TESTBED_PUBLIC_URL": config.public_url,
        "TESTBED_INTERNAL_URL": config.internal_url,
        "TESTBED_PUBLIC_PORT": str(config.public_port),
        "TESTBED_INTERNAL_PORT": str(config.internal_port),
        "TESTBED_TLS_CERT": str(config.tls.cert),
        "TESTBED_TLS_KEY": str(config.tls.key),
        "TESTBED_CA_BUNDLE": str(config.tls.ca),
        "TESTBED_PEERS": json.dumps(config.peers),
        "TESTBED_SETTINGS": json.dumps(config.settings),
        # The run's link-fault proxy, for every outbound HTTPS connection (CONNECT); absent: none.
        **({"TESTBED_EGRESS_PROXY": config.egress_proxy} if config.egress_proxy else {}),
    }


def remove_run(client: docker.DockerClient, run_id: str, logs_dir: Path | None) -> list[str]:
    killed = []
    for container in client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"}):
        node = container.labels.get(NODE_LABEL, container.name)
        if logs_dir is not None:
            _keep_log_and_usage(container, node, logs_dir)
        if container.status in ("running", "paused", "restarting"):
            with contextlib.suppress(DockerException):
                if container.status == "paused":
                    container.unpause()
                container.stop(timeout=STOP_SECONDS)  # SIGTERM, then SIGKILL after the timeout
                container.reload()
                if container.attrs["State"].get("ExitCode") == 137:  # 128 + SIGKILL
                    killed.append(node)
        with contextlib.suppress(DockerException):
            container.remove(force=True, v=True)
    for network in client.networks.list(filters={"label": f"{RUN_LABEL}={run_id}"}):
        with contextlib.suppress(DockerException):
            network.remove()
    for volume in client.volumes.list(filters={"label": f"{RUN_LABEL}={run_id}"}):
        with contextlib.suppress(DockerException):
            volume.remove(force=True)
    from testbed.runtime.swarm import remove_labelled  # imported here: it imports this module

    remove_labelled(client, {RUN_LABEL: run_id})  # a swarm run's services, networks, configs, secrets
    return killed


def run_labels(run_id: str, state_root: Path) -> dict[str, str]:
    return {RUN_LABEL: run_id, STATE_LABEL: str(state_root.resolve())}


def leftover_runs(client: docker.DockerClient, state_root: Path) -> set[str]:
    """Run ids of this state folder that still have containers or networks on this engine
    (another checkout's runs, or a composed network, are not this folder's to remove)."""
    mine = f"{STATE_LABEL}={state_root.resolve()}"
    found = {c.labels[RUN_LABEL] for c in client.containers.list(all=True, filters={"label": [RUN_LABEL, mine]})}
    found |= {n.attrs["Labels"][RUN_LABEL] for n in client.networks.list(filters={"label": [RUN_LABEL, mine]})}
    return found


def container_pid(name: str) -> int | None:
    """The host's process id of a container's main process (for sampling CPU and memory)."""
    with contextlib.suppress(DockerException, KeyError):
        pid = docker_client().containers.get(name).attrs["State"]["Pid"]
        return int(pid) or None
    return None


def _keep_log_and_usage(container: Container, node: str, logs_dir: Path) -> None:
    """The node's log into the run's log folder, and its CPU time and memory into
    resources.json there (what the report shows per container)."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(DockerException, OSError):
        (logs_dir / f"{node}.log").write_bytes(container.logs())
    usage: dict[str, Any] = {"status": container.status}
    with contextlib.suppress(DockerException, KeyError, TypeError):
        if container.status == "running":
            stats = container.stats(stream=False)
            usage.update(
                cpu_seconds=round(stats["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9, 2),
                memory_mb=round(stats["memory_stats"]["usage"] / 2**20, 1),
                memory_peak_mb=round(stats["memory_stats"].get("max_usage", 0) / 2**20, 1),
            )
    path = logs_dir / "resources.json"
    with contextlib.suppress(OSError, ValueError):
        recorded = json.loads(path.read_text()) if path.exists() else {}
        recorded[node] = usage
        path.write_text(json.dumps(recorded, indent=2))


def _logs_dir(state: RunState) -> Path | None:
    paths = [Path(n.log_path).parent for n in state.nodes if n.log_path]
    return paths[0] if paths else None


def _container_of(state: RunState, node: str) -> str:
    for candidate in state.nodes:
        if candidate.plan.name == node and candidate.container:
            return candidate.container
    raise TestbedError(f"no container of node {node!r} in run {state.run_id}")


def _exited(client: docker.DockerClient, node: NodeState) -> bool:
    if not node.container:
        return False
    try:
        container = client.containers.get(node.container)
    except NotFound:
        return True
    return container.status in ("exited", "dead")
