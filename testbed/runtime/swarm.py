"""The swarm runtime: the network as a stack on Docker Swarm, so that its nodes (and a load
run's Locust workers) can spread over several machines.

The run writes a stack file (compose format) into its state folder and hands it to
`docker stack deploy`. Each node is a service of one replica on an overlay network made for
the run (attachable, so that containers of the harness could join it), named after the node
(its URLs are `https://<node>:<port>`, as in the docker runtime). A node's configuration and
certificate reach it as swarm configs and its key as a swarm secret, so that any machine of
the swarm can run it; its data lives in a tmpfs. Its two ports are published in host mode
under their own numbers on the machine that runs it, where the harness reaches it: at
127.0.0.1 on this machine, at that machine's swarm address elsewhere (recorded as the node's
`reach_at`). Host mode and DNS round-robin, rather than the routing mesh's virtual
addresses, need no IPVS in the kernel, which not every Docker host has.

Every service, container, network, config and secret carries the run label: teardown removes
by label, as the docker runtime does. Work that must run inside the network (Locust's master
and workers) runs as further services of the same stack, through `run_job`."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import secrets
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from docker.errors import DockerException, ImageNotFound, NotFound

import docker
from protocols.nodeconfig import NodeConfig
from testbed.errors import NodeStartError, TestbedError
from testbed.pki import NetworkCA
from testbed.runtime.docker import (
    INSIDE,
    NODE_LABEL,
    REFERENCE_IMAGE,
    RUN_LABEL,
    STOP_SECONDS,
    DockerUnavailable,
    contract_environment,
    docker_client,
    run_labels,
)
from testbed.runtime.nodeconfig import container_node_dir
from testbed.runtime.plan import NetworkPlan, NodePlan
from testbed.runtime.process import LOG_TAIL_LINES, wait_healthy
from testbed.runtime.state import NodeState, RunFolder, RunState
from testbed.topology import LoadedNetwork

STACK_FILE = "docker-stack.yml"
NETWORK_KEY = "testbed"  # the overlay network's key in a stack file
NODES_LABEL = "testbed.nodes"  # swarm node label: `true` on the machines that run the network's nodes
LOAD_LABEL = "testbed.load"  # swarm node label: `true` on the machines that run Locust's workers
JOB_LABEL = "health-testbed.job"
MAX_SERVICE_NAME = 63  # a service name is a DNS label
LONGEST_NODE_NAME = 40  # topology.NAME_PATTERN
HEALTH_TIMEOUT_SECONDS = 120.0  # scheduling, and on a small machine a dozen containers starting at once
SCHEDULE_TIMEOUT_SECONDS = 60.0
REMOVE_TIMEOUT_SECONDS = 60.0
TERMINAL = frozenset({"complete", "failed", "shutdown", "rejected", "orphaned", "remove"})
Progress = Callable[[str], None]


class SwarmUnavailable(TestbedError):
    """This Docker Engine is no swarm manager, or the docker command is missing."""


def swarm_client() -> tuple[docker.DockerClient, str]:
    """A client of this engine, which must manage a swarm, and this machine's swarm node id."""
    try:
        client = docker_client()
    except DockerUnavailable as exc:
        raise SwarmUnavailable(str(exc).replace("the docker runtime", "the swarm runtime")) from None
    swarm = client.info().get("Swarm") or {}
    if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
        raise SwarmUnavailable(
            "the swarm runtime needs this Docker Engine to be a swarm manager, and it is not "
            f"(swarm state: {swarm.get('LocalNodeState') or 'unknown'}): `docker swarm init "
            "--advertise-addr 127.0.0.1` makes a swarm of this machine alone"
        )
    if shutil.which("docker") is None:
        raise SwarmUnavailable("the swarm runtime deploys with `docker stack deploy`: the docker command is missing")
    return client, str(swarm["NodeID"])


