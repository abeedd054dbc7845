"""The load driver's own cost, as ratios measured in one run on one machine:

- the harness's driver (a scenario step replayed by the engine inside Locust) against raw
  Locust (a bare FastHttpUser) on the same raw endpoint;
- raw Locust against wrk, the machine's ceiling for that endpoint;
- the harness's driver with a master and two workers against a master and one worker;
- and how long the reference network takes from start to healthy and bootstrapped.

The raw endpoint runs on the server core; Locust's processes are left to the scheduler, so
that a second worker has somewhere to run."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from testbed.bench import BenchError
from testbed.bench.drivers import parse_wrk, run_pinned
from testbed.bench.servers import raw_endpoint
from testbed.load.plan import PLAN_VARIABLE, LoadPlan
from testbed.load.runner import locust_commands
from testbed.load.settings import LoadSettings
from testbed.network import RunningNetwork

HARNESS_LOCUSTFILE = Path(__file__).resolve().parent.parent / "load" / "locustfile.py"
RAW_LOCUSTFILE = Path(__file__).with_name("raw_locustfile.py")
TARGETS = {"harness_vs_raw_locust": 0.8, "two_workers_vs_one": 1.6}

NETWORK = """\
name: bench-raw
seed: bench
credential_issuer: bench
organisations:
  - id: bench
    name: Bench
    ura: "99999999"
    nodes:
      - name: raw
        role: trust
        implementation: {{url: "{url}"}}
"""
SCENARIO = """\
name: bench-ping
network: network.yaml
steps:
  - id: ping
    title: The raw endpoint answers
    requirements: [LOAD-RUN-01]
    request: {node: raw, path: /}
    expect:
      status: 200
      json:
        - {path: $.ok, equals: true}
"""


def measure(running: RunningNetwork, scratch: Path, seconds: float, users: int) -> dict[str, Any]:
    with raw_endpoint(running, scratch) as url:
        ca = running.state.trust_bundle

        def harness(label: str, workers: int) -> dict[str, Any]:
            plan = _harness_plan(running, scratch, url, users, seconds, workers)
            return _locust(HARNESS_LOCUSTFILE, {PLAN_VARIABLE: str(plan)}, scratch, label, users, seconds, workers)

        raw_env = {"TESTBED_BENCH_URL": url, "TESTBED_BENCH_CA": ca}
        return {
            "wrk": _wrk(url, seconds, users),
            "raw Locust": _locust(RAW_LOCUSTFILE, raw_env, scratch, "raw", users, seconds, workers=0),
            "harness driver": harness("harness", 0),
            "harness driver, master + 1 worker": harness("one-worker", 1),
            "harness driver, master + 2 workers": harness("two-workers", 2),
        }


def ratios(measured: dict[str, Any]) -> dict[str, Any]:
    def rate(label: str) -> float:
        return float(measured[label]["per_second"]) or float("nan")

    found = {
        "harness_vs_raw_locust": round(rate("harness driver") / rate("raw Locust"), 3),
        "raw_locust_vs_wrk": round(rate("raw Locust") / rate("wrk"), 3),
        "two_workers_vs_one": round(
            rate("harness driver, master + 2 workers") / rate("harness driver, master + 1 worker"), 3
        ),
    }
    return {
        "ratios": found,
        "targets": TARGETS,
        "targets_met": {name: found[name] >= limit for name, limit in TARGETS.items()},
    }


def _harness_plan(running: RunningNetwork, scratch: Path, url: str, users: int, seconds: float, workers: int) -> Path:
    folder = scratch / "load-driver"
    folder.mkdir(exist_ok=True)
    (folder / "network.yaml").write_text(NETWORK.format(url=url), encoding="utf-8")
    (folder / "scenario.yaml").write_text(SCENARIO, encoding="utf-8")
    state = running.state
    plan = LoadPlan(
        scenario=folder / "scenario.yaml",
        network=folder / "network.yaml",
        run_id="bench",
        context={"nodes": {"raw": {"name": "raw", "url": url, "internal_url": url}}, "orgs": {}, "network": {}},
        ca_bundle=Path(state.trust_bundle),
        client_cert=Path(state.client_cert) if state.client_cert else None,
        client_key=Path(state.client_key) if state.client_key else None,
        settings=LoadSettings(users=users, spawn_rate=users, duration=seconds),
        workers=workers,  # each worker takes its share of user indexes
    )
    path = folder / f"plan-{workers}.json"
    path.write_text(plan.model_dump_json(), encoding="utf-8")
    return path


def _locust(
    locustfile: Path, env: dict[str, str], scratch: Path, label: str, users: int, seconds: float, workers: int
) -> dict[str, Any]:
    prefix = scratch / f"locust-{label}"
    commands = locust_commands(locustfile, prefix, users, users, seconds, workers, extra=["--stop-timeout", "2"])
    environment = {**os.environ, **env}
    processes = [
        subprocess.Popen(c, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for c in commands
    ]
    try:
        _, errors = processes[0].communicate(timeout=seconds + 90)
    except subprocess.TimeoutExpired:
        raise BenchError(f"Locust ({label}) did not finish in {seconds + 90:.0f} s") from None
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
            process.wait(timeout=15)
    return _read_stats(Path(f"{prefix}_stats.csv"), label, errors.decode(errors="replace") if errors else "")


def _read_stats(path: Path, label: str, said: str) -> dict[str, Any]:
    if not path.exists():
        raise BenchError(f"Locust ({label}) wrote no statistics: {said[-1500:]}")
    with path.open(encoding="utf-8", newline="") as handle:
        overall = next((row for row in csv.DictReader(handle) if row["Name"] == "Aggregated"), None)
    if overall is None or not int(overall["Request Count"] or 0):
        raise BenchError(f"Locust ({label}) made no request: {said[-1500:]}")
    requests, failures = int(overall["Request Count"]), int(overall["Failure Count"])
    return {
        "driver": "locust",
        "requests": requests,
        "per_second": round(float(overall["Requests/s"]) * (requests - failures) / requests, 1),
        "statuses": {"2xx": requests - failures, "other": failures},
        "p50_ms": float(overall["50%"]),
        "p99_ms": float(overall["99%"]),
    }


def _wrk(url: str, seconds: float, connections: int) -> dict[str, Any]:
    if not shutil.which("wrk"):
        raise BenchError("wrk is needed for the load driver's ceiling: `make wrk` installs it")
    command = ["wrk", "--latency", "-t", "1", "-c", str(connections), "-d", f"{max(1, round(seconds))}s", f"{url}/"]
    return parse_wrk(run_pinned(command, seconds))
