"""The process runtime (the default): every reference node is its own OS process, in its
own process group, listening on its own loopback address."""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from nodes.common.config import NodeConfig, OrganisationInfo, TlsConfig
from testbed.errors import NodeStartError
from testbed.pki import NetworkCA
from testbed.runtime.plan import NetworkPlan, NodePlan
from testbed.runtime.state import NodeState, RunFolder, RunState
from testbed.topology import LoadedNetwork, Role, organisation_subject

HEALTH_TIMEOUT_SECONDS = 30.0
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
                config = self._config(loaded, plan, node_plan, folder, ca, Path(state.trust_bundle), owner_pid)
                self._spawn(node_state, config, folder)
                progress(f"started {node_plan.name} ({node_plan.role}) at {node_plan.public_url}")
            folder.save(state)
        wait_healthy(state, progress)

    def _config(
        self,
        loaded: LoadedNetwork,
        plan: NetworkPlan,
        node: NodePlan,
        folder: RunFolder,
        ca: NetworkCA,
        trust_bundle: Path,
        owner_pid: int | None,
    ) -> NodeConfig:
        network = loaded.network
        org = network.organisation(node.organisation)
        node_dir = folder.state_dir / "nodes" / node.name
        tls = ca.issue(node_dir / "tls", node.name, [node.host, "localhost"])
        return NodeConfig(
            name=node.name,
            role=node.role.value,
            organisation=OrganisationInfo(id=org.id, name=org.name, ura=org.ura, city=org.city, category=org.category),
            seed=network.seed,
            host=node.host,
            public_port=node.public_port,
            internal_port=node.internal_port,
            public_url=node.public_url,
            internal_url=node.internal_url,
            tls=TlsConfig(cert=tls.cert, key=tls.key, ca=trust_bundle),
            data_dir=node_dir / "data",
            parent_pid=owner_pid,
            peers=_peers(loaded, plan, node),
            settings=next(n for _, n in network.nodes() if n.name == node.name).settings,
        )

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


def _peers(loaded: LoadedNetwork, plan: NetworkPlan, node: NodePlan) -> dict[str, str]:
    """What a node needs to find: its organisation's trust node and the consent service."""
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
    if node.role == Role.HDAB:
        for org, station in loaded.network.nodes_with_role(Role.STATION):
            peers[f"station:{org.id}"] = plan.node(station.name).public_url  # whose catalogues it harvests
    return peers


def wait_healthy(state: RunState, progress: Progress, timeout: float = HEALTH_TIMEOUT_SECONDS) -> None:
    """Every node answers `GET {internal}/health` with 200 before the network counts as up."""
    pending = {n.plan.name: n for n in state.nodes}
    last_answer: dict[str, str] = {}  # why each pending node is not healthy yet
    deadline = time.monotonic() + timeout
    with httpx.Client(verify=ssl_context_for(state), timeout=2.0) as client:
        while pending:
            for name, node in list(pending.items()):
                if node.pid and _exited(node.pid):
                    raise NodeStartError(f"node {name} exited during start-up\n{log_tail_text(node)}")
                last_answer[name] = _health_problem(client, node.plan.internal_url)
                if not last_answer[name]:
                    progress(f"{name} is healthy")
                    del pending[name]
            if not pending:
                return
            if time.monotonic() > deadline:
                reasons = "\n".join(f"  {name}: {last_answer.get(name, 'not asked yet')}" for name in sorted(pending))
                tails = "\n".join(log_tail_text(n) for n in pending.values() if n.pid)
                raise NodeStartError(f"not healthy after {timeout:.0f} s:\n{reasons}\n{tails}".rstrip())
            time.sleep(0.1)


def ssl_context_for(state: RunState) -> ssl.SSLContext:
    """Trust what the run trusts (the network CA and the CAs of implementations under test),
    and show the harness's own certificate to nodes that ask for one."""
    context = ssl.create_default_context(cafile=state.trust_bundle)
    if state.client_cert:
        context.load_cert_chain(state.client_cert, state.client_key)
    return context


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


def log_tail_text(node: NodeState) -> str:
    tail = log_tail(node)
    header = f"--- last {len(tail)} lines of {node.log_path} ---"
    return "\n".join([header, *tail]) if tail else f"(no log output from {node.plan.name})"


def _is_our_node(node: NodeState) -> bool:
    """Guard against a reused pid: the process must still be the node we started."""
    try:
        cmdline = Path(f"/proc/{node.pid}/cmdline").read_bytes()
    except OSError:
        return _group_alive(node.pid) if sys.platform != "linux" else False
    return bool(node.config_path) and node.config_path.encode() in cmdline


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
