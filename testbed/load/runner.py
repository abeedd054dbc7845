"""A load run, front to back: check the scenario, its `load:` settings and its fault
schedule, start (or attach to) the network, run Locust in its own processes (one, or a master
and workers) while the schedule's faults are done and undone, show progress while it runs,
then fold Locust's figures, the fault windows and the thresholds into the results model.

Locust is never imported here: it patches the standard library with gevent on import."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePath, PurePosixPath

import psutil
from pydantic import ValidationError

from testbed.conformance.catalogue import Catalogue
from testbed.conformance.runner import base_results, run_on_network
from testbed.errors import ConfigError, TestbedError
from testbed.faults.nodes import faults_undone
from testbed.faults.schedule import (
    FaultScheduler,
    PlannedFault,
    parse_fault_option,
    plan_schedule,
    schedule_sources,
    validation_problems,
)
from testbed.load import perf
from testbed.load.plan import PLAN_VARIABLE, STARTED_FILE, LoadPlan
from testbed.load.records import read_records, split
from testbed.network import NetworkOptions, RunningNetwork
from testbed.report.model import (
    CheckResult,
    FaultRun,
    FaultWindow,
    NodeSample,
    Outcome,
    Performance,
    RunResults,
    ScenarioResult,
)
from testbed.runtime.docker import container_pid
from testbed.runtime.plan import free_loopback_port
from testbed.runtime.state import RunState
from testbed.scenario.load_settings import LoadSettings, ScheduledFault
from testbed.scenario.loader import LoadedScenario, check_scenario, fault_step_problems, load_scenario
from testbed.scenario.spread import Spread
from testbed.scenario.thresholds import FAULT_SCOPES, Threshold
from testbed.topology import load_network

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
SLO_REQUIREMENT = "LOAD-SLO-01"
RAN_REQUIREMENT = "LOAD-RUN-01"
GRACE_SECONDS = 60  # how long past its duration a Locust run may take to start up and stop
# Locust's --run-time, when the locustfile ends the load itself (LoadPlan.stop_after), only
# stands behind it: the duration and this much for Locust to start its users.
STARTUP_SECONDS = 60
# Locust in the node image (swarm runtime), with the locustfile where the image installed it.
IN_IMAGE_LOCUST = [
    "sh", "-c",
    'exec python -m locust -f "$(python -c "import testbed.load as p; print(p.__path__[0])")/locustfile.py" "$@"',
    "locust",
]  # fmt: skip
LOCUST_PORT = 5557  # the master's, inside the run's network


@dataclass
class Overrides:
    """Command-line values that replace the scenario's `load:` settings."""

    users: int | None = None
    spawn_rate: float | None = None
    duration: float | None = None
    thresholds: list[str] = field(default_factory=list)  # "p(95)<200" or "step-id:p(95)<200"
    spread: list[str] | None = None  # actors each flow draws from the whole network (None: the scenario's)
    faults: list[str] | None = None  # `--fault` values, replacing the scenario's schedule (None: the scenario's)


@dataclass(kw_only=True)
class LoadOptions(NetworkOptions):
    scenario_path: Path
    overrides: Overrides = field(default_factory=Overrides)
    workers: int = 0
    web_port: int | None = None  # show Locust's web UI on 127.0.0.1 at this port while it runs


def settings_for(loaded: LoadedScenario, overrides: Overrides) -> LoadSettings:
    """The scenario's `load:` block (or the defaults) with the command line's values on top."""
    base = loaded.scenario.load or LoadSettings()
    values = base.model_dump()
    if overrides.users is not None:
        values.update(users=overrides.users, stages=[])
    if overrides.spawn_rate is not None:
        values["spawn_rate"] = overrides.spawn_rate
    if overrides.duration is not None:
        values.update(duration=overrides.duration, stages=[])
    if overrides.spread is not None:
        values["spread"] = overrides.spread
    if overrides.faults is not None:
        values["faults"] = [_fault_option(text).model_dump(by_alias=True) for text in overrides.faults]
    thresholds: dict[str, list[str]] = {k: list(v) for k, v in values["thresholds"].items()}
    for given in overrides.thresholds:
        scope, expression = split_threshold_option(given)
        thresholds.setdefault(scope, []).append(expression)
    values["thresholds"] = thresholds
    try:
        return LoadSettings.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(
            f"{loaded.path}: load settings, with the command line's: {validation_problems(exc)}"
        ) from None


