"""The process runtime (the default): every reference node is its own OS process, in its
own process group, listening on its own loopback address."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from protocols.nodeconfig import NodeConfig, TlsConfig
from testbed.errors import NodeStartError
from testbed.pki import NetworkCA
from testbed.runtime.client import harness_client
from testbed.runtime.nodeconfig import node_config
from testbed.runtime.plan import NetworkPlan
from testbed.runtime.state import NodeState, RunFolder, RunState
from testbed.topology import LoadedNetwork

HEALTH_TIMEOUT_SECONDS = 30.0
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
    ) -> None:
        """Start every reference node and wait until all nodes answer their health check.
        State is saved after each spawn, so a failure half-way can still be torn down."""
        for node_plan in plan.nodes:
            node_state = NodeState(plan=node_plan)
            state.nodes.append(node_state)
            if node_plan.managed:
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
                )
                self._spawn(node_state, config, folder)
                progress(f"started {node_plan.name} ({node_plan.role}) at {node_plan.public_url}")
            folder.save(state)
        wait_healthy(state, progress)

    def _spawn(self, node_state: NodeState, config: NodeConfig, folder: RunFolder) -> None:
        config_path = folder.state_dir / "nodes" / config.name / "node.json"
        config_path.parent.mkdir(parents=True, exist_ok=True)
        config.write(config_path)
        log_path = folder.logs_dir / f"{config.name}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "nodes", "--config", str(config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: Ctrl-C reaches the harness, which stops the nodes
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        node_state.pid = process.pid
        node_state.config_path = str(config_path)
        node_state.log_path = str(log_path)

    def log_tail(self, node: NodeState) -> list[str]:
        return log_tail(node)

    def stop(self, state: RunState) -> list[str]:
        """Stop every node this run started; returns the names of nodes that needed SIGKILL."""
        alive = [n for n in state.nodes if n.pid and _is_our_node(n)]
        for node in alive:
            _signal_group(node.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while time.monotonic() < deadline and any(_group_alive(n.pid) for n in alive):
            _reap(alive)
            time.sleep(0.05)
        killed = []
        for node in alive:
            if _group_alive(node.pid):
                _signal_group(node.pid, signal.SIGKILL)
                killed.append(node.plan.name)
        _reap(alive)
        return killed


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
            for name, node in list(pending.items()):
                if exited(node):
                    raise NodeStartError(f"node {name} exited during start-up\n{log_tail_text(node, tail(node))}")
                last_answer[name] = _health_problem(client, node.plan.internal_url)
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
            time.sleep(0.1)


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
