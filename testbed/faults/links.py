"""The harness's side of link faults: the run's proxy process (testbed.faults.proxy), which the
process runtime starts before the nodes and stops after them, and `LinkFaults`, the control
a fault step uses to cut, slow down, lose and heal links of a running network.

The proxy gets its listening sockets from the runtime, bound before it starts, so the nodes
can be told its port at once and nothing can take the port in between; its control listener
asks for a certificate from the network CA, as every internal API does."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from protocols.nodeconfig import TlsConfig
from testbed.faults.proxy import HARNESS, LinkControl, LinkFaultError, LinkOperation, ProxyConfig, egress_url
from testbed.pki import NetworkCA
from testbed.runtime.client import ssl_context_for
from testbed.runtime.plan import NetworkPlan, NodePlan
from testbed.runtime.state import LinkProxyState, RunFolder, RunState

LOOPBACK = "127.0.0.1"
STOP_GRACE_SECONDS = 5.0
CONTROL_TIMEOUT_SECONDS = 10.0

__all__ = ["HARNESS", "LinkFaults", "node_egress", "start_link_proxy", "stop_link_proxy"]


def node_endpoints(node: NodePlan) -> list[str]:
    """Where connections to a node go: its public and internal host:port."""
    return sorted({f"{node.host}:{node.public_port}", f"{node.host}:{node.internal_port}"})


def start_link_proxy(
    plan: NetworkPlan,
    folder: RunFolder,
    *,
    ca: NetworkCA,
    trust_bundle: str,
    owner_pid: int | None,
    seed: str,
) -> LinkProxyState:
    """Start the run's proxy process on loopback (process runtime); it ends with `owner_pid`
    as the nodes do, and `stop_link_proxy` ends it otherwise."""
    home = folder.state_dir / "link-proxy"
    tls = ca.issue(home / "tls", "testbed link proxy", [LOOPBACK, "localhost"])
    config = ProxyConfig(
        nodes={node.name: node_endpoints(node) for node in plan.nodes},
        tls=TlsConfig(cert=tls.cert, key=tls.key, ca=Path(trust_bundle)),
        parent_pid=owner_pid,
        seed=seed,
    )
    config_path = home / "proxy.json"
    config_path.write_text(config.model_dump_json(indent=2), encoding="utf-8")
    with _listening() as proxy_sock, _listening() as control_sock:
        pid = _spawn(config_path, proxy_sock, control_sock, log_path=folder.logs_dir / "link-proxy.log")
        url = f"http://{LOOPBACK}:{proxy_sock.getsockname()[1]}"
        control = f"{LOOPBACK}:{control_sock.getsockname()[1]}"
    return LinkProxyState(url=url, node_url=url, control=control, config_path=str(config_path), pid=pid)


def node_egress(state: RunState, node: str) -> str | None:
    """The egress proxy URL a node is told (None when the run has no proxy)."""
    return egress_url(state.link_proxy.node_url, node) if state.link_proxy else None


@contextlib.contextmanager
def _listening() -> Any:
    """A socket listening on a free loopback port; the proxy process takes it over, and this
    process's copy is closed once the proxy has it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as any server's: closed connections may linger
        sock.bind((LOOPBACK, 0))
        sock.listen(512)
        yield sock
    finally:
        sock.close()


def _spawn(config_path: Path, proxy_sock: socket.socket, control_sock: socket.socket, *, log_path: Path) -> int:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fds = (proxy_sock.fileno(), control_sock.fileno())
    sockets = ["--proxy-fd", str(fds[0]), "--control-fd", str(fds[1])]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "testbed.faults.proxy", "--config", str(config_path), *sockets],
            pass_fds=fds,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the harness, which stops the proxy after the nodes
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    return process.pid


def stop_link_proxy(state: RunState) -> None:
    """End the run's proxy process (SIGTERM, SIGKILL after a grace period), if it is still the
    one the run started; the run then has no proxy."""
    proxy = state.link_proxy
    if proxy is None or proxy.pid is None:
        return
    if _is_our_proxy(proxy):
        with contextlib.suppress(ProcessLookupError):
            os.kill(proxy.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while not _gone(proxy.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if not _gone(proxy.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(proxy.pid, signal.SIGKILL)
            while not _gone(proxy.pid):
                time.sleep(0.02)
    state.link_proxy = None


def _is_our_proxy(proxy: LinkProxyState) -> bool:
    """Guard against a reused pid: the process must still be the proxy of this run."""
    assert proxy.pid is not None
    try:
        return proxy.config_path.encode() in Path(f"/proc/{proxy.pid}/cmdline").read_bytes()
    except OSError:
        return False


def _gone(pid: int) -> bool:
    """True when the process has ended (reaped here when it is this process's child)."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    try:
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return True
    return status in ("Z", "X")


class LinkFaults(LinkControl):
    """The faults on the links of a running network, set over its proxy's control listener:
    `LinkFaults(state).cut("station", "consent")`. HARNESS names the harness as a link's
    source (its client must then go through the proxy: `harness_client(..., via_proxy=True)`)."""

    def __init__(self, state: RunState, timeout: float = CONTROL_TIMEOUT_SECONDS):
        if state.link_proxy is None:
            raise LinkFaultError(f"run {state.run_id} has no link proxy ({state.runtime} runtime): links cannot fail")
        self.control = state.link_proxy.control
        self.context = ssl_context_for(state)
        self.timeout = timeout

    def apply(self, operation: LinkOperation) -> dict[str, Any]:
        host, _, port = self.control.rpartition(":")
        try:
            with (
                socket.create_connection((host, int(port)), timeout=self.timeout) as raw,
                self.context.wrap_socket(raw, server_hostname=host) as sock,
            ):
                sock.sendall(operation.model_dump_json().encode() + b"\n")
                answer = _read_line(sock)
        except (OSError, ssl.SSLError) as exc:
            raise LinkFaultError(f"the link proxy's control listener at {self.control} does not answer: {exc}") from exc
        if not answer:  # TLS 1.3: a client certificate it does not take shows only as a closed connection
            raise LinkFaultError(
                f"the link proxy's control listener at {self.control} closed the connection without an answer "
                "(it takes clients with a certificate from the network CA only)"
            )
        try:
            result: dict[str, Any] = json.loads(answer)
        except ValueError:
            raise LinkFaultError(f"the link proxy at {self.control} answered no JSON: {answer[:200]!r}") from None
        if "error" in result:
            raise LinkFaultError(str(result["error"]))
        return result


def _read_line(sock: ssl.SSLSocket) -> bytes:
    answer = b""
    while not answer.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        answer += chunk
    return answer