def _fault_option(text: str) -> ScheduledFault:
    try:
        return parse_fault_option(text)
    except ValueError as exc:
        raise ConfigError(f"--fault {text!r}: {exc}") from None


def run_load(options: LoadOptions) -> RunResults:
    catalogue = Catalogue.load()
    scenario = load_scenario(options.scenario_path)
    loaded_network = load_network(options.network_path or scenario.network_path)
    check_scenario(scenario, loaded_network.network, catalogue)
    steps = fault_step_problems(scenario, FAULT_STEPS_UNDER_LOAD)
    if steps:
        raise ConfigError("\n".join(steps))
    settings = settings_for(scenario, options.overrides)
    unknown = (
        {scope for scope, _ in settings.parsed_thresholds()}
        - {"overall", *FAULT_SCOPES}
        - {s.id for s in scenario.scenario.steps}
    )
    if unknown:
        raise ConfigError(f"thresholds name steps that {scenario.path} does not have: {', '.join(sorted(unknown))}")
    Spread(scenario.scenario, loaded_network.network, settings.spread)  # who can play each spread actor, checked now
    planned = plan_schedule(
        scenario,
        loaded_network.network,
        settings,
        sources=schedule_sources(scenario, options.overrides.faults),
        runtime=_runtime_of(options),
    )
    results = base_results(options.folder.run_id, options.runtime, loaded_network, scenarios=[scenario])
    results.kind = "load"
    return run_on_network(
        options,
        loaded_network,
        results,
        catalogue=catalogue,
        work=lambda running: _drive(options, scenario, settings, running, results, loaded_network.path, planned),
    )


FAULT_STEPS_UNDER_LOAD = (
    "a load run does not do faults as steps (every simulated user would do them): under load, faults come from "
    "the run's fault schedule, `load: faults:` in the scenario or --fault"
)


def _runtime_of(options: LoadOptions) -> str:
    """The runtime the run's nodes are on: an attached network's own, else the one asked for."""
    if options.attach is None:
        return options.runtime
    try:
        return options.attach.load().runtime
    except TestbedError:
        return options.runtime  # attaching fails in its turn, and says why


def _drive(
    options: LoadOptions,
    scenario: LoadedScenario,
    settings: LoadSettings,
    running: RunningNetwork,
    results: RunResults,
    network_path: Path,
    planned: list[PlannedFault],
) -> None:
    state = running.state
    load_dir = options.folder.report_dir / "load"
    load_dir.mkdir(parents=True, exist_ok=True)
    plan = LoadPlan(
        scenario=scenario.path.resolve(),
        network=network_path.resolve(),
        run_id=options.folder.run_id,
        context=state.context,
        ca_bundle=Path(state.trust_bundle).resolve(),
        client_cert=Path(state.client_cert).resolve() if state.client_cert else None,
        client_key=Path(state.client_key).resolve() if state.client_key else None,
        settings=settings,
        workers=options.workers,
        reach_at={n.plan.host: n.plan.reach_at for n in state.nodes if n.plan.reach_at},
        record_to=load_dir.resolve(),
        record_requests=bool(planned),
        # With its web UI Locust ends when its UI does: --run-time ends that run.
        stop_after=settings.duration if options.web_port is None else None,
    )
    plan_path = load_dir / "plan.json"
    plan_path.write_text(plan.model_dump_json(indent=2), encoding="utf-8")
    started = datetime.now(UTC)
    # A node's process: its own (process runtime) or its container's main one (docker; swarm:
    # those on this machine), all visible from here, so CPU and memory are sampled the same way.
    nodes = processes_to_watch(state)
    if state.runtime == "swarm":  # Locust runs inside the stack, beside the nodes
        samples = _run_locust_in_stack(plan, load_dir, settings, options=options, state=state, nodes=nodes)
        windows: list[FaultWindow] = []
    else:
        with _schedule(running, planned, load_dir, options) as scheduler:
            samples = _run_locust(
                plan_path,
                load_dir,
                settings,
                options,
                nodes,
                stop_after=plan.stop_after,
                scheduler=scheduler,
                state=state,
            )
        windows = scheduler.windows if scheduler is not None else []
    order = [step.id for step in scenario.scenario.steps]
    performance = _performance(load_dir, settings, options.workers, samples, order=order, windows=windows)
    results.performance = performance
    results.scenarios.append(_as_checks(scenario, performance, started))
    _carried_out(windows)


