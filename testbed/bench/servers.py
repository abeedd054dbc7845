"""Where a benchmark's processes run, and the raw endpoint every figure is compared with.

The server under test (a node, or the raw endpoint) runs on one core and the load driver on
the other, so that the driver never takes CPU from what it measures."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from testbed.bench import BenchError
from testbed.network import RunningNetwork
from testbed.pki import NetworkCA
from testbed.runtime.plan import free_loopback_port

SERVER_CORE, DRIVER_CORE = 0, 1


def on_core(core: int) -> Callable[[], None]:
    """Pin a child before it starts, so that every thread it makes stays on `core`."""
    return lambda: os.sched_setaffinity(0, {core})


def pin_process_tree(pid: int | None, core: int) -> None:
    """Pin a running node and all of its threads (a node's threads are its tasks in /proc)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), {core})


@contextlib.contextmanager
def raw_endpoint(running: RunningNetwork, scratch: Path, mutual_tls: bool = False) -> Iterator[str]:
    """The raw endpoint on the server core, with a certificate from the network CA; yields
    its base URL. `mutual_tls`: it asks for a client certificate from that CA, as the
    consent node's public listener does, so that both pay for the same handshake."""
    ca = NetworkCA.open(running.folder.pki_dir, "bench")
    tls = ca.issue(scratch / "raw-tls", "raw endpoint", ["127.0.0.1"])
    port = free_loopback_port()
    command = [sys.executable, "-m", "testbed.bench.raw_server", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--cert", str(tls.cert), "--key", str(tls.key)]
    if mutual_tls:
        command += ["--client-ca", running.state.trust_bundle]
    server = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=on_core(SERVER_CORE)
    )
    try:
        _wait_listening("127.0.0.1", port, server)
        yield f"https://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def _wait_listening(host: str, port: int, server: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """A TCP connection, not an HTTPS request: with mutual TLS a request without a client
    certificate would fail for as long as the server runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise BenchError(f"the raw endpoint did not start on {host}:{port}")
