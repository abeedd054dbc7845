"""The load driver's own cost, as ratios measured in one run on one machine, against the
static endpoint (nginx, so that the drivers, not the endpoint, are what is measured):

- the harness's driver (a scenario step replayed by the engine inside Locust) against raw
  Locust (a bare FastHttpUser). The two run side by side on the driver core, each with 32
  users, and each is measured in requests per second of its own CPU time over a steady
  window: both see the machine in the same state at the same moment, which two runs one
  after the other on a shared machine do not (their rates differ by a quarter from run to
  run). Given a core of its own, a driver's requests per second are this figure;
- raw Locust alone against wrk on the same endpoint, the machine's ceiling;
- the harness's driver with a master and two workers against a master and one worker;

and, reported by the caller, how long the reference network takes to be up and bootstrapped.
Side-by-side pairs and worker runs are repeated and their median taken."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from testbed.bench import METER_FOLDER_VARIABLE, BenchError
from testbed.bench.drivers import parse_wrk, run_pinned
from testbed.bench.servers import DRIVER_CORE, Endpoint, on_core, static_endpoint
from testbed.load.plan import PLAN_VARIABLE, LoadPlan
from testbed.load.runner import locust_commands
from testbed.network import RunningNetwork
from testbed.scenario.load_settings import LoadSettings

HARNESS_LOCUSTFILE = Path(__file__).resolve().parent.parent / "load" / "locustfile.py"
RAW_LOCUSTFILE = Path(__file__).with_name("raw_locustfile.py")
METER = Path(__file__).with_name("meter.py")
TARGETS = {"harness_vs_raw_locust": 0.8, "two_workers_vs_one": 1.6}
PAIR_ROUNDS = 5  # side by side, both see the same moments: their ratio varies little
WORKER_ROUNDS = 5  # one after the other: each round sees the machine at another speed
WARMUP_SECONDS = 2.0  # after the first answer: users spawned, connections made, caches filled

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
    title: The endpoint answers
    requirements: [LOAD-RUN-01]
    request: {node: raw, path: /}
    expect:
      status: 200
      json:
        - {path: $.ok, equals: true}
"""


@dataclass(frozen=True)
class Window:
    """What one Locust process did over its steady window (in which none may fail)."""

    requests: int
    seconds: float
    cpu_seconds: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def per_cpu_second(self) -> float:
        return self.requests / self.cpu_seconds if self.cpu_seconds else 0.0


@dataclass(frozen=True)
class Driver:
    label: str
    locustfile: Path
    env: dict[str, str]


def measure(running: RunningNetwork, scratch: Path, *, seconds: float, users: int) -> dict[str, Any]:
    with static_endpoint(running, scratch) as endpoint:
        runs = _Runs(running, scratch, endpoint, users, seconds)
        tls = {"TESTBED_BENCH_CA": running.state.trust_bundle}
        raw = Driver("raw Locust", RAW_LOCUSTFILE, {"TESTBED_BENCH_URL": endpoint.url, **tls})
        harness = Driver("harness driver", HARNESS_LOCUSTFILE, {})
        alone = {driver.label: runs.alone(driver) for driver in (raw, harness)}
        pairs = [runs.side_by_side(raw, harness) for _ in range(PAIR_ROUNDS)]
        workers = [runs.with_workers(harness) for _ in range(WORKER_ROUNDS)]
        return {
            "endpoint": endpoint.name,
            "users": users,
            "window_seconds": seconds,
            "wrk": _wrk(endpoint.url, seconds, users),
            "alone": {label: _figures(window) for label, window in alone.items()},
            "side_by_side": pairs,
            "workers": workers,
        }


def ratios(measured: dict[str, Any]) -> dict[str, Any]:
    """The bench's ratios: medians over the rounds where rounds were run."""
    found = {
        "harness_vs_raw_locust": round(statistics.median(pair["ratio"] for pair in measured["side_by_side"]), 3),
        "raw_locust_vs_wrk": round(measured["alone"]["raw Locust"]["per_second"] / measured["wrk"]["per_second"], 3),
        "two_workers_vs_one": round(statistics.median(run["ratio"] for run in measured["workers"]), 3),
    }
    return {
        "ratios": found,
        "targets": TARGETS,
        "targets_met": {name: found[name] >= limit for name, limit in TARGETS.items()},
    }


