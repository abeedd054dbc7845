"""The process runtime (the default): every reference node listens on its own loopback
address, in an OS process of its own or (a large network) in a process it shares with other
nodes (nodes.common.host); every process has its own process group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import httpx

from protocols.nodeconfig import HostConfig, NodeConfig, TlsConfig
from testbed.concurrency import each
from testbed.errors import ConfigError, NodeStartError
from testbed.faults import links  # a module, not its names: it imports the runtime package in turn
from testbed.pki import NetworkCA
from testbed.runtime.client import harness_client
from testbed.runtime.nodeconfig import node_config
from testbed.runtime.plan import CONTROL_PORT, NetworkPlan, NodePlan
from testbed.runtime.state import NodeState, RunFolder, RunState
from testbed.topology import LoadedNetwork

HEALTH_TIMEOUT_SECONDS = 30.0
HEALTH_POLL_SECONDS = 0.1  # between rounds of health checks while a few nodes are still pending
# A url: node is already running when a run starts: it gets a few seconds, not a start-up's time.
URL_NODE_PATIENCE_SECONDS = 5.0
STOP_GRACE_SECONDS = 5.0
LOG_TAIL_LINES = 40

Progress = Callable[[str], None]


class ProcessRuntime:
    name = "process"

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
        """Start every reference node (alone, or with others in a shared process, as the plan
        says) and wait until all nodes answer their health check. State is saved after each
        spawn, so a failure half-way can still be torn down."""
        # Every node opens its connections to peers through the run's link-fault proxy, which
        # starts first so that the nodes can be told where it is (testbed.faults.proxy); a run
        # that does no link faults may leave it out (`link_proxy=False`, the benchmarks).
        if link_proxy:
            state.link_proxy = links.start_link_proxy(
                plan, folder, ca=ca, trust_bundle=state.trust_bundle, owner_pid=owner_pid, seed=loaded.network.seed
            )
            folder.save(state)
        # A shared process starts as soon as its last node is configured, so that its nodes
        # build while the harness still writes the configurations of the next process's.
        group_sizes = Counter(n.process_group for n in plan.nodes if n.managed and n.process_group is not None)
        groups: dict[int, list[tuple[NodeState, NodeConfig]]] = {}
        for node_plan in plan.nodes:
            node_state = NodeState(plan=node_plan)
            state.nodes.append(node_state)
            if not node_plan.managed:
                continue
            config = self._configure(loaded, plan, node_plan, folder=folder, state=state, ca=ca, owner_pid=owner_pid)
            if node_plan.process_group is None:
                self._spawn(node_state, config, folder)
                progress(f"started {node_plan.name} ({node_plan.role}) at {node_plan.public_url}")
                folder.save(state)  # saved after each spawn: a failure half-way can still be torn down
                continue
            index = node_plan.process_group
            members = groups.setdefault(index, [])
            members.append((node_state, config))
            if len(members) == group_sizes[index]:
                self._spawn_host(index, members, folder=folder, owner_pid=owner_pid)
                progress(f"started process {index + 1} of {len(group_sizes)}, hosting {len(members)} nodes")
                folder.save(state)
        folder.save(state)
        largest = max(group_sizes.values(), default=1)
        wait_healthy(state, progress, timeout=health_timeout(largest))

    def _configure(
        self,
        loaded: LoadedNetwork,
        plan: NetworkPlan,
        node_plan: NodePlan,
        *,
        folder: RunFolder,
        state: RunState,
        ca: NetworkCA,
        owner_pid: int | None,
    ) -> NodeConfig:
        node_dir = folder.state_dir / "nodes" / node_plan.name
        tls = ca.issue(node_dir / "tls", node_plan.name, [node_plan.host, "localhost"])
        config = node_config(
            loaded,
            plan,
            node_plan,
            bind=node_plan.host,
            tls=TlsConfig(cert=tls.cert, key=tls.key, ca=Path(state.trust_bundle)),
            data_dir=node_dir / "data",
            owner_pid=owner_pid,
            egress_proxy=links.node_egress(state, node_plan.name),
        )
        if node_plan.process_group is not None:  # its process's output is not its own
            config.log_file = folder.logs_dir / f"{node_plan.name}.log"
        config_path = node_dir / "node.json"
        config_path.parent.mkdir(parents=True, exist_ok=True)
        config.write(config_path)
        return config

    def _spawn(self, node_state: NodeState, config: NodeConfig, folder: RunFolder) -> None:
        config_path = folder.state_dir / "nodes" / config.name / "node.json"
        log_path = folder.logs_dir / f"{config.name}.log"
        node_state.pid = _start_process(["--config", str(config_path)], log_path)
        node_state.config_path = str(config_path)
        node_state.log_path = str(log_path)

    def _spawn_host(
        self,
        index: int,
        members: list[tuple[NodeState, NodeConfig]],
        *,
        folder: RunFolder,
        owner_pid: int | None,
    ) -> None:
        """One process for several nodes; its control listener lives on its first node's
        address, with that node's certificate (which names the address)."""
        first = members[0][1]
        host = HostConfig(
            name=f"host-{index + 1}",
            nodes=[folder.state_dir / "nodes" / config.name / "node.json" for _, config in members],
            control_host=first.host,
            control_port=CONTROL_PORT,
            tls=first.tls,
            parent_pid=owner_pid,
        )
        host_path = folder.state_dir / "hosts" / f"{host.name}.json"
        host_path.parent.mkdir(parents=True, exist_ok=True)
        host.write(host_path)
        pid = _start_process(["--host", str(host_path)], folder.logs_dir / f"{host.name}.log")
        for node_state, config in members:
            node_state.pid = pid
            node_state.config_path = str(host_path)  # what the process's command line names
            node_state.log_path = str(config.log_file)
            node_state.control_url = host.control_url
            node_state.process_log = str(folder.logs_dir / f"{host.name}.log")

    def log_tail(self, node: NodeState) -> list[str]:
        return log_tail(node)

    def stop(self, state: RunState) -> list[str]:
        """Stop every process this run started; returns the names of nodes whose process
        needed SIGKILL."""
        processes = {n.pid: n for n in state.nodes if n.pid and _is_our_node(n)}  # a shared process once
        alive = list(processes.values())
        for node in alive:
            _signal_group(node.pid, signal.SIGTERM)
        # A process hosting hundreds of nodes shuts each down in turn on one event loop.
        largest = max(Counter(n.pid for n in state.nodes if n.pid in processes).values(), default=1)
        deadline = time.monotonic() + STOP_GRACE_SECONDS + largest / 50
        while time.monotonic() < deadline and any(_group_alive(n.pid) for n in alive):
            _reap(alive)
            time.sleep(0.05)
        killed: list[str] = []
        for node in alive:
            if _group_alive(node.pid):
                _signal_group(node.pid, signal.SIGKILL)
                killed.extend(n.plan.name for n in state.nodes if n.pid == node.pid)
        _reap(alive)
        links.stop_link_proxy(state)  # after the nodes, which may still be calling through it
        return killed

    def operate(self, state: RunState, name: str, operation: str, *, progress: Progress) -> str:
        """Stop, kill, start, restart, pause or resume one node, leaving every other node, its
        process neighbours included, as it is. Returns the node's state afterwards."""
        node = next((n for n in state.nodes if n.plan.name == name), None)
        if node is None:
            raise ConfigError(f"no node {name!r} in run {state.run_id}")
        if not node.plan.managed:
            raise ConfigError(
                f"{name} is not started by this run (url: {node.plan.public_url}): the harness cannot {operation} it"
            )
        if node.control_url is not None:
            return _operate_hosted(state, node, operation)
        return _operate_alone(state, node, operation, progress=progress)