def stack_name(run_id: str) -> str:
    """The stack a run deploys as: the run id when every service name of it fits a DNS label
    (`<stack>_<node>`), else a short name derived from it."""
    name = run_id.lower()
    if len(name) + 1 + LONGEST_NODE_NAME <= MAX_SERVICE_NAME:
        return name
    return f"tb-{hashlib.sha256(name.encode()).hexdigest()[:12]}"


def network_name(run_id: str) -> str:
    return f"testbed-{run_id}"


@dataclass(kw_only=True)
class StackSpec:
    """What a stack file of a network is made from."""

    run_id: str
    state_root: Path  # the run's state folder root (its labels name it)
    folder: Path  # where the stack file is written; node folders are in <folder>/nodes/
    image: str = REFERENCE_IMAGE
    constraints: list[str] = field(default_factory=list)  # placement of the network's nodes

    @property
    def labels(self) -> dict[str, str]:
        return run_labels(self.run_id, self.state_root)


def network_stack(
    loaded: LoadedNetwork, plan: NetworkPlan, spec: StackSpec, *, ca: NetworkCA, trust_bundle: Path
) -> dict[str, Any]:
    """The stack file of a network (each started node's folder written beside it): one
    service per node, their configs and secrets, and the run's overlay network."""
    services: dict[str, Any] = {}
    defined: dict[str, dict[str, Any]] = {"configs": {}, "secrets": {}}
    for node in plan.managed():
        node_dir = spec.folder / "nodes" / node.name
        config = container_node_dir(loaded, plan, node, node_dir=node_dir, ca=ca, trust_bundle=trust_bundle)
        files = {
            PurePosixPath(INSIDE / "node.json"): node_dir / "node.json",
            PurePosixPath(config.tls.cert): node_dir / "tls" / Path(config.tls.cert).name,
            PurePosixPath(config.tls.ca): node_dir / "tls" / Path(config.tls.ca).name,
        }
        secret = {PurePosixPath(config.tls.key): node_dir / "tls" / Path(config.tls.key).name}
        mounts = _mounts(node.name, files, secret, folder=spec.folder, labels=spec.labels, defined=defined)
        services[node.name] = _node_service(node, config, spec, mounts)
    return {
        "version": "3.8",
        "services": services,
        "networks": {
            NETWORK_KEY: {
                "driver": "overlay",
                "attachable": True,
                "name": network_name(spec.run_id),
                "labels": spec.labels,
            }
        },
        **defined,
    }


def _mounts(
    key: str,
    files: dict[PurePosixPath, Path],
    secret_files: dict[PurePosixPath, Path],
    *,
    folder: Path,
    labels: dict[str, str],
    defined: dict[str, dict[str, Any]],
) -> dict[str, list[dict[str, Any]]]:
    """A service's configs and secrets (path inside -> file here), also added to the stack's
    own `defined["configs"]` and `defined["secrets"]` under keys that start with `key`; files
    are named relative to the stack file's `folder`."""
    mounts: dict[str, list[dict[str, Any]]] = {"configs": [], "secrets": []}
    for kind, given in (("configs", files), ("secrets", secret_files)):
        for index, (inside, here) in enumerate(given.items()):
            name = f"{key}-{kind[0]}{index}"
            defined[kind][name] = {"file": _relative(here, folder), "labels": labels}
            mounts[kind].append({"source": name, "target": str(inside)})  # mode 0444, as by default
    return mounts


def _relative(path: Path, folder: Path) -> str:
    return os.path.relpath(path.resolve(), folder.resolve())


