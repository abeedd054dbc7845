"""Where a benchmark's processes run, and the endpoints figures are measured against.

The server under test (a node, or the raw endpoint) runs on one core and the load driver on
the other, so that the driver never takes CPU from what it measures. Two endpoints:
- the raw endpoint: the nodes' own server stack with nothing behind it, the yardstick for a
  node's figures;
- the static endpoint: nginx answering a fixed JSON body, many times faster than any Python
  server, for measuring load drivers (whose own cost is then what the figures show)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from testbed.bench import BenchError
from testbed.network import RunningNetwork
from testbed.pki import NetworkCA, TlsFiles
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
    tls = _certificate(running, scratch)
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


@dataclass(frozen=True)
class Endpoint:
    url: str
    name: str  # what answers, as the results name it


NGINX_CONFIG = """\
{user}
worker_processes 1;
master_process off;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {folder}/body; proxy_temp_path {folder}/proxy; fastcgi_temp_path {folder}/fastcgi;
  uwsgi_temp_path {folder}/uwsgi; scgi_temp_path {folder}/scgi;
  keepalive_requests 100000000;
  keepalive_timeout 120s;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    location = / {{ default_type application/json; return 200 '{{"ok":true}}'; }}
  }}
}}
"""


@contextlib.contextmanager
def static_endpoint(running: RunningNetwork, scratch: Path) -> Iterator[Endpoint]:
    """nginx on the server core answering `GET /` with `{"ok":true}` over HTTPS (a certificate
    from the network CA), as the raw endpoint's `/` does; the raw endpoint stands in, and says
    so in its name, where nginx is not installed (`make wrk` installs both)."""
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if nginx is None:
        with raw_endpoint(running, scratch) as url:
            yield Endpoint(url, "raw endpoint (uvicorn; nginx is not installed)")
        return
    folder = scratch / "nginx"
    folder.mkdir(exist_ok=True)
    tls = _certificate(running, scratch)
    port = free_loopback_port()
    config = folder / "nginx.conf"
    config.write_text(
        NGINX_CONFIG.format(
            user="user root;" if os.geteuid() == 0 else "",  # root would otherwise hand the worker to nobody
            folder=folder,
            port=port,
            cert=tls.cert,
            key=tls.key,
        ),
        encoding="utf-8",
    )
    server = subprocess.Popen(
        [nginx, "-c", str(config), "-p", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=on_core(SERVER_CORE),
    )
    try:
        _wait_listening("127.0.0.1", port, server)
        version = subprocess.run([nginx, "-v"], capture_output=True, text=True, timeout=10).stderr.strip()
        yield Endpoint(f"https://127.0.0.1:{port}", version.removeprefix("nginx version: ") or "nginx")
    finally:
        server.terminate()
        server.wait(timeout=10)


def _certificate(running: RunningNetwork, scratch: Path) -> TlsFiles:
    ca = NetworkCA.open(running.folder.pki_dir, "bench")
    return ca.issue(scratch / "endpoint-tls", "bench endpoint", ["127.0.0.1"])


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