def health_timeout(nodes_per_process: int) -> float:
    """Time for a network to come up: a shared process starts its nodes one after another
    (a data station generates its synthetic data as it starts)."""
    return max(HEALTH_TIMEOUT_SECONDS, nodes_per_process * 1.0)


def _start_process(arguments: list[str], log_path: Path) -> int:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "nodes", *arguments],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: Ctrl-C reaches the harness, which stops the nodes
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    return process.pid


NODE_OPERATIONS = ("stop", "kill", "start", "restart", "pause", "resume")


def _operate_hosted(state: RunState, node: NodeState, operation: str) -> str:
    """A node that shares its process is operated on by that process (its control listener);
    paused, it accepts and reads nothing, as a stopped process (nodes.common.host)."""
    if operation not in NODE_OPERATIONS:
        raise ConfigError(
            f"{node.plan.name} shares its process with other nodes: it can be stopped, killed, started, "
            f"restarted, paused or resumed, not {operation!r}"
        )
    url = f"{node.control_url}/nodes/{node.plan.name}/{operation}"
    with harness_client(state, timeout=30.0) as client:
        try:
            answer = client.post(url)
        except httpx.HTTPError as exc:
            raise NodeStartError(f"{node.plan.name}: the process hosting it did not answer at {url}: {exc}") from exc
    body = parse_body(answer)
    if answer.status_code != 200:
        raise NodeStartError(f"{node.plan.name}: {operation} failed: {body.get('detail') or answer.text[:200]}")
    return str(body.get("status", "unknown"))


