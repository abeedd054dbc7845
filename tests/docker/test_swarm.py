"""The network on Docker Swarm: the stack export deployed with `docker stack deploy`, a
use-case scenario replayed against it, a load run whose Locust master and workers are
services of the same stack, and `testbed down` removing it all; the swarm runtime doing the
same in one command. On a swarm of this machine alone, which the tests make when the engine
is in none (and leave again afterwards)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from testbed.runtime.docker import RUN_LABEL, docker_client
from testbed.runtime.swarm import STACK_FILE, stack_name
from tests.conftest import ROOT
from tests.integration.test_cli import run

pytestmark = pytest.mark.docker
SCENARIO = str(ROOT / "scenarios" / "bgz-consent.yaml")


def swarm_leftovers(run_id: str) -> list[str]:
    """Everything of a run that a swarm or the engine still holds, by its run label."""
    client = docker_client()
    label = {"label": f"{RUN_LABEL}={run_id}"}
    found = [f"service {s.name}" for s in client.services.list(filters=label)]
    found += [f"config {c.name}" for c in client.configs.list(filters=label)]
    found += [f"secret {s.name}" for s in client.secrets.list(filters=label)]
    found += [f"network {n.name}" for n in client.networks.list(filters=label)]
    found += [f"container {c.name}" for c in client.containers.list(all=True, filters=label)]
    return found


def test_the_swarm_runtime_refuses_an_engine_outside_a_swarm(tmp_path):
    if docker_client().info()["Swarm"]["LocalNodeState"] != "inactive":
        pytest.skip("this engine is in a swarm already")
    done = run(tmp_path, "up", "--runtime", "swarm", "--state", str(tmp_path / "state"),
               "--reports", str(tmp_path / "reports"))  # fmt: skip
    assert done.returncode == 2
    assert "needs this Docker Engine to be a swarm manager" in done.stderr and "docker swarm init" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture(scope="module")
def swarm() -> Iterator[None]:
    """A swarm this engine manages: the one it is in, or one of this machine alone, made for
    these tests and left afterwards with what joining it made (the gateway bridge)."""
    if shutil.which("docker") is None:
        pytest.skip("`docker stack deploy` needs the docker command-line tool, which is not installed")
    client = docker_client()
    swarm = client.info()["Swarm"]
    if swarm["LocalNodeState"] == "active":
        if not swarm.get("ControlAvailable"):
            pytest.skip("this engine is a swarm worker: deploying a stack needs a manager")
        yield
        return
    if swarm["LocalNodeState"] != "inactive":
        pytest.skip(f"this engine's swarm is {swarm['LocalNodeState']}: neither in one nor free to make one")
    bridges = {n.name for n in client.networks.list(names=["docker_gwbridge"])}
    made = subprocess.run(["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"this engine cannot make a swarm: {made.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["docker", "swarm", "leave", "--force"], capture_output=True, timeout=60)
        if not bridges:
            for bridge in client.networks.list(names=["docker_gwbridge"]):
                bridge.remove()
        assert client.info()["Swarm"]["LocalNodeState"] == "inactive"


def wait_up(state_file: Path, bootstrap: str, seconds: float = 300) -> None:
    """Until the bootstrap service inside the stack has recorded the network as up; its log
    when it ended without doing so."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if json.loads(state_file.read_text())["status"] == "up":
            return
        states = {t["Status"]["State"] for t in docker_client().services.get(bootstrap).tasks()}
        if states & {"complete", "failed", "rejected", "shutdown"}:
            log = b"".join(docker_client().services.get(bootstrap).logs(stdout=True, stderr=True, tail=30))
            raise AssertionError(f"the stack's bootstrap ended ({states}) without the network up:\n{log.decode()}")
        time.sleep(2)
    raise AssertionError(f"the stack's bootstrap did not finish within {seconds} s")


def test_the_stack_export_deploys_replays_a_scenario_and_load_and_leaves_nothing(tmp_path, swarm):
    out = tmp_path / "stack"
    exported = run(tmp_path, "export", "stack", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    run_id = "stack-reference"
    stack = stack_name(run_id)
    assert f"docker stack deploy --resolve-image never -c {STACK_FILE} {stack}" in exported.stdout
    roots = ["--state", str(out / "state"), "--reports", str(tmp_path / "reports")]
    try:
        deployed = subprocess.run(
            ["docker", "stack", "deploy", "--resolve-image", "never", "-c", STACK_FILE, stack],
            cwd=out, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert deployed.returncode == 0, deployed.stderr
        wait_up(out / "state" / "runs" / run_id / "state.json", f"{stack}_bootstrap")
        replayed = run(tmp_path, "conformance", SCENARIO, "--attach", *roots, timeout=300)
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        loaded = run(tmp_path, "load", SCENARIO, "--attach", *roots, "--users", "4", "--duration", "15",
                     "--workers", "2", timeout=300)  # fmt: skip
        # 1 would be a latency threshold missed, which says more about this shared machine's load
        # than about the swarm; what must hold is that Locust ran and every request was answered.
        assert loaded.returncode in (0, 1) and "error:" not in loaded.stderr, loaded.stdout + loaded.stderr
        [load_run] = (tmp_path / "reports").glob("*-load-*")
        performance = json.loads((load_run / "results.json").read_text())["performance"]
        assert performance["workers"] == 2
        assert performance["overall"]["requests"] > 0 and performance["overall"]["failures"] == 0
        assert len(performance["steps"]) > 5  # users went through the scenario, step after step
        # Master and workers ran as services of the network's stack, on its network.
        job = yaml.safe_load((load_run / "load" / "job-stack.yml").read_text())
        assert job["services"]["locust-worker"]["deploy"]["replicas"] == 2
        assert job["networks"]["testbed"] == {"external": True, "name": f"testbed-{run_id}"}
        assert (load_run / "load" / "locust_stats.csv").exists()
        assert not [x for x in swarm_leftovers(run_id) if "locust" in x]  # the job's services went with it
    finally:
        down = run(tmp_path, "down", *roots, timeout=300)
    assert down.returncode == 0, down.stderr
    assert f"stopped run {run_id}" in down.stdout
    assert swarm_leftovers(run_id) == []
    assert (out / "reports" / run_id / "logs" / "consent.log").read_text().strip()  # each node's log kept


def test_the_swarm_runtime_runs_a_scenario_in_one_command_and_leaves_nothing(tmp_path, swarm):
    roots = ["--state", str(tmp_path / "state"), "--reports", str(tmp_path / "reports")]
    done = run(tmp_path, "conformance", SCENARIO, "--runtime", "swarm", *roots, timeout=400)
    assert done.returncode == 0, done.stdout + done.stderr
    [report] = (tmp_path / "reports").iterdir()
    results = json.loads((report / "results.json").read_text())
    assert results["runtime"] == "swarm" and results["summary"]["failed"] == 0
    assert swarm_leftovers(results["run_id"]) == []
    assert not list((tmp_path / "state" / "runs").iterdir())
