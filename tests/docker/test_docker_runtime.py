"""The docker runtime end to end: the same network and scenarios in containers, an
implementation under test given as an image, a container killed mid-run, faults, teardown by
label, and the compose export."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from testbed.runtime.docker import NODE_LABEL, RUN_LABEL, docker_client
from tests.conftest import FIXTURES, REFERENCE_NETWORK, ROOT
from tests.integration.test_cli import TESTBED, only_run_folder, roots, run

pytestmark = pytest.mark.docker
DOCKER = ["--runtime", "docker"]


def labelled(run_id: str | None = None) -> list[str]:
    """Containers and networks that carry the run label (of one run, or of any)."""
    client = docker_client()
    label = f"{RUN_LABEL}={run_id}" if run_id else RUN_LABEL
    containers = [c.name for c in client.containers.list(all=True, filters={"label": label})]
    networks = [n.name for n in client.networks.list(filters={"label": label})]
    return containers + networks


def test_scenarios_pass_in_containers_and_leave_nothing(tmp_path):
    done = run(tmp_path, "conformance", "scenarios", *DOCKER, *roots(tmp_path), timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    folder = only_run_folder(tmp_path)
    results = json.loads((folder / "results.json").read_text())
    assert results["runtime"] == "docker" and results["summary"]["failed"] == 0
    # Node logs and each container's resource use are in the report.
    assert (folder / "logs" / "hospital-station.log").read_text().strip()
    assert results["node_resources"]["hospital-station"]["memory_mb"] > 0
    assert "Containers" in (folder / "report.html").read_text()
    assert labelled(results["run_id"]) == []


def test_an_implementation_under_test_given_as_an_image_passes_its_profile(tmp_path):
    client = docker_client()
    client.images.get("health-testbed-node:latest").tag("testbed-vendor/consent", "1.0")
    network = REFERENCE_NETWORK.read_text().replace(
        "      - name: consent\n        role: consent\n",
        "      - name: consent\n        role: consent\n        implementation: {image: testbed-vendor/consent:1.0}\n",
    )
    network_file = tmp_path / "with-image.yaml"
    network_file.write_text(network)
    done = run(tmp_path, "conformance", "--profile", "consent", "--network", str(network_file), *DOCKER,
               *roots(tmp_path), timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((only_run_folder(tmp_path) / "results.json").read_text())
    kinds = {i["node"]: i["kind"] for i in results["implementations"]}
    assert kinds["consent"] == "image" and kinds["gp-station"] == "reference"


def test_an_image_node_needs_the_docker_runtime(tmp_path):
    network = REFERENCE_NETWORK.read_text().replace(
        "      - name: consent\n        role: consent\n",
        "      - name: consent\n        role: consent\n        implementation: {image: testbed-vendor/consent:1.0}\n",
    )
    network_file = tmp_path / "with-image.yaml"
    network_file.write_text(network)
    done = run(tmp_path, "conformance", "--profile", "consent", "--network", str(network_file), *roots(tmp_path))
    assert done.returncode == 2 and "given as an image, which needs the docker runtime" in done.stderr
    line = network.splitlines().index("        implementation: {image: testbed-vendor/consent:1.0}") + 1
    assert f"{network_file}:{line}: node 'consent'" in done.stderr  # refused at the line that names the image


def test_a_container_killed_mid_run_is_named_with_its_log(tmp_path):
    process = subprocess.Popen(
        [*TESTBED, "conformance", str(FIXTURES / "kill-window.yaml"), *DOCKER, *roots(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:  # the first read passed: the network is up
        if "kill-window/metadata" in line:
            break
    [station] = docker_client().containers.list(filters={"label": f"{NODE_LABEL}=hospital-station"})
    run_id = station.labels[RUN_LABEL]
    station.kill()
    rest = process.stdout.read()
    process.wait(timeout=120)
    assert process.returncode != 0, rest
    results = json.loads((only_run_folder(tmp_path) / "results.json").read_text())
    check = next(c for s in results["scenarios"] for c in s["checks"] if c["id"] == "metadata-again")
    assert check["outcome"] in ("error", "failed") and "hospital-station" in check["message"]
    assert any(
        "Uvicorn running" in line or "Application startup" in line for line in check["evidence"]["node_log_tail"]
    )
    assert "hospital-station" in (only_run_folder(tmp_path) / "report.html").read_text()
    assert labelled(run_id) == []


def test_faults_and_down_all_after_the_state_is_lost(tmp_path):
    up = run(tmp_path, "up", *DOCKER, *roots(tmp_path), timeout=300)
    assert up.returncode == 0, up.stderr
    [state_dir] = list((tmp_path / "state" / "runs").iterdir())
    run_id = state_dir.name
    try:
        paused = run(tmp_path, "fault", "hospital-station", "pause", *roots(tmp_path))
        assert paused.returncode == 0 and "paused" in paused.stdout, paused.stderr
        status = run(tmp_path, "status", *roots(tmp_path))
        assert status.returncode == 1  # the paused node does not answer its health check
        for operation, expected in (("unpause", "running"), ("disconnect", "running"), ("connect", "running")):
            done = run(tmp_path, "fault", "hospital-station", operation, *roots(tmp_path))
            assert done.returncode == 0 and expected in done.stdout, done.stderr
        assert run(tmp_path, "status", *roots(tmp_path)).returncode == 0
        wrong = run(tmp_path, "fault", "hospital-station", "explode", *roots(tmp_path))
        assert wrong.returncode == 2 and "unknown fault" in wrong.stderr
    finally:
        # As after a crash that also lost the run's state: only the labels are left to go by.
        subprocess.run(["rm", "-rf", str(state_dir)], check=True)
        down = run(tmp_path, "down", "--all", *roots(tmp_path))
    assert down.returncode == 0 and f"left by run {run_id}" in down.stdout
    assert labelled(run_id) == []


def test_the_compose_export_starts_and_the_scenario_replays(tmp_path):
    out = tmp_path / "compose"
    exported = run(tmp_path, "export", "compose", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    project = "compose-reference"
    compose = ["docker-compose", "-p", project]
    subprocess.run([*compose, "up", "-d"], cwd=out, check=True, capture_output=True, timeout=300)
    try:
        deadline = time.monotonic() + 120
        state_file = out / "state" / "runs" / project / "state.json"
        while json.loads(state_file.read_text())["status"] != "up" and time.monotonic() < deadline:
            time.sleep(1)
        done = run(tmp_path, "conformance", str(ROOT / "scenarios" / "bgz-consent.yaml"), "--attach",
                   "--state", str(out / "state"), "--reports", str(tmp_path / "reports"), timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        subprocess.run([*compose, "down"], cwd=out, capture_output=True, timeout=120)
    assert labelled(project) == []


def test_export_refuses_to_overwrite(tmp_path):
    out = tmp_path / "compose"
    assert run(tmp_path, "export", "compose", "--out", str(out)).returncode == 0
    again = run(tmp_path, "export", "compose", "--out", str(out))
    assert again.returncode == 2 and "holds an export already" in again.stderr
    assert Path(out / "docker-compose.yml").exists()