def parse_body(answer: httpx.Response) -> dict[str, object]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _operate_alone(state: RunState, node: NodeState, operation: str, *, progress: Progress) -> str:
    signals = {"stop": signal.SIGTERM, "kill": signal.SIGKILL, "pause": signal.SIGSTOP, "resume": signal.SIGCONT}
    if operation not in NODE_OPERATIONS:
        raise ConfigError(f"unknown operation {operation!r}; known: {', '.join(NODE_OPERATIONS)}")
    running = node.pid is not None and _is_our_node(node) and _group_alive(node.pid)
    if operation in signals:
        if running:
            _signal_group(node.pid, signals[operation])
            if operation in ("stop", "kill"):
                _wait_gone(node)
        return {"pause": "paused", "resume": "running"}.get(operation, "stopped")
    if operation == "restart" and running:
        _signal_group(node.pid, signal.SIGTERM)
        _wait_gone(node)
    if operation == "start" and running:
        return "running"
    assert node.config_path is not None and node.log_path is not None
    node.pid = _start_process(["--config", node.config_path], Path(node.log_path))
    wait_healthy(state.model_copy(update={"nodes": [node]}), progress)  # this node alone
    return "running"


def _wait_gone(node: NodeState) -> None:
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while _group_alive(node.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _group_alive(node.pid):
        _signal_group(node.pid, signal.SIGKILL)
        while _group_alive(node.pid):
            time.sleep(0.05)


def wait_healthy(
    state: RunState,
    progress: Progress,
    timeout: float = HEALTH_TIMEOUT_SECONDS,
    *,
    exited: Callable[[NodeState], bool] | None = None,
    tail: Callable[[NodeState], list[str]] | None = None,
) -> None:
    """Every node answers `GET {internal}/health` with 200 before the network counts as up.
    `exited` and `tail` tell, for the runtime at hand, whether a node has stopped and what it
    logged last (default: a node process and its log file)."""
    exited = exited or (lambda node: node.pid is not None and _exited(node.pid))
    tail = tail or log_tail
    pending = {n.plan.name: n for n in state.nodes}
    last_answer: dict[str, str] = {}  # why each pending node is not healthy yet
    started = time.monotonic()
    deadline = started + timeout
    with harness_client(state, timeout=2.0) as client:
        while pending:
            for node in _one_per_process(pending.values()):
                if exited(node):
                    # A shared process's own log says which of its nodes could not start, and why.
                    shown = node.model_copy(update={"log_path": node.process_log}) if node.process_log else node
                    raise NodeStartError(f"{_who(node)} exited during start-up\n{log_tail_text(shown, tail(shown))}")
            answers = each(lambda node: _health_problem(client, node.plan.internal_url), pending.values())
            last_answer.update(zip(pending, answers, strict=True))
            for name, node in list(pending.items()):
                if not last_answer[name]:
                    progress(f"{name} is healthy")
                    del pending[name]
                elif not node.plan.managed and time.monotonic() - started > URL_NODE_PATIENCE_SECONDS:
                    raise NodeStartError(
                        f"node {name} (url: {node.plan.public_url}) is not healthy, and it is not one this run "
                        f"starts: {last_answer[name]}"
                    )
            if not pending:
                return
            if time.monotonic() > deadline:
                reasons = "\n".join(f"  {name}: {last_answer.get(name, 'not asked yet')}" for name in sorted(pending))
                tails = "\n".join(log_tail_text(n, tail(n)) for n in pending.values() if n.plan.managed)
                raise NodeStartError(f"not healthy after {timeout:.0f} s:\n{reasons}\n{tails}".rstrip())
            # A thousand nodes asked ten times a second would keep a core of the machine they
            # start on busy: the more are still pending, the longer between rounds.
            time.sleep(min(HEALTH_POLL_SECONDS * max(1.0, len(pending) / 40), 0.5))


def _one_per_process(nodes: Iterable[NodeState]) -> list[NodeState]:
    """One node of each process (a shared process's nodes end together), and every node
    without a process id of its own (e.g. a container)."""
    seen: set[int] = set()
    picked = []
    for node in nodes:
        if node.pid is None or node.pid not in seen:
            picked.append(node)
        if node.pid is not None:
            seen.add(node.pid)
    return picked


def _who(node: NodeState) -> str:
    if node.process_log is not None:
        return f"the process hosting node {node.plan.name} (its log: {node.process_log})"
    return f"node {node.plan.name}"


def _health_problem(client: httpx.Client, internal_url: str) -> str:
    """Empty when `GET {internal}/health` answers 200; otherwise what went wrong."""
    url = f"{internal_url}/health"
    try:
        status = client.get(url).status_code
    except httpx.HTTPError as exc:
        return f"GET {url} failed: {exc.__class__.__name__}: {exc}"
    return "" if status == 200 else f"GET {url} answered {status}"


def log_tail(node: NodeState, lines: int = LOG_TAIL_LINES) -> list[str]:
    if not node.log_path:
        return []
    try:
        with open(node.log_path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 64 * 1024))
            text = log.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


def log_tail_text(node: NodeState, tail: list[str] | None = None) -> str:
    tail = log_tail(node) if tail is None else tail
    header = f"--- last {len(tail)} lines of {node.container or node.log_path} ---"
    return "\n".join([header, *tail]) if tail else f"(no log output from {node.plan.name})"


def _is_our_node(node: NodeState) -> bool:
    """Guard against a reused pid: the process must still be the node we started."""
    try:
        cmdline = Path(f"/proc/{node.pid}/cmdline").read_bytes()
    except OSError:
        return _group_alive(node.pid) if sys.platform != "linux" else False
    return node.config_path is not None and node.config_path.encode() in cmdline


def _signal_group(pid: int | None, sig: signal.Signals) -> None:
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _group_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _exited(pid)


def _exited(pid: int) -> bool:
    """True when the process is gone or a zombie (reaping it if it is our child)."""
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return True
    except ChildProcessError:
        pass  # not our child (started by an earlier invocation)
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return True
    return status in ("Z", "X")


def _reap(nodes: list[NodeState]) -> None:
    for node in nodes:
        if node.pid:
            _exited(node.pid)