def _carried_out(windows: list[FaultWindow]) -> None:
    """A fault of the schedule not done or not undone makes the run an error: its figures
    stand in the report, but they are not those of the run that was asked for."""
    failed = [f"fault {w.entry} ({w.fault}, {w.given}) {w.error}" for w in windows if w.error]
    if failed:
        raise TestbedError("the fault schedule was not carried out as given:\n  " + "\n  ".join(failed))


@contextlib.contextmanager
def _schedule(
    running: RunningNetwork, planned: list[PlannedFault], load_dir: Path, options: LoadOptions
) -> Iterator[FaultScheduler | None]:
    """The fault schedule carried out while the block runs; leaving it (the run's end, an error,
    Ctrl-C), every fault still in force is undone: the schedule's own, then anything else."""
    if not planned:
        yield None
        return
    with (
        faults_undone(running, progress=options.on_progress) as faults,
        FaultScheduler(
            planned, faults.step, began=lambda: load_began(load_dir), progress=options.on_progress
        ) as scheduler,
    ):
        yield scheduler


def load_began(load_dir: Path) -> float | None:
    """When the load began (seconds since the epoch), as Locust marked it; None before that."""
    try:
        return float((load_dir / STARTED_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def processes_to_watch(state: RunState) -> dict[str, int]:
    """What the report samples CPU and memory of: each node's process, by the node's name; a
    process that hosts several nodes once, named after the nodes it hosts."""
    by_pid: dict[int, list[str]] = {}
    for node in state.nodes:
        pid = node.pid or (node.container and container_pid(node.container))
        if pid:
            by_pid.setdefault(pid, []).append(node.plan.name)
    return {_process_label(names): pid for pid, names in by_pid.items()}


def _process_label(names: list[str]) -> str:
    if len(names) == 1:
        return names[0]
    return f"{names[0]} and {len(names) - 1} more nodes in its process"


def _run_locust(
    plan_path: Path,
    load_dir: Path,
    settings: LoadSettings,
    options: LoadOptions,
    nodes: dict[str, int],
    *,
    stop_after: float | None = None,
    scheduler: FaultScheduler | None = None,
    state: RunState | None = None,
) -> dict[str, list[NodeSample]]:
    """Run Locust to the end, reporting progress and sampling the nodes once a second (a node
    the fault schedule started again is watched in its new process). `stop_after`: the plan's;
    Locust's --run-time then only stands behind the locustfile's own end of the load."""
    progress = options.on_progress
    environment = {**os.environ, PLAN_VARIABLE: str(plan_path), "PYTHONUNBUFFERED": "1"}
    run_time = settings.duration + (STARTUP_SECONDS if stop_after is not None else 0)
    commands = _commands(load_dir / "locust", settings, options.workers, options.web_port, seconds=run_time)
    if options.web_port:
        progress(f"Locust's web UI: http://127.0.0.1:{options.web_port}/ (while the run lasts)")
    processes = [
        subprocess.Popen(
            command,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=(load_dir / f"locust-{index}.log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the harness, which stops them
        )
        for index, command in enumerate(commands)
    ]
    master = processes[0]
    monitor = _Monitor(nodes, load_dir / "locust_stats_history.csv", progress)
    began, deadline = time.monotonic(), time.monotonic() + run_time + GRACE_SECONDS
    try:
        while master.poll() is None:
            if time.monotonic() > deadline:
                raise TestbedError(f"Locust did not finish within {run_time + GRACE_SECONDS:.0f} s")
            time.sleep(1.0)
            if scheduler is not None and state is not None and scheduler.changed.is_set():
                scheduler.changed.clear()
                monitor.watch(processes_to_watch(state))
            monitor(time.monotonic() - began)
    finally:
        _stop(processes)
    _check_exit(master.returncode, load_dir)
    return monitor.samples


class _Monitor:
    """Called once a second while Locust runs: samples the CPU and memory of each node whose
    process this machine sees, and shows Locust's progress whenever its history has news."""

    def __init__(self, nodes: dict[str, int], history: Path, progress: Callable[[str], None]):
        self.watched = {name: psutil.Process(pid) for name, pid in nodes.items() if psutil.pid_exists(pid)}
        self.samples: dict[str, list[NodeSample]] = {name: [] for name in self.watched}
        self.history = history
        self.progress = progress
        self.shown = ""

    def watch(self, nodes: dict[str, int]) -> None:
        """Watch these processes from now on: a node started again runs in a new one. Its
        samples so far stay, under its name."""
        for name, pid in nodes.items():
            known = self.watched.get(name)
            if (known is None or known.pid != pid) and psutil.pid_exists(pid):
                self.watched[name] = psutil.Process(pid)
                self.samples.setdefault(name, [])

    def __call__(self, elapsed: float) -> None:
        _sample(self.watched, self.samples, elapsed)
        line = _progress_line(self.history)
        if line and line != self.shown:  # Locust writes its history every few seconds
            self.progress(line)
            self.shown = line


def _check_exit(code: int | None, load_dir: Path) -> None:
    if code not in (0, 1):  # 1: some requests failed, which the figures show
        tail = (load_dir / "locust-0.log").read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        raise TestbedError(f"Locust ended with exit code {code}:\n" + "\n".join(tail))


def _run_locust_in_stack(
    plan: LoadPlan,
    load_dir: Path,
    settings: LoadSettings,
    *,
    options: LoadOptions,
    state: RunState,
    nodes: dict[str, int],
) -> dict[str, list[NodeSample]]:
    """Swarm runtime: Locust's master (on this machine) and workers run as services of the
    network's stack, inside its network, where node names resolve. They get the same plan,
    with the files it names handed to them as swarm configs (the harness's key as a secret)."""
    from testbed.runtime.swarm import LOAD_LABEL, JobService, StackJob, run_job

    if options.web_port:
        raise ConfigError("--web: on the swarm runtime Locust's master runs inside the stack; leave --web out")
    inside = PurePosixPath("/load")
    where = {
        "scenario": inside / "scenario" / plan.scenario.name,
        "network": inside / "network" / plan.network.name,
        "ca_bundle": inside / "ca.pem",
        **({"client_cert": inside / "client-cert.pem"} if plan.client_cert else {}),
        **({"client_key": inside / "client-key.pem"} if plan.client_key else {}),
    }
    # Nothing is recorded request by request there (the stack has no faults to tell apart), and
    # --run-time ends the load.
    nothing_here = {"record_to": None, "record_requests": False, "stop_after": None}
    in_stack = plan.model_copy(update={**{k: Path(v) for k, v in where.items()}, "reach_at": {}, **nothing_here})
    (load_dir / "plan-stack.json").write_text(in_stack.model_dump_json(indent=2), encoding="utf-8")
    files = {where[k]: getattr(plan, k) for k in where if k != "client_key"}
    files[inside / "plan.json"] = load_dir / "plan-stack.json"
    master, *workers = _commands(PurePosixPath("/results/locust"), settings, options.workers, None, in_image=True)
    services = [JobService("locust-master", master, log="locust-0.log")]
    if workers:  # one service, its replicas spread over the machines labelled for load
        worker = JobService("locust-worker", workers[0], log="locust-1.log", replicas=len(workers), label=LOAD_LABEL)
        services.append(worker)
    job = StackJob(
        services=services,
        output="/results",
        files=files,
        secret_files={where["client_key"]: plan.client_key} if plan.client_key else {},
        environment={PLAN_VARIABLE: str(inside / "plan.json"), "PYTHONUNBUFFERED": "1"},
    )
    monitor = _Monitor(nodes, load_dir / "locust_stats_history.csv", options.on_progress)
    options.on_progress(f"Locust: a master and {len(workers)} worker(s) as services of the run's stack")
    timeout = settings.duration + GRACE_SECONDS + 60  # and the time the swarm takes to place them
    _check_exit(run_job(state, job, load_dir, every_second=monitor, timeout=timeout), load_dir)
    return monitor.samples


def _commands(
    csv_prefix: PurePath,
    settings: LoadSettings,
    workers: int,
    web_port: int | None,
    *,
    in_image: bool = False,
    seconds: float | None = None,
) -> list[list[str]]:
    """`in_image`: Locust as the node image runs it, its master reached by its service's name.
    `seconds`: Locust's --run-time (default: the run's duration)."""
    return locust_commands(
        [LOCUSTFILE],
        csv_prefix,
        settings.users,
        spawn_rate=settings.spawn_rate,
        seconds=settings.duration if seconds is None else seconds,
        workers=workers,
        web_port=web_port,
        extra=["--csv-full-history", "--stop-timeout", "10"],
        launcher=IN_IMAGE_LOCUST if in_image else None,
        master_at=("0.0.0.0", "locust-master", LOCUST_PORT) if in_image else None,
    )


def locust_commands(
    locustfiles: list[Path],
    csv_prefix: PurePath,
    users: int,
    *,
    spawn_rate: float,
    seconds: float,
    workers: int,
    web_port: int | None = None,
    extra: list[str] | None = None,
    launcher: list[str] | None = None,
    master_at: tuple[str, str, int] | None = None,
) -> list[list[str]]:
    """Locust's command lines: one process, or a master (first) and `workers` workers on
    loopback. Headless, or with the web UI on loopback, started at once and closed at the end.
    Every process loads all `locustfiles` (a driver's own, and plugins beside it), unless a
    `launcher` starts Locust with its own; `master_at`: (address the master binds, name the
    workers reach it by, port) instead of loopback and a free port."""
    locust = [sys.executable, "-m", "locust", "-f", ",".join(map(str, locustfiles))]
    base = [*(launcher or locust), "--loglevel", "WARNING"]
    ui = ["--autostart", "--autoquit", "0", "--web-host", "127.0.0.1", "--web-port", str(web_port)]
    run = [
        *(ui if web_port else ["--headless"]),
        "--users", str(users),
        "--spawn-rate", str(spawn_rate),
        "--run-time", f"{max(1, round(seconds))}s",
        "--csv", str(csv_prefix),
        "--only-summary",
        *(extra or []),
    ]  # fmt: skip
    if workers == 0:
        return [[*base, *run]]
    bind, reach, port = master_at or ("127.0.0.1", "127.0.0.1", free_loopback_port())
    master = [*base, *run, "--master", "--master-bind-host", bind, "--master-bind-port", str(port),
              "--expect-workers", str(workers)]  # fmt: skip
    worker = [*base, "--worker", "--master-host", reach, "--master-port", str(port)]
    return [master, *([worker] * workers)]


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _sample(watched: dict[str, psutil.Process], samples: dict[str, list[NodeSample]], t: float) -> None:
    for name, process in watched.items():
        try:
            with process.oneshot():
                cpu = process.cpu_percent(interval=None)  # since the previous sample
                rss = process.memory_info().rss / 2**20
        except psutil.Error:
            continue
        samples[name].append(NodeSample(t=round(t, 1), cpu_percent=cpu, rss_mb=round(rss, 1)))


def _progress_line(history: Path) -> str:
    if not history.exists():
        return ""
    try:
        series = perf.read_series(history)
    except (OSError, KeyError, ValueError):
        return ""  # Locust is writing the file just now
    if not series:
        return ""
    now = series[-1]
    p95 = f"{now.p95_ms:.0f} ms" if now.p95_ms is not None else "-"
    return (
        f"{now.t:5.0f} s  users {now.users:4d}  {now.rps:7.1f} req/s  {now.failures_per_s:5.1f} failures/s  p95 {p95}"
    )


def _performance(
    load_dir: Path,
    settings: LoadSettings,
    workers: int,
    samples: dict[str, list[NodeSample]],
    *,
    order: list[str],
    windows: list[FaultWindow] | None = None,
) -> Performance:
    stats = load_dir / "locust_stats.csv"
    if not stats.exists():
        raise TestbedError(f"Locust wrote no statistics ({stats}); see {load_dir / 'locust-0.log'}")
    overall, steps = perf.read_figures(stats)
    if overall is None or overall.requests == 0:
        raise TestbedError(f"no request was made during the load run; see {load_dir / 'locust-0.log'}")
    began = load_began(load_dir)  # the series and the fault windows count from the same moment
    series = perf.read_all_series(load_dir / "locust_stats_history.csv", origin=began)
    overall_series = series.pop(perf.OVERALL, [])
    ramp_up = perf.ramp_up_end(overall_series, settings.users)
    faults = fault_run(load_dir, windows, began=began, seconds=settings.duration) if windows else None
    scoped = {"inside_faults": faults.inside, "outside_faults": faults.outside} if faults else {}
    performance = Performance(
        users=settings.users,
        spawn_rate=settings.spawn_rate,
        duration_s=settings.duration,
        workers=workers,
        overall=overall,
        steps=perf.in_order(steps, order),
        series=overall_series,
        step_series=series,
        nodes=samples,
        thresholds=perf.check_thresholds(settings.parsed_thresholds(), overall, steps, scoped=scoped),
        files=sorted(p.name for p in load_dir.glob("locust_*.csv")),
        failures=perf.read_failures(load_dir / "locust_failures.csv"),
        ramp_up_s=ramp_up,
        steady=perf.steady_state(overall_series, ramp_up),
        stages=_stage_ends(settings),
        faults=faults,
    )
    (load_dir / "perf.json").write_text(performance.model_dump_json(indent=2), encoding="utf-8")
    return performance


def fault_run(load_dir: Path, windows: list[FaultWindow], *, began: float | None, seconds: float) -> FaultRun:
    """The fault windows with the requests inside and outside them, from the records Locust
    wrote request by request. A window that never held has no figures; one whose fault was
    never undone holds to the end of the load."""
    if began is None:  # Locust never marked its start: nothing ran, nothing to split
        return FaultRun(windows=windows)
    held = [w for w in windows if w.start_s is not None]
    spans = [
        (began + w.start_s, began + (w.end_s if w.end_s is not None else seconds))
        for w in held
        if w.start_s is not None
    ]
    parts = split(read_records(load_dir), spans, began=began, ended=began + seconds)
    for window, figures in zip(held, parts.windows, strict=True):
        window.figures = figures
    return FaultRun(windows=windows, inside=parts.inside, outside=parts.outside)


def _stage_ends(settings: LoadSettings) -> list[tuple[float, int]]:
    """(end second, users) of each stage of a load shape, for the charts' stage marks."""
    ends, elapsed = [], 0.0
    for stage in settings.stages:
        elapsed += stage.duration
        ends.append((elapsed, stage.users))
    return ends


_COMPARISONS = (("<=", "-le-"), (">=", "-ge-"), ("==", "-eq-"), ("<", "-lt-"), (">", "-gt-"))


def threshold_check_id(scope: str, expression: str) -> str:
    """A threshold's check id says what it holds, in characters every report format takes in
    an id: `overall-p95-lt-2500` for `p(95)<2500` over the run, `read-patient-rate-lt-0.01`."""
    text = expression.replace(" ", "").replace("(", "").replace(")", "").replace("%", "pct")
    for operator, word in _COMPARISONS:
        text = text.replace(operator, word)
    return f"{scope}-{text}"


def _as_checks(scenario: LoadedScenario, performance: Performance, started: datetime) -> ScenarioResult:
    """The load run in the results model: one check that every step ran, one per threshold."""
    result = ScenarioResult(name=f"{scenario.scenario.name}-load", file=str(scenario.path), sha256=scenario.sha256)
    ran = {f.name for f in performance.steps if f.requests > f.step_errors}
    missing = [s.id for s in scenario.scenario.steps if s.request is not None and s.id not in ran]
    result.checks.append(
        CheckResult(
            id="every-step-ran",
            title="Every request step of the scenario ran under load",
            requirements=[RAN_REQUIREMENT],
            outcome=Outcome.PASSED if not missing else Outcome.FAILED,
            message=f"steps that made no request: {', '.join(missing)}" if missing else "",
            started=started,
            duration_ms=performance.duration_s * 1000,
        )
    )
    for outcome in performance.thresholds:
        result.checks.append(
            CheckResult(
                id=threshold_check_id(outcome.scope, outcome.expression),
                title=f"{outcome.scope}: {outcome.expression}",
                requirements=[SLO_REQUIREMENT],
                outcome=Outcome.PASSED if outcome.passed else Outcome.FAILED,
                message="" if outcome.passed else outcome.detail,
                started=started,
                duration_ms=0,
            )
        )
    return result


def split_threshold_option(text: str) -> tuple[str, str]:
    """`--threshold 'p(95)<200'` is about the whole run; `--threshold 'read-patient:p(95)<200'`
    about one step."""
    scope, separator, expression = text.partition(":")
    return (scope.strip(), expression.strip()) if separator else ("overall", text.strip())


def parse_threshold_option(text: str) -> str:
    """`--threshold` values are checked before anything starts."""
    scope, expression = split_threshold_option(text)
    Threshold.parse(expression, scope=scope)
    return text
