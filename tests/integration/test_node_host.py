"""`python -m nodes --host`: several nodes in one process, as the process runtime starts it.
What happens when one of them cannot start, and what the host refuses before starting any."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import ssl
import subprocess
import sys
import time
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx

from protocols.nodeconfig import HostConfig, NodeConfig, OrganisationInfo, TlsConfig
from testbed.pki import NetworkCA, write_trust_bundle
from testbed.runtime.plan import free_loopback_port


def _configs(tmp_path: Path, count: int) -> list[Path]:
    ca = NetworkCA.open(tmp_path / "pki", "host-test")
    bundle = write_trust_bundle(tmp_path / "pki" / "bundle.pem", ca, [])
    paths = []
    for index in range(count):
        name = f"trust-{index}"
        tls = ca.issue(tmp_path / name / "tls", name, ["127.0.0.1"])
        config = NodeConfig(
            name=name,
            role="trust",
            organisation=OrganisationInfo(id=f"org-{index}", name=f"Org {index}", ura=f"{index:08d}"),
            seed="host-test",
            host="127.0.0.1",
            public_port=free_loopback_port(),
            internal_port=free_loopback_port(),
            public_url="https://127.0.0.1:1",
            internal_url="https://127.0.0.1:2",
            tls=TlsConfig(cert=tls.cert, key=tls.key, ca=bundle),
            data_dir=tmp_path / name / "data",
            log_file=tmp_path / "logs" / f"{name}.log",
        )
        config.write(tmp_path / f"{name}.json")
        paths.append(tmp_path / f"{name}.json")
    return paths


def _host_file(tmp_path: Path, nodes: list[Path]) -> Path:
    first = NodeConfig.read(nodes[0])
    host = HostConfig(
        name="host-1", nodes=nodes, control_host="127.0.0.1", control_port=free_loopback_port(), tls=first.tls
    )
    host.write(tmp_path / "host.json")
    return tmp_path / "host.json"


def _run_host(host_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nodes", "--host", str(host_file)], capture_output=True, text=True, timeout=60
    )


def test_a_node_that_cannot_bind_stops_the_whole_start_and_says_which(tmp_path: Path) -> None:
    nodes = _configs(tmp_path, 2)
    taken = NodeConfig.read(nodes[1])
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", taken.internal_port))
        squatter.listen()
        finished = _run_host(_host_file(tmp_path, nodes))
    assert finished.returncode == 1
    assert "trust-1 could not start: OSError" in finished.stderr
    assert "Address already in use" in finished.stderr
    assert "trust-0" not in finished.stderr  # its neighbour started (and was stopped again)
    assert "trust-0 serves its public API" in (tmp_path / "logs" / "trust-0.log").read_text(encoding="utf-8")
    assert "could not start" in (tmp_path / "logs" / "trust-1.log").read_text(encoding="utf-8")


def test_every_node_is_checked_before_any_starts(tmp_path: Path) -> None:
    nodes = _configs(tmp_path, 2)
    broken = json.loads(nodes[1].read_text(encoding="utf-8"))
    broken["settings"] = {"fault": "no-such-defect"}
    nodes[1].write_text(json.dumps(broken), encoding="utf-8")
    finished = _run_host(_host_file(tmp_path, nodes))
    assert finished.returncode == 2
    assert "trust-1.json: settings of a trust node: unknown fault 'no-such-defect'" in finished.stderr
    assert not (tmp_path / "logs" / "trust-0.log").exists()  # nothing started


def test_a_host_file_that_is_not_one_is_refused(tmp_path: Path) -> None:
    (tmp_path / "host.json").write_text('{"name": "host-1"}', encoding="utf-8")
    finished = _run_host(tmp_path / "host.json")
    assert finished.returncode == 2
    assert "not a valid host configuration" in finished.stderr
    assert "Traceback" not in finished.stderr


def _client(tmp_path: Path, bundle: Path) -> httpx.Client:
    ca = NetworkCA.open(tmp_path / "pki", "host-test")
    harness = ca.issue(tmp_path / "harness", "harness", ["localhost"])
    context = ssl.create_default_context(cafile=str(bundle))
    context.load_cert_chain(str(harness.cert), str(harness.key))
    return httpx.Client(verify=context, timeout=5.0)


def _wait_healthy(client: httpx.Client, url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if client.get(url).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"{url} did not become healthy")


def test_answers_keep_a_current_date_and_an_idle_connection_does_not_hold_up_a_stop(tmp_path: Path) -> None:
    """One timer keeps every hosted listener's Date header current; on SIGTERM, a connection a
    client keeps idle is dropped at once instead of holding the stop for the graceful time limit."""
    nodes = _configs(tmp_path, 2)
    first = NodeConfig.read(nodes[0])
    health = f"https://127.0.0.1:{first.internal_port}/health"
    host = subprocess.Popen([sys.executable, "-m", "nodes", "--host", str(_host_file(tmp_path, nodes))])
    try:
        with _client(tmp_path, first.tls.ca) as client:
            _wait_healthy(client, health)
            before = parsedate_to_datetime(client.get(health).headers["date"])
            time.sleep(2.2)
            after = parsedate_to_datetime(client.get(health).headers["date"])  # over the same, kept connection
            assert 1 <= (after - before).total_seconds() <= 4
            host.send_signal(signal.SIGTERM)  # the client still holds its connection, idle
            assert host.wait(timeout=30) == 0
    finally:
        if host.poll() is None:
            host.kill()
    log = (tmp_path / "logs" / "trust-0.log").read_text(encoding="utf-8")
    assert "Finished server process" in log
    assert "timeout graceful shutdown exceeded" not in log
