"""An acknowledged consent change survives a consent service that is killed outright."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from protocols.nodeconfig import NodeConfig, OrganisationInfo, TlsConfig
from testbed.pki import NetworkCA, TlsFiles

pytestmark = pytest.mark.integration
BSN = "160726189"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(config_path: Path, log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "nodes", "--config", str(config_path)], stdout=out, stderr=out)


def wait_healthy(client: httpx.Client, url: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if client.get(f"{url}/health").status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


def consent_config(
    *, name: str, seed: str, tls: TlsFiles, data_dir: Path, settings: dict[str, Any] | None = None
) -> NodeConfig:
    """A consent node of its own on loopback, on free ports, outside any network."""
    public, internal = free_port(), free_port()
    return NodeConfig(
        name=name,
        role="consent",
        organisation=OrganisationInfo(id="mitz", name="Consent", ura="90000004"),
        seed=seed,
        host="127.0.0.1",
        public_port=public,
        internal_port=internal,
        public_url=f"https://127.0.0.1:{public}",
        internal_url=f"https://127.0.0.1:{internal}",
        tls=TlsConfig(cert=tls.cert, key=tls.key, ca=tls.ca),
        data_dir=data_dir,
        parent_pid=os.getpid(),
        settings=settings or {},
    )


def test_a_registered_consent_survives_sigkill(tmp_path: Path):
    ca = NetworkCA.create(tmp_path / "pki", "durability")
    tls = ca.issue(tmp_path / "tls", "consent", ["127.0.0.1"])
    config = consent_config(name="consent", seed="durability", tls=tls, data_dir=tmp_path / "data")
    config_path = tmp_path / "node.json"
    config.write(config_path)
    context = ssl.create_default_context(cafile=str(tls.ca))
    context.load_cert_chain(str(tls.cert), str(tls.key))
    question = {"bsn": BSN, "data_holder": "90000002", "requester": "90000003", "data_category": "medical"}
    with httpx.Client(verify=context, timeout=5) as client:
        node = start(config_path, tmp_path / "node.log")
        try:
            wait_healthy(client, config.internal_url)
            registered = client.post(f"{config.internal_url}/internal/consent/v1/consents", json=question)
            assert registered.status_code == 201
            node.send_signal(signal.SIGKILL)  # no chance to flush anything after the acknowledgement
            node.wait(timeout=10)
            node = start(config_path, tmp_path / "node.log")
            wait_healthy(client, config.internal_url)
            answer = client.post(f"{config.public_url}/consent/v1/decision", json=question).json()
            assert answer == {
                "decision": "Permit",
                "reason": "the citizen consented",
                "consent_id": registered.json()["id"],
            }
        finally:
            node.kill()
            node.wait(timeout=10)