class _Runs:
    """Locust runs against the endpoint, each in its own processes, metered by meter.py."""

    def __init__(self, running: RunningNetwork, scratch: Path, endpoint: Endpoint, users: int, seconds: float):
        self.running, self.scratch, self.endpoint = running, scratch, endpoint
        self.users, self.seconds = users, seconds
        self.count = 0
        self.plans: dict[int, Path] = {}  # workers -> the harness driver's plan (raw Locust reads none)

    def alone(self, driver: Driver) -> Window:
        [window] = self._run([(driver, 0)], pinned=True)[driver.label]
        return window

    def side_by_side(self, raw: Driver, harness: Driver) -> dict[str, Any]:
        """Both on the driver core at once; each measured per second of its own CPU time."""
        found = self._run([(raw, 0), (harness, 0)], pinned=True)
        [raw_window], [harness_window] = found[raw.label], found[harness.label]
        return {
            raw.label: round(raw_window.per_cpu_second, 1),
            harness.label: round(harness_window.per_cpu_second, 1),
            "ratio": round(harness_window.per_cpu_second / raw_window.per_cpu_second, 3),
        }

    def with_workers(self, harness: Driver) -> dict[str, Any]:
        """A master and one worker, then a master and two, left to the scheduler (a second
        worker needs the second core); the workers' rates summed, and the cores they got."""
        one = self._run([(harness, 1)], pinned=False)[harness.label]
        two = self._run([(harness, 2)], pinned=False)[harness.label]
        rate_one, rate_two = (sum(w.per_second for w in windows) for windows in (one, two))
        cores_one, cores_two = (sum(w.cpu_seconds / w.seconds for w in windows) for windows in (one, two))
        return {
            "one worker": round(rate_one, 1),
            "two workers": round(rate_two, 1),
            "ratio": round(rate_two / rate_one, 3),
            "cores": {"one worker": round(cores_one, 2), "two workers": round(cores_two, 2)},
        }

    def _run(self, drivers: list[tuple[Driver, int]], pinned: bool) -> dict[str, list[Window]]:
        """Start every driver's processes at once, wait for them, and read their meters."""
        started: list[tuple[Driver, Path, list[subprocess.Popen[bytes]]]] = []
        logs: list[IO[bytes]] = []
        try:
            for driver, workers in drivers:
                self.count += 1
                folder = self.scratch / f"load-{self.count}"
                folder.mkdir()
                env = {**os.environ, **driver.env, METER_FOLDER_VARIABLE: str(folder)}
                env[PLAN_VARIABLE] = str(self._harness_plan(workers))
                commands = locust_commands(
                    [driver.locustfile, METER],
                    folder / "locust",
                    self.users,
                    spawn_rate=self.users,
                    seconds=self.seconds + WARMUP_SECONDS + 3,  # + spawning and first connections
                    workers=workers,
                    extra=["--stop-timeout", "2"],
                )
                processes = []
                for n, command in enumerate(commands):
                    logs.append((folder / f"stderr-{n}.txt").open("wb"))
                    pin = on_core(DRIVER_CORE) if pinned else None
                    processes.append(
                        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=logs[-1], preexec_fn=pin)
                    )
                started.append((driver, folder, processes))
            for driver, _, processes in started:
                try:
                    processes[0].wait(timeout=self.seconds + 90)
                except subprocess.TimeoutExpired:
                    raise BenchError(f"Locust ({driver.label}) did not finish in {self.seconds + 90:.0f} s") from None
        finally:
            for _, _, processes in started:
                for process in processes:
                    if process.poll() is None:
                        process.terminate()
                    process.wait(timeout=15)
            for log in logs:
                log.close()
        return {driver.label: _windows(folder, driver.label) for driver, folder, _ in started}

    def _harness_plan(self, workers: int) -> Path:
        """The harness driver's plan: the one-step scenario against the endpoint, written once
        per number of workers (which share out the users' indexes by it)."""
        if workers in self.plans:
            return self.plans[workers]
        folder = self.scratch / "harness-plan"
        url = self.endpoint.url
        if not self.plans:
            folder.mkdir()
            (folder / "network.yaml").write_text(NETWORK.format(url=url), encoding="utf-8")
            (folder / "scenario.yaml").write_text(SCENARIO, encoding="utf-8")
        plan = LoadPlan(
            scenario=folder / "scenario.yaml",
            network=folder / "network.yaml",
            run_id="bench",
            context={"nodes": {"raw": {"name": "raw", "url": url, "internal_url": url}}, "orgs": {}, "network": {}},
            ca_bundle=Path(self.running.state.trust_bundle),
            settings=LoadSettings(users=self.users, spawn_rate=self.users, duration=self.seconds),
            workers=workers,
        )
        path = self.plans[workers] = folder / f"plan-{workers}.json"
        path.write_text(plan.model_dump_json(), encoding="utf-8")
        return path


def _windows(folder: Path, label: str) -> list[Window]:
    """One window per process that sent requests (a master sends none)."""
    files = sorted(folder.glob("*.jsonl"))
    if not files:
        said = " ".join(p.read_text(errors="replace")[-1500:] for p in folder.glob("stderr-*.txt"))
        raise BenchError(f"Locust ({label}) measured nothing: {said.strip() or 'no output'}")
    return [read_window(path, label) for path in files]


def read_window(path: Path, label: str) -> Window:
    """The steady window of one meter file: from WARMUP_SECONDS after the first answer to the
    last sample."""
    samples = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    answered = [s for s in samples if s["ok"] or s["failed"]]
    if not answered:
        raise BenchError(f"Locust ({label}) made no request")
    steady = [s for s in samples if s["t"] >= answered[0]["t"] + WARMUP_SECONDS]
    if len(steady) < 3:
        raise BenchError(f"Locust ({label}) ran too short a time for a steady window ({path})")
    first, last = steady[0], steady[-1]
    failed = last["failed"] - first["failed"]
    if failed:
        raise BenchError(f"Locust ({label}): {failed} requests failed; the endpoint must answer every one")
    return Window(
        requests=last["ok"] - first["ok"],
        seconds=last["t"] - first["t"],
        cpu_seconds=last["cpu"] - first["cpu"],
    )


def _figures(window: Window) -> dict[str, Any]:
    return {
        "driver": "locust",
        "per_second": round(window.per_second, 1),
        "per_cpu_second": round(window.per_cpu_second, 1),
        "requests": window.requests,
        "seconds": round(window.seconds, 2),
    }


def _wrk(url: str, seconds: float, connections: int) -> dict[str, Any]:
    if not shutil.which("wrk"):
        raise BenchError("wrk is needed for the load driver's ceiling: `make wrk` installs it")
    command = ["wrk", "--latency", "-t", "1", "-c", str(connections), "-d", f"{max(1, round(seconds))}s", f"{url}/"]
    return parse_wrk(run_pinned(command, seconds))