def _node_service(
    node: NodePlan, config: NodeConfig, spec: StackSpec, mounts: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    labels = {**spec.labels, NODE_LABEL: node.name}
    deploy: dict[str, Any] = {
        "endpoint_mode": "dnsrr",  # peers resolve the node's name to its container: no virtual address
        "restart_policy": {"condition": "none"},  # a node that stops stays stopped, as in the docker runtime
        "labels": labels,
    }
    if spec.constraints:
        deploy["placement"] = {"constraints": spec.constraints}
    return {
        "image": node.image or spec.image,
        "hostname": node.name,
        "environment": contract_environment(config),
        "labels": labels,
        "ports": [
            {"target": port, "published": port, "protocol": "tcp", "mode": "host"}
            for port in (node.public_port, node.internal_port)
        ],
        **mounts,
        "volumes": [{"type": "tmpfs", "target": str(INSIDE / "data")}],
        "networks": {NETWORK_KEY: {"aliases": [node.name]}},
        "stop_grace_period": f"{STOP_SECONDS}s",  # then SIGKILL, as the docker runtime stops a node
        "deploy": deploy,
    }


def write_stack(document: dict[str, Any], path: Path, header: str) -> Path:
    path.write_text(header + yaml.safe_dump(_literal(document), sort_keys=False), encoding="utf-8")
    return path


def _literal(value: Any) -> Any:
    """Every `$` doubled: `docker stack deploy` reads `$NAME` in a value as a variable of its
    own environment, and `$$` as a plain `$` (a shell command, a name in an organisation's JSON)."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {key: _literal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_literal(item) for item in value]
    return value


def deploy(stack_file: Path, stack: str) -> None:
    """`docker stack deploy`, with the images as they are on each machine: there is no registry."""
    command = ["docker", "stack", "deploy", "--resolve-image", "never", "--compose-file", str(stack_file), stack]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NodeStartError(f"docker stack deploy of {stack_file} did not finish: {exc}") from exc
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise NodeStartError(f"docker stack deploy of {stack_file} failed:\n" + "\n".join(said))


class SwarmRuntime:
    name = "swarm"

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
        link_proxy: bool = True,  # a swarm run has no link proxy either way
    ) -> None:
        client, here = swarm_client()
        _check_images(client, plan)
        stack = stack_name(state.run_id)
        spec = StackSpec(
            run_id=state.run_id,
            state_root=folder.state_root,
            folder=folder.state_dir,
            constraints=_label_constraint(client, NODES_LABEL),
        )
        document = network_stack(loaded, plan, spec, ca=ca, trust_bundle=Path(state.trust_bundle))
        stack_file = write_stack(document, folder.state_dir / STACK_FILE, f"# run {state.run_id}\n")
        for node_plan in plan.nodes:
            node_state = NodeState(plan=node_plan)
            if node_plan.managed:
                node_state.container = f"{stack}_{node_plan.name}"  # the service, until a container is known
                node_state.log_path = str(folder.logs_dir / f"{node_plan.name}.log")
            state.nodes.append(node_state)
        folder.save(state)  # before deploying: a failure half-way is still torn down by label
        deploy(stack_file, stack)
        progress(f"deployed stack {stack} ({len(plan.managed())} services) on network {network_name(state.run_id)}")
        tasks = Tasks(client, state.run_id)
        place_nodes(client, state, tasks, here=here)
        folder.save(state)
        wait_healthy(
            state, progress, HEALTH_TIMEOUT_SECONDS, exited=lambda n: tasks.ended(_service_of(n)), tail=self.log_tail
        )
        _name_local_containers(client, state)
        folder.save(state)

    def log_tail(self, node: NodeState, lines: int = LOG_TAIL_LINES) -> list[str]:
        if not node.container:
            return []
        with contextlib.suppress(DockerException):
            client = docker_client()
            service = client.services.get(_service_of(node))
            text = b"".join(service.logs(stdout=True, stderr=True, tail=lines)).decode("utf-8", errors="replace")
            task = max(client.api.tasks(filters={"service": service.id}), key=_created, default=None)
            problem = task.get("Status", {}).get("Err") if task else None
            return text.splitlines() + ([f"(swarm task: {problem})"] if problem else [])
        return []

    def stop(self, state: RunState) -> list[str]:
        """Keep each node's log, then remove the run's services, their containers, its network,
        configs and secrets, waiting until they are gone. No node is reported killed: the
        swarm stops their containers."""
        try:
            client = docker_client()
        except DockerUnavailable:
            return []
        for node in state.nodes:
            if node.log_path and node.container:
                with contextlib.suppress(OSError):
                    Path(node.log_path).parent.mkdir(parents=True, exist_ok=True)
                    Path(node.log_path).write_text("\n".join(self.log_tail(node, lines=100_000)) + "\n")
        remove_labelled(client, {RUN_LABEL: state.run_id})
        return []


def _created(task: dict[str, Any]) -> str:
    return str(task.get("CreatedAt", ""))


def _service_of(node: NodeState) -> str:
    """The service of a node: task containers are named `<service>.<slot>.<task id>`."""
    return (node.container or "").split(".")[0]


def _check_images(client: docker.DockerClient, plan: NetworkPlan) -> None:
    for image in sorted({n.image or REFERENCE_IMAGE for n in plan.managed()}):
        try:
            client.images.get(image)
        except ImageNotFound:
            hint = "run `make images`" if image == REFERENCE_IMAGE else "build or load it first"
            raise NodeStartError(
                f"image {image} is not on this machine: {hint} (and `docker load` it on every machine of the swarm)"
            ) from None


def _label_constraint(client: docker.DockerClient, label: str | None) -> list[str]:
    """`node.labels.<label> == true` when some machine of the swarm carries the label, else none."""
    if label is None:
        return []
    with contextlib.suppress(DockerException):
        for swarm_node in client.nodes.list():
            if swarm_node.attrs.get("Spec", {}).get("Labels", {}).get(label) == "true":
                return [f"node.labels.{label} == true"]
    return []


class Tasks:
    """The swarm's view of a run's services: the newest task of each, asked at most once a
    second (a health wait asks about every node ten times a second)."""

    def __init__(self, client: docker.DockerClient, run_id: str):
        self.client = client
        self.run_id = run_id
        self.asked = 0.0
        self.by_service: dict[str, dict[str, Any]] = {}

    def refresh(self, *, now: bool = False) -> dict[str, dict[str, Any]]:
        """Service name -> its newest task."""
        if now or time.monotonic() - self.asked >= 1.0:
            names = {s.id: s.name for s in self.client.services.list(filters={"label": f"{RUN_LABEL}={self.run_id}"})}
            newest: dict[str, dict[str, Any]] = {}
            for task in self.client.api.tasks(filters={"service": list(names)}) if names else []:
                name = names.get(task.get("ServiceID", ""))
                if name and task.get("CreatedAt", "") >= newest.get(name, {}).get("CreatedAt", ""):
                    newest[name] = task
            self.by_service, self.asked = newest, time.monotonic()
        return self.by_service

    def ended(self, service: str) -> bool:
        task = self.refresh().get(service)
        return task is not None and task.get("Status", {}).get("State") in TERMINAL


def place_nodes(client: docker.DockerClient, state: RunState, tasks: Tasks, *, here: str) -> None:
    """Wait until the swarm has placed every node, and record where the harness reaches each:
    127.0.0.1 on this machine, the machine's swarm address elsewhere (host-mode ports)."""
    deadline = time.monotonic() + SCHEDULE_TIMEOUT_SECONDS
    managed = {_service_of(n): n for n in state.nodes if n.plan.managed}
    while True:
        placed = {name: t for name, t in tasks.refresh(now=True).items() if name in managed and t.get("NodeID")}
        if len(placed) == len(managed):
            break
        if time.monotonic() > deadline:
            waiting = sorted(set(managed) - set(placed))
            raise NodeStartError(
                f"the swarm placed no task of {', '.join(waiting)} within {SCHEDULE_TIMEOUT_SECONDS:.0f} s "
                "(no machine fits its placement constraints?)"
            )
        time.sleep(0.5)
    addresses = {n.id: n.attrs.get("Status", {}).get("Addr", "") for n in client.nodes.list()}
    for service, task in placed.items():
        machine = task["NodeID"]
        managed[service].plan.reach_at = "127.0.0.1" if machine == here else addresses.get(machine) or None


def _name_local_containers(client: docker.DockerClient, state: RunState) -> None:
    """Nodes whose container runs on this machine are known by it (the load runner samples
    its CPU and memory; the service is its name's first part)."""
    for container in client.containers.list(filters={"label": f"{RUN_LABEL}={state.run_id}"}):
        node = container.labels.get(NODE_LABEL)
        for node_state in state.nodes:
            if node_state.plan.name == node:
                node_state.container = container.name


def remove_labelled(client: docker.DockerClient, labels: dict[str, str]) -> None:
    """Remove the services carrying all `labels`, wait for their containers to go, then remove
    what is left with those labels: containers, networks (busy while a container of theirs is
    still going), configs and secrets. An engine outside a swarm has none of these but networks
    and containers, and answers the rest with an error, which is passed over."""
    filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
    services = []
    with contextlib.suppress(DockerException):
        services = client.services.list(filters=filters)
    for service in services:
        with contextlib.suppress(NotFound):
            service.remove()
    # Waiting is for what services leave behind: the containers the swarm is stopping.
    deadline = time.monotonic() + (REMOVE_TIMEOUT_SECONDS if services else 0.0)
    while client.api.containers(all=True, filters=filters) and time.monotonic() < deadline:
        time.sleep(0.5)
    for container in client.containers.list(all=True, filters=filters, ignore_removed=True):
        with contextlib.suppress(DockerException):
            container.remove(force=True)
    while networks := client.networks.list(filters=filters):
        for network in networks:
            with contextlib.suppress(DockerException):
                network.remove()
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for collection in (client.configs, client.secrets):
        with contextlib.suppress(DockerException):
            for item in collection.list(filters=filters):
                with contextlib.suppress(DockerException):
                    item.remove()


# --- work inside the network: further services of the run's stack ------------------------------


@dataclass(frozen=True)
class JobService:
    name: str  # the service's name in the stack, and the name its peers reach it by
    command: list[str]  # entrypoint and arguments
    log: str  # file in the job's output folder that receives the service's log
    replicas: int = 1
    label: str | None = None  # only on machines with this swarm node label `true`, when any has it


@dataclass(kw_only=True)
class StackJob:
    """Services run once inside a run's network. The first is the main one: the job ends when
    it does, it runs on this machine, and its `output` folder is copied here."""

    services: list[JobService]
    output: str
    files: dict[PurePosixPath, Path] = field(default_factory=dict)  # path inside -> file here (configs)
    secret_files: dict[PurePosixPath, Path] = field(default_factory=dict)  # the same, as secrets
    environment: dict[str, str] = field(default_factory=dict)
    image: str = REFERENCE_IMAGE


def run_job(state: RunState, job: StackJob, out: Path, *, every_second: Callable[[float], None], timeout: float) -> int:
    """Deploy the job's services into the run's stack, call `every_second` while the main one
    runs (its output folder is copied into `out` every few seconds), and return its exit code.
    The job's services, configs and secrets are removed afterwards, whatever happened."""
    client, here = swarm_client()
    try:
        network = client.networks.get(network_name(state.run_id))
    except NotFound:
        raise TestbedError(f"run {state.run_id} has no swarm network {network_name(state.run_id)} (any more)") from None
    job_id = secrets.token_hex(3)
    # The network's labels (the run and its state folder) and the job's own.
    labels = {**(network.attrs.get("Labels") or {}), JOB_LABEL: job_id}
    stack = stack_name(state.run_id)
    document = _job_stack(client, job, labels, run_id=state.run_id, folder=out, here=here, job_id=job_id)
    stack_file = write_stack(document, out / "job-stack.yml", f"# a job of run {state.run_id}\n")
    try:
        deploy(stack_file, stack)
        tasks = Tasks(client, state.run_id)
        task = _follow(tasks, f"{stack}_{job.services[0].name}", job, out, every_second=every_second, timeout=timeout)
        return _exit_code(client, task, job, out)
    finally:
        _keep_job_logs(client, stack, job, out)
        remove_labelled(client, {RUN_LABEL: state.run_id, JOB_LABEL: job_id})


def _job_stack(
    client: docker.DockerClient,
    job: StackJob,
    labels: dict[str, str],
    *,
    run_id: str,
    folder: Path,
    here: str,
    job_id: str,
) -> dict[str, Any]:
    defined: dict[str, dict[str, Any]] = {"configs": {}, "secrets": {}}
    mounts = _mounts(f"job-{job_id}", job.files, job.secret_files, folder=folder, labels=labels, defined=defined)
    services = {}
    for index, service in enumerate(job.services):
        # The main service runs here, where its output is read; the others where their label says.
        where = [f"node.id == {here}"] if index == 0 else _label_constraint(client, service.label)
        services[service.name] = {
            "image": job.image,
            "entrypoint": service.command,
            "environment": job.environment,
            "labels": labels,
            **mounts,
            "networks": {NETWORK_KEY: {"aliases": [service.name]}},
            "deploy": {
                "replicas": service.replicas,
                "endpoint_mode": "dnsrr",
                "restart_policy": {"condition": "none"},
                "labels": labels,
                "placement": {"constraints": where},
            },
        }
    return {
        "version": "3.8",
        "services": services,
        "networks": {NETWORK_KEY: {"external": True, "name": network_name(run_id)}},
        **defined,
    }


def _follow(
    tasks: Tasks, main: str, job: StackJob, out: Path, *, every_second: Callable[[float], None], timeout: float
) -> dict[str, Any]:
    """The main service's task once it has ended; its output copied here every few seconds."""
    began = time.monotonic()
    copied = 0.0
    while True:
        task = tasks.refresh(now=True).get(main)
        state = (task or {}).get("Status", {}).get("State")
        if state in TERMINAL:
            assert task is not None
            return task
        elapsed = time.monotonic() - began
        if elapsed > timeout:
            raise TestbedError(f"{main} did not finish within {timeout:.0f} s")
        if task is not None and state == "running" and elapsed - copied >= 3.0:
            _copy_output(tasks.client, task, job.output, out)
            copied = elapsed
        every_second(elapsed)
        time.sleep(1.0)


def _exit_code(client: docker.DockerClient, task: dict[str, Any], job: StackJob, out: Path) -> int:
    status = task.get("Status", {})
    if not status.get("ContainerStatus", {}).get("ContainerID"):
        raise TestbedError(f"the swarm did not run {job.services[0].name}: {status.get('State')}: {status.get('Err')}")
    _copy_output(client, task, job.output, out)
    return int(status.get("ContainerStatus", {}).get("ExitCode", -1))


def _copy_output(client: docker.DockerClient, task: dict[str, Any], folder: str, out: Path) -> None:
    """The regular files of a folder in the task's container (on this machine), into `out`."""
    container_id = task.get("Status", {}).get("ContainerStatus", {}).get("ContainerID")
    if not container_id:
        return
    with contextlib.suppress(DockerException):
        stream, _ = client.containers.get(container_id).get_archive(folder)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            for member in archive.getmembers():
                source = archive.extractfile(member) if member.isfile() else None
                if source is not None:
                    (out / PurePosixPath(member.name).name).write_bytes(source.read())


def _keep_job_logs(client: docker.DockerClient, stack: str, job: StackJob, out: Path) -> None:
    for service in job.services:
        with contextlib.suppress(DockerException, OSError):
            logs = client.services.get(f"{stack}_{service.name}").logs(stdout=True, stderr=True)
            (out / service.log).write_bytes(b"".join(logs))
