"""The `testbed` command."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from testbed import __version__, interrupts
from testbed.errors import ConfigError, ExitCode, TestbedError
from testbed.report.terminal import print_check, print_summary, print_xfail
from testbed.report.writers import write_all
from testbed.runtime.state import RunFolder, RunState, all_run_ids, current_run_id, new_run_id

if TYPE_CHECKING:  # the self-test is imported by its command only
    from testbed.conformance.selection import LastRun
    from testbed.conformance.selftest import SelftestResults, VariantOutcome
    from testbed.report.model import RunResults
    from testbed.scenario.models import Fault

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Conformance and load testbed for health-data networks.",
    # Plain help (click's): flags show no `<bool>` type, and nothing is boxed to a width.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _console(*, stderr: bool) -> Console:
    """A console that wraps only on a terminal: in a CI log or a pipe there is no width to
    fit, and a line broken at column 80 splits check names, lists and URLs."""
    stream = sys.stderr if stderr else sys.stdout
    on_terminal = stream.isatty() or bool(os.environ.get("COLUMNS"))
    return Console(
        stderr=stderr, highlight=False, markup=False, emoji=False, width=None if on_terminal else UNWRAPPED_WIDTH
    )


UNWRAPPED_WIDTH = 100_000  # wider than any line: rich sizes tables to their content, not to this
# Messages carry text from files, nodes and networks (names, patterns, URAs): printed as text,
# never read as markup or emoji codes. Styles are given as styles, never inside the string.
console = _console(stderr=False)
errors = _console(stderr=True)

DEFAULT_NETWORK = Path("scenarios/networks/reference.yaml")
PROFILES = Path("scenarios/profiles")
INTERRUPTED = interrupts.INTERRUPTED  # the shell's convention for a process ended by SIGINT
StateOption = Annotated[Path, typer.Option("--state", help="Folder for run state (CA, node configs, data)")]
ReportsOption = Annotated[Path, typer.Option("--reports", help="Folder the run's reports go into")]
CaOption = Annotated[
    Path | None,
    typer.Option("--ca", help="Keep the network CA in this folder across runs (made there if missing)"),
]
NodesPerProcessOption = Annotated[
    int | None,
    typer.Option(
        "--nodes-per-process",
        min=1,
        max=10_000,
        help="Process runtime: how many nodes share one OS process (default: 1 up to 32 nodes, above that "
        "spread over two processes per core)",
    ),
]
RuntimeOption = Annotated[
    str, typer.Option("--runtime", envvar="RUNTIME", help="How nodes run: process (default), docker or swarm")
]
ScenarioNetworkOption = Annotated[
    Path | None, typer.Option("--network", help="Network file; default: the one the scenario(s) name")
]
AttachOption = Annotated[bool, typer.Option("--attach", help="Use the network `testbed up` started")]


def main() -> None:
    """Entry point: bad input and interrupts end with a message and an exit code, not a traceback."""
    # SIGINT and SIGTERM end a run the same way, also when started from a script that ignores SIGINT.
    interrupts.install()
    try:
        code = app(standalone_mode=False)  # returns the exit code a command raised typer.Exit with
        code = code if isinstance(code, int) else 0
        if interrupts.pending() and not interrupts.holding():  # e.g. one during a teardown, which went on
            code = INTERRUPTED
        if code == INTERRUPTED:  # typer's answer to KeyboardInterrupt, after our teardown ran
            errors.print("interrupted: every node this run started has been stopped")
        sys.exit(code)
    except TestbedError as exc:
        errors.print(_labelled("error:", exc), soft_wrap=True)
        sys.exit(ExitCode.HARNESS_ERROR)
    except (KeyboardInterrupt, typer.Abort, EOFError):
        errors.print("interrupted: every node this run started has been stopped")
        sys.exit(INTERRUPTED)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # a usage error: unknown option, missing argument
        show = getattr(exc, "show", None)  # typer's (vendored) click errors print their own usage text
        if callable(show):
            show()
        else:
            errors.print(f"error: {exc}", highlight=False)
        sys.exit(ExitCode.HARNESS_ERROR)
    except RecursionError:  # a last resort: every reader limits nesting, so this is a gap in one
        errors.print(_labelled("error:", "the input nests too deeply to be read (RecursionError)"))
        sys.exit(ExitCode.HARNESS_ERROR)


def _show_version(value: bool) -> None:
    if value:
        console.print(f"testbed {__version__}")
        raise typer.Exit(0)


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print the testbed's version and exit"),
    ] = False,
) -> None:
    """Conformance and load testbed for health-data networks."""


def _labelled(label: str, message: object) -> Text:
    return Text.assemble((label, "bold red"), f" {message}")


def _progress(message: str) -> None:
    console.print(f"· {message}", style="dim")


@app.command()
def conformance(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Scenario files or folders; a scenario folder's own files only, not its subfolders "
            "(`scenarios` is the use cases alone). Default: the use cases and every profile in scenarios/profiles/"
        ),
    ] = None,
    *,
    network: ScenarioNetworkOption = None,
    runtime: RuntimeOption = "process",
    state: StateOption = Path(".testbed"),
    reports: ReportsOption = Path("reports"),
    attach: AttachOption = False,
    ca: CaOption = None,
    nodes_per_process: NodesPerProcessOption = None,
    profile: Annotated[
        list[str] | None, typer.Option("--profile", help="A role's conformance profile (scenarios/profiles/NAME)")
    ] = None,
    keyword: Annotated[
        list[str] | None,
        typer.Option(
            "-k",
            metavar="PATTERN",
            help="Run only the checks whose '<scenario>/<check id>' or title contains PATTERN (case-insensitive; "
            "repeatable: any may match). The earlier steps of their scenarios run as setup and are not reported; "
            "a profile run so narrowed is at best 'incomplete', never 'conforms'",
        ),
    ] = None,
    exitfirst: Annotated[
        bool,
        typer.Option("-x", "--exitfirst", help="Stop at the first failed or errored check; reports are still written"),
    ] = False,
    last_failed: Annotated[
        bool,
        typer.Option(
            "--last-failed",
            "--lf",
            help="Run only the checks that failed, errored or were blocked in the last conformance run (the newest "
            "results.json under --reports), as -k does; with no paths, that run's scenario files",
        ),
    ] = False,
    from_run: Annotated[
        Path | None,
        typer.Option("--from", metavar="RUN_DIR", help="With --last-failed: the run folder to take the failures from"),
    ] = None,
) -> None:
    """Boot the network, replay the scenarios, and write the conformance reports."""
    from testbed.conformance.runner import ConformanceOptions, RunInterrupted, run_conformance

    last = _last_failures(reports, from_run) if last_failed or from_run is not None else None
    if last is not None and not paths and not profile:
        paths = last.scenario_files
    run_id = current_run_id(state) if attach else new_run_id("conformance")
    folder = RunFolder(state, reports, run_id if not attach else new_run_id("attached"))
    options = ConformanceOptions(
        scenario_paths=_scenario_paths(paths or [], profile or []),
        network_path=network,
        runtime=runtime,
        folder=folder,
        attach=RunFolder(state, reports, run_id) if attach else None,
        ca_dir=ca,
        nodes_per_process=nodes_per_process,
        on_progress=_progress,
        on_check=lambda scenario, check: print_check(console, scenario, check),
        patterns=keyword or [],
        last_failed=last,
        exitfirst=exitfirst,
        on_setup=lambda key, outcome, message: _progress(f"setup {key}: {outcome.value} {message}".rstrip()),
    )
    if not paths and not profile:
        _progress("no scenarios named: the use cases in scenarios/ and every profile in scenarios/profiles/")
    try:
        results = run_conformance(options)
    except RunInterrupted as stopped:  # its reports are written all the same, from the checks finished
        results = stopped.results
    write_all(results, folder.report_dir)
    _print_selection(results)
    print_summary(console, results, folder.report_dir)
    if results.error:
        errors.print(_labelled("error:", results.error))
    raise typer.Exit(results.exit_code)


def _last_failures(reports: Path, from_run: Path | None) -> LastRun:
    """The run whose failures --last-failed re-runs; a run with none ends here, saying so."""
    from testbed.conformance.selection import last_run

    last = last_run(reports, from_run)
    if not last.failed:
        what = f"the last run, {last.run_id} ({last.results}), ended {last.verdict} with no failed or errored check"
        if last.verdict in ("error", "interrupted"):
            raise ConfigError(f"--last-failed: {what}: nothing to re-run; run it in full again")
        console.print(f"--last-failed: {what}: nothing to re-run")
        raise typer.Exit(0)
    _progress(f"--last-failed: the {len(last.failed)} check(s) that did not pass in run {last.run_id}")
    return last


def _print_selection(results: RunResults) -> None:
    """What a narrowed run left out, before its summary: its verdict covers only what ran."""
    chosen = results.selection
    if chosen is None:
        return
    if chosen.patterns or chosen.last_failed_from:
        how = " and ".join(
            [f"-k {' or '.join(chosen.patterns)}"] * bool(chosen.patterns)
            + [f"--last-failed from {chosen.last_failed_from}"] * bool(chosen.last_failed_from)
        )
        console.print(
            f"selection ({how}): {len(chosen.selected)} check(s) chosen; {len(chosen.setup)} earlier step(s) "
            "ran as setup only and are not reported; the verdict covers the chosen checks only",
            soft_wrap=True,  # one line, whatever the width: a script or a CI log reads it whole
        )
    for problem in chosen.setup_not_passed:
        console.print(f"setup step did not pass: {problem}", style="yellow", soft_wrap=True)
    if chosen.stopped_at:
        console.print(f"stopped after {chosen.stopped_at} (-x): the checks after it did not run", soft_wrap=True)


@app.command()
def selftest(
    profile: Annotated[
        list[str] | None, typer.Option("--profile", help="A role whose profile to test (default: every role)")
    ] = None,
    *,
    variant: Annotated[
        list[str] | None, typer.Option("--variant", help="Run only this faulty variant (a fault name); repeatable")
    ] = None,
    record: Annotated[
        bool, typer.Option("--record", help="Keep each fully measured role's score for profile reports")
    ] = False,
    runtime: RuntimeOption = "process",
    state: StateOption = Path(".testbed"),
    reports: ReportsOption = Path("reports"),
) -> None:
    """Run each role's profile against faulty variants of its reference node: every variant must
    be caught, and the reference node itself (the identity variant) must conform."""
    from testbed.conformance.selftest import SelftestOptions, record_scores, run_selftest, write_selftest

    report_dir = reports / new_run_id("selftest")
    options = SelftestOptions(
        roles=_known_profiles(profile or []) or _available_profiles(),
        only=variant or [],
        runtime=runtime,
        state=state,
        report_dir=report_dir,
        profiles=PROFILES,
        on_progress=_progress,
        on_variant=_print_variant,
    )
    results = run_selftest(options)
    written = write_selftest(results, report_dir)
    _print_scores(results)
    for path in written:
        console.print(f"{path.name:12} {path}")
    if record:
        record_scores(results)
    raise typer.Exit(results.exit_code)


@app.command()
def load(
    scenario: Annotated[Path, typer.Argument(help="The scenario to put under load (its `load:` block applies)")],
    *,
    users: Annotated[int | None, typer.Option("--users", "-u", min=1, help="Concurrent simulated users")] = None,
    spawn_rate: Annotated[
        float | None, typer.Option("--spawn-rate", "-r", min=0.01, help="Users started per second")
    ] = None,
    duration: Annotated[
        str | None,
        typer.Option(
            "--duration", "-t", metavar="DURATION", help="How long the load lasts: 30 (seconds), 30s, 5m, 1h30m"
        ),
    ] = None,
    threshold: Annotated[
        list[str] | None,
        typer.Option("--threshold", help="'p(95)<200' for the run, 'STEP:p(95)<200' for one step; repeatable"),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=0, max=64, help="Run a Locust master and this many workers")
    ] = 0,
    spread: Annotated[
        list[str] | None,
        typer.Option(
            "--spread",
            metavar="ACTOR",
            help="An actor each flow draws anew from every care organisation able to play it, so the load spreads "
            "over the whole network (repeatable: --spread requester --spread holder); replaces the scenario's "
            "`load: spread:`",
        ),
    ] = None,
    web: Annotated[
        int | None, typer.Option("--web", min=1024, max=65535, help="Show Locust's web UI on 127.0.0.1:PORT")
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            "--fault",
            metavar="AT[+FOR]:TARGET:OPERATION",
            help="A fault while the load runs, AT seconds after it began, undone after FOR (without +FOR: at the "
            "end): 10s+8s:holder.station:stop, 5s:consent:pause, 5s+5s:gp-station~consent:delay:ms=300 (TARGET a "
            "node, or a link's two ends joined by ~; NAME=VALUE sets more of the fault). Repeatable; replaces the "
            "scenario's `load: faults:`",
        ),
    ] = None,
    network: ScenarioNetworkOption = None,
    runtime: RuntimeOption = "process",
    state: StateOption = Path(".testbed"),
    reports: ReportsOption = Path("reports"),
    attach: AttachOption = False,
    ca: CaOption = None,
    nodes_per_process: NodesPerProcessOption = None,
) -> None:
    """Replay a scenario with many simulated users (Locust) and check its thresholds."""
    from testbed.conformance.runner import RunInterrupted
    from testbed.faults.schedule import parse_fault_option
    from testbed.load.runner import LoadOptions, Overrides, parse_threshold_option, run_load

    for given in threshold or []:
        try:
            parse_threshold_option(given)
        except ValueError as exc:
            raise ConfigError(f"--threshold: {exc}") from None
    for given in fault or []:
        try:
            parse_fault_option(given)
        except ValueError as exc:
            raise ConfigError(f"--fault {given!r}: {exc}") from None
    seconds = _duration_option(duration)
    folder = RunFolder(state, reports, new_run_id("load"))
    options = LoadOptions(
        scenario_path=scenario,
        network_path=network,
        runtime=runtime,
        folder=folder,
        overrides=Overrides(
            users=users,
            spawn_rate=spawn_rate,
            duration=seconds,
            thresholds=threshold or [],
            spread=spread,
            faults=fault,
        ),
        workers=workers,
        web_port=web,
        attach=RunFolder(state, reports, current_run_id(state)) if attach else None,
        ca_dir=ca,
        nodes_per_process=nodes_per_process,
        on_progress=_progress,
    )
    try:
        results = run_load(options)
    except RunInterrupted as stopped:  # its reports are written all the same, from what it measured
        results = stopped.results
    write_all(results, folder.report_dir)
    print_summary(console, results, folder.report_dir)  # a k6-like end-of-test summary, thresholds included
    if results.error:
        errors.print(_labelled("error:", results.error))
    raise typer.Exit(results.exit_code)


@app.command()
def up(
    network: Annotated[Path, typer.Option("--network", help="Network file")] = DEFAULT_NETWORK,
    *,
    runtime: RuntimeOption = "process",
    state: StateOption = Path(".testbed"),
    reports: ReportsOption = Path("reports"),
    ca: CaOption = None,
    nodes_per_process: NodesPerProcessOption = None,
) -> None:
    """Start a network and leave it running (stop it with `testbed down`)."""
    from testbed.network import start_network
    from testbed.topology import load_network

    loaded = load_network(network)
    folder = RunFolder(state, reports, new_run_id("up"))
    running = start_network(
        loaded, runtime, folder, owner_pid=None, progress=_progress, ca_dir=ca, nodes_per_process=nodes_per_process
    )
    folder.mark_current()
    _print_nodes(running.state.nodes, {n.plan.name: "up" for n in running.state.nodes})
    console.print(Text.assemble("run ", (folder.run_id, "bold"), f": logs in {folder.logs_dir}"))
    console.print(f"the harness and the nodes trust the CAs in {running.state.trust_bundle}")


@app.command()
def status(
    run: Annotated[str | None, typer.Option("--run", help="Run id (default: the last `testbed up`)")] = None,
    state: StateOption = Path(".testbed"),
    reports: ReportsOption = Path("reports"),
) -> None:
    """Show the nodes of a running network and whether each answers its health check."""
    from testbed.network import attach

    running = attach(RunFolder(state, reports, run or current_run_id(state)))
    health = {}
    with running.client(timeout=2.0) as client:
        for node in running.state.nodes:
            health[node.plan.name] = _health(client.get, f"{node.plan.internal_url}/health")
    _print_nodes(running.state.nodes, health)
    if any(v != "up" for v in health.values()):
        raise typer.Exit(1)


@app.command()
def down(
    run: Annotated[str | None, typer.Option("--run", help="Run id (default: the last `testbed up`)")] = None,
    *,
    all_runs: Annotated[bool, typer.Option("--all", help="Stop every run found in the state folder")] = False,
    state: StateOption = Path(".testbed"),
    reports: ReportsOption = Path("reports"),
) -> None:
    """Stop a network started with `testbed up` (or, with --all, every leftover run)."""
    from testbed.network import stop_network

    run_ids = all_run_ids(state) if all_runs else [run or current_run_id(state)]
    for run_id in run_ids:
        folder = RunFolder(state, reports, run_id)
        try:
            run_state = folder.load()
        except TestbedError as exc:
            errors.print(f"{run_id}: {exc}; removing its state folder")
            folder.remove_state()
            continue
        if all_runs and run_state.owner_alive():
            console.print(f"left run {run_id} alone: harness process {run_state.owner_pid} is still running it")
            continue
        killed = stop_network(folder, run_state)
        note = f" (had to kill: {_names(killed)})" if killed else ""
        console.print(f"stopped run {run_id}{note}")
    orphans = _remove_container_leftovers(state, reports) if all_runs else []
    if not run_ids and not orphans:
        console.print("nothing to stop")


def _names(names: list[str], *, shown: int = 8) -> str:
    """A list of node names for one line: a thousand are counted, not printed."""
    if len(names) <= shown:
        return ", ".join(names)
    return f"{', '.join(names[:shown])} and {len(names) - shown} more"


def _remove_container_leftovers(state: Path, reports: Path) -> list[str]:
    """Containers and networks of runs whose state is gone (a harness killed outright, a state
    folder deleted by hand), found by their run label. Runs with a live owner stay."""
    from testbed.runtime.docker import DockerUnavailable, docker_client, leftover_runs, remove_run

    try:
        client = docker_client()
    except DockerUnavailable:
        return []  # no engine, so nothing of ours runs in one
    live = set()
    for run_id in all_run_ids(state):
        with contextlib.suppress(TestbedError):
            if RunFolder(state, reports, run_id).load().owner_alive():
                live.add(run_id)
    removed = sorted(leftover_runs(client, state) - live)
    for run_id in removed:
        remove_run(client, run_id, reports / run_id / "logs")
        console.print(f"removed the containers and network left by run {run_id}")
    return removed


export_app = typer.Typer(help="Write a network out for other tools", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("compose")
def export_compose_command(
    network: Annotated[Path, typer.Option("--network", help="Network file")] = DEFAULT_NETWORK,
    out: Annotated[Path, typer.Option("--out", help="Folder to write (made if missing)")] = Path("compose"),
) -> None:
    """A docker-compose.yml that starts the network as the docker runtime does, bootstrap included."""
    from testbed.export import export_compose
    from testbed.topology import load_network

    _refuse_export_over(out)
    try:
        written = export_compose(load_network(network), out)
    except ValueError as exc:
        raise ConfigError(f"{network}: {exc}") from None
    project = f"compose-{load_network(network).network.name}"
    console.print(f"wrote {written}")
    console.print(f"start it:  (cd {out} && docker-compose -p {project} up -d)   (or `docker compose`)")
    console.print(f"test it:   testbed conformance --attach --state {out}/state")


@export_app.command("stack")
def export_stack_command(
    network: Annotated[Path, typer.Option("--network", help="Network file")] = DEFAULT_NETWORK,
    out: Annotated[Path, typer.Option("--out", help="Folder to write (made if missing)")] = Path("stack"),
) -> None:
    """A docker-stack.yml that `docker stack deploy` starts on a Docker Swarm as the swarm
    runtime does, bootstrap included."""
    from testbed.export import export_stack
    from testbed.runtime.swarm import STACK_FILE, stack_name
    from testbed.topology import load_network

    _refuse_export_over(out)
    loaded = load_network(network)
    try:
        written = export_stack(loaded, out)
    except ValueError as exc:
        raise ConfigError(f"{network}: {exc}") from None
    console.print(f"wrote {written}")
    stack = stack_name(f"stack-{loaded.network.name}")
    console.print(f"start it:  (cd {out} && docker stack deploy --resolve-image never -c {STACK_FILE} {stack})")
    console.print(f"test it:   testbed conformance --attach --state {out}/state")
    console.print(f"remove it: testbed down --state {out}/state")


def _refuse_export_over(out: Path) -> None:
    if (out / "docker-compose.yml").exists() or (out / "docker-stack.yml").exists():
        raise ConfigError(f"{out} holds an export already (its CA and keys): remove it or choose another --out")


generate_app = typer.Typer(help="Write synthetic files for large runs", no_args_is_help=True)
app.add_typer(generate_app, name="generate")


@generate_app.command("network")
def generate_network_command(
    *,
    organisations: Annotated[
        int, typer.Option("--organisations", "-n", min=1, max=10_000, help="How many care organisations")
    ],
    seed: Annotated[
        str, typer.Option("--seed", help="Same seed and count: the same file, byte for byte")
    ] = "generated",
    vendors: Annotated[
        int,
        typer.Option(
            "--vendors", min=0, max=60, help="Vendors whose trust nodes host the small practices as subjects (0: none)"
        ),
    ] = 0,
    patients: Annotated[
        int | None,
        typer.Option(
            "--patients", min=1, max=100_000, help="Synthetic patients per care organisation's data station "
            "(default: the station's own default, 1000)"
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="File to write; default: standard output")] = None,
) -> None:
    """A network file of care organisations of the Dutch care categories, each with a trust node
    and a data station (with --vendors, small practices are hosted on a vendor's trust node),
    plus the reference network's national services."""
    from testbed.generate import generate_network

    try:
        text = generate_network(organisations=organisations, seed=seed, vendors=vendors, patients=patients)
    except ValueError as exc:
        raise ConfigError(f"generate network: {exc}") from None
    if out is None:
        sys.stdout.write(text)
        return
    out.write_text(text, encoding="utf-8")
    hosted = f", {vendors} vendors hosting the small practices" if vendors else ""
    console.print(f"wrote {out}: {organisations} care organisations{hosted} (check it: testbed validate {out})")


@app.command()
def bundle(
    report_dir: Annotated[Path, typer.Argument(help="A run's report folder, reports/<run-id>")],
    key: Annotated[Path, typer.Option("--key", help="Signing key (EC P-256, PEM); made there if missing")],
    out: Annotated[Path | None, typer.Option("--out", help="Bundle file (default: <folder>.bundle.tar.gz)")] = None,
) -> None:
    """Freeze a run's reports into one file with a signed manifest, for publishing."""
    from testbed.report.bundle import BundleError, make_bundle, new_key

    if not key.exists():
        public = new_key(key)
        console.print(f"made a new signing key {key}; publish its public half, {public}")
    try:
        written = make_bundle(report_dir, key, out)
    except BundleError as exc:
        raise ConfigError(str(exc)) from None
    console.print(f"wrote {written}")


@app.command("verify-bundle")
def verify_bundle_command(
    bundle_file: Annotated[Path, typer.Argument(help="A bundle made by `testbed bundle`")],
    public_key: Annotated[Path, typer.Option("--public-key", help="The publisher's public key (PEM)")],
) -> None:
    """Check a bundle's signature and that every file in it is as signed."""
    from testbed.report.bundle import BundleError, verify_bundle

    try:
        manifest = verify_bundle(bundle_file, public_key)
    except BundleError as exc:
        errors.print(_labelled("not valid:", exc))
        raise typer.Exit(1) from None
    console.print(f"valid: run {manifest['run_id']}, {len(manifest['files'])} files as signed on {manifest['made']}")


@app.command()
def matrix(
    registry: Annotated[Path, typer.Argument(help="The implementations registry (implementations.yaml)")],
    *,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for matrix.json, matrix.md, matrix.html and each run's reports")
    ],
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Run only this implementation (its registry name); repeatable")
    ] = None,
    pairs: Annotated[
        bool, typer.Option("--pairs/--no-pairs", help="Also run the pairs of implementations that talk to each other")
    ] = True,
    runtime: RuntimeOption = "process",
    state: StateOption = Path(".testbed"),
    ca: CaOption = None,
) -> None:
    """Run every implementation of a registry through its role's profile, and every pair of them
    that talks to each other through the use cases; write the interop matrix. Exit code: the
    worst of the runs (2 an error, 1 a failure, 3 an incomplete profile, else 0)."""
    from testbed.publish.matrix import MatrixOptions, run_matrix

    if (out / "matrix.json").exists():
        raise ConfigError(f"{out} holds a matrix already: remove it or choose another --out")
    options = MatrixOptions(
        registry=registry,
        out=out,
        runtime=runtime,
        state=state,
        ca_dir=ca,
        only=only or [],
        pairs=pairs,
        on_progress=_progress,
        on_run=_print_matrix_run,
    )
    result = run_matrix(options)
    for name in ("matrix.json", "matrix.md", "matrix.html"):
        console.print(Text.assemble((f"{name:<12}", "dim"), str(out / name)))
    console.print(
        f"matrix: {len(result.implementations)} implementation(s), {len(result.pairs)} pair x scenario cell(s); "
        f"exit code {result.exit_code}"
    )
    raise typer.Exit(result.exit_code)


def _print_matrix_run(name: str, results: RunResults) -> None:
    """One line per run of the matrix as it ends, its expected failures named on the next."""
    s = results.summary
    good = results.exit_code == ExitCode.OK
    line = Text.assemble(("✓ " if good else "✗ ", "green" if good else "bold red"), (name, "bold"))
    line.append(f" {results.verdict.value}: {s.passed} passed, {s.failed} failed ({s.xfailed} xfail), {s.error} errors")
    if results.error:
        line.append(f"  {results.error.splitlines()[0]}", "bold magenta")
    console.print(line)
    print_xfail(console, results)


@app.command()
def diff(
    run_a: Annotated[Path, typer.Argument(help="The earlier run: its report folder or its results.json")],
    run_b: Annotated[Path, typer.Argument(help="The later run: its report folder or its results.json")],
    *,
    tolerance: Annotated[
        float,
        typer.Option("--tolerance", min=0, help="Load runs: percent by which latency may rise or throughput fall"),
    ] = 10.0,
    failure_tolerance: Annotated[
        float,
        typer.Option("--failure-tolerance", min=0, help="Load runs: percentage points the failure rate may rise by"),
    ] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON")] = False,
) -> None:
    """What changed from run A to run B: new failures, fixed checks, coverage, suite version, load
    figures. Exit code 1 on a regression, 0 otherwise, 2 when a run cannot be read."""
    from testbed.publish.diff import diff_runs, load_run, render_text

    compared = diff_runs(load_run(run_a), load_run(run_b), tolerance=tolerance, failure_tolerance=failure_tolerance)
    if as_json:
        payload = {**compared.model_dump(mode="json"), "exit_code": compared.exit_code}
        sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    else:
        for line in render_text(compared):
            console.print(Text(line, style="bold red" if line.startswith("REGRESSIONS") else ""), soft_wrap=True)
    raise typer.Exit(compared.exit_code)


@app.command()
def publish(
    bundles: Annotated[list[Path], typer.Argument(help="Bundles made by `testbed bundle`")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the site into (replaces a site written there)")],
    public_key: Annotated[Path, typer.Option("--public-key", help="The publisher's public key (PEM)")],
    matrix: Annotated[Path | None, typer.Option("--matrix", help="A matrix.json written by `testbed matrix`")] = None,
) -> None:
    """Verify signed bundles, then write a static results site from them (nothing is re-run)."""
    from testbed.publish.site import publish_site

    site = publish_site(bundles, public_key=public_key, out=out, matrix=matrix)
    console.print(f"wrote {site.index}: {site.implementations} implementation(s) from {site.bundles} bundle(s)")


class _FaultCommands(TyperGroup):
    """`testbed fault NODE OPERATION` stays as it always was: a first word that names no
    sub-command (link, links) is a node's name, for `testbed fault node`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["node", *args]
        return super().parse_args(ctx, args)


fault_app = typer.Typer(
    cls=_FaultCommands,
    no_args_is_help=True,
    help="Do something to a running network: to a node (`testbed fault NODE OPERATION`), to a link "
    "(`testbed fault link A B OPERATION`), or to all links (`testbed fault links clear|show`)",
)
app.add_typer(fault_app, name="fault")
RunOption = Annotated[str | None, typer.Option("--run", help="Run id (default: the last `testbed up`)")]


@fault_app.command("node")
def fault_node(
    node: Annotated[str, typer.Argument(help="Node name")],
    *,
    operation: Annotated[
        str,
        typer.Argument(
            help="stop, start, kill, restart; pause, resume (docker: pause, unpause); disconnect, connect (docker)"
        ),
    ],
    run: RunOption = None,
    state: StateOption = Path(".testbed"),
    reports: ReportsOption = Path("reports"),
) -> None:
    """Do something to one node of a running network: stop or kill it, start it again, pause
    it, restart it; on docker also cut it off from the network and connect it again. On the
    process runtime a node that shares its process is stopped, started and paused alone."""
    from testbed.network import attach
    from testbed.runtime.docker import DockerRuntime
    from testbed.runtime.process import ProcessRuntime

    folder = RunFolder(state, reports, run or current_run_id(state))
    running = attach(folder)
    if running.state.runtime == "process":
        status = ProcessRuntime().operate(running.state, node, operation, progress=_progress)
        folder.save(running.state)  # a node started again has a new process id
        console.print(f"{node}: {operation} done; the node is {status}")
        return
    if running.state.runtime != "docker":
        raise ConfigError(
            f"faults need the process or docker runtime; run {running.state.run_id} uses {running.state.runtime}"
        )
    status = DockerRuntime().fault(running.state, node, operation)
    console.print(f"{node}: {operation} done; the container is {status}")


@fault_app.command("link")
def fault_link(
    first: Annotated[str, typer.Argument(metavar="A", help="Node name, or 'harness' (the harness's own requests)")],
    second: Annotated[str, typer.Argument(metavar="B", help="Node name")],
    *,
    operation: Annotated[
        str,
        typer.Argument(
            metavar="OPERATION",
            help="cut (refuse new connections, close open ones), heal, delay (--ms), lose (--ratio)",
        ),
    ],
    ms: Annotated[int | None, typer.Option("--ms", help="delay: milliseconds each chunk waits, either way")] = None,
    ratio: Annotated[
        float | None, typer.Option("--ratio", help="lose: the share of connections lost (0 < ratio <= 1)")
    ] = None,
    one_way: Annotated[
        bool, typer.Option("--one-way", help="Only the connections the first end opens to the second")
    ] = False,
    stall: Annotated[
        bool, typer.Option("--stall", help="cut, lose: leave connections unanswered instead of refusing them")
    ] = False,
    run: RunOption = None,
    state: StateOption = Path(".testbed"),
    reports: ReportsOption = Path("reports"),
) -> None:
    """Cut, heal, slow down or make lossy the link between two nodes of a running network (both
    ways unless --one-way), or the harness's own link to a node: through the run's link proxy,
    which every node's outbound connections pass. The fault holds until healed or cleared."""
    from testbed.faults.link_steps import RunLinks
    from testbed.network import attach

    running = attach(RunFolder(state, reports, run or current_run_id(state)))
    fault = _link_fault(first, second, operation, ms=ms, ratio=ratio, one_way=one_way, stall=stall)
    _refuse_unknown_ends(running.state, fault)
    console.print(RunLinks(running).apply(fault).describe(), soft_wrap=True)


@fault_app.command("links")
def fault_links(
    action: Annotated[
        str, typer.Argument(metavar="show|clear", help="show: the links that are not open; clear: heal every link")
    ],
    *,
    run: RunOption = None,
    state: StateOption = Path(".testbed"),
    reports: ReportsOption = Path("reports"),
) -> None:
    """Show the faulted links of a running network, or heal them all."""
    from testbed.faults.links import LinkFaults
    from testbed.network import attach

    if action not in ("show", "clear"):
        raise ConfigError(f"testbed fault links: {action!r} is neither show nor clear")
    running = attach(RunFolder(state, reports, run or current_run_id(state)))
    control = LinkFaults(running.state)
    if action == "clear":
        before = control.show()["links"]
        control.clear()
        console.print(f"every link is open again ({len(before)} link direction(s) were faulted)")
        return
    shown = control.show()
    for line in _faulted_links(shown["links"]) or ["every link is open"]:
        console.print(line, soft_wrap=True)
    console.print(f"tunnels open through the proxy: {shown['tunnels']}")


def _link_fault(first: str, second: str, operation: str, **options: Any) -> Fault:
    """The command line's link fault, checked as a fault step's is; only the options given count."""
    from pydantic import ValidationError

    from testbed.scenario.models import LINK_OPERATIONS, Fault

    if operation not in LINK_OPERATIONS:
        raise ConfigError(f"unknown link operation {operation!r}; known: {', '.join(LINK_OPERATIONS)}")
    given = {name: value for name, value in options.items() if value is not None and value is not False}
    try:
        return Fault(link=(first, second), operation=operation, **given)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        option = f"--{where.replace('_', '-')}: " if where in options else ""
        message = problem["msg"].removeprefix("Value error, ")
        # The model's names for its fields, as the command line spells them.
        names = "|".join(options)
        message = re.sub(rf"'?\b({names})\b'?", lambda found: "--" + found.group(1).replace("_", "-"), message)
        raise ConfigError(f"testbed fault link: {option}{message}") from None


def _refuse_unknown_ends(run: RunState, fault: Fault) -> None:
    """Each end a node of the run (or the harness first); the source of a faulted direction a
    node the run starts: a node reached by URL opens its connections without the proxy."""
    from testbed.scenario.loader import link_directions
    from testbed.scenario.models import HARNESS_END

    assert fault.link is not None
    nodes = {node.plan.name: node.plan for node in run.nodes}
    for end in fault.link:
        if end != HARNESS_END and end not in nodes:
            raise ConfigError(
                f"no node {end!r} in run {run.run_id} (nodes: {', '.join(sorted(nodes))}; "
                f"or {HARNESS_END!r} for the harness)"
            )
    for source, target in link_directions(fault):
        if source != HARNESS_END and not nodes[source].managed:
            raise ConfigError(
                f"{source} is reached by URL ({nodes[source].public_url}): the connections it opens do not pass the "
                f"run's link proxy, so {source} -> {target} cannot fail; fault it from the harness, or --one-way from "
                "a node the run starts"
            )


def _faulted_links(links: list[dict[str, Any]]) -> list[str]:
    """The proxy's account of the links that are not open, one line each."""
    from testbed.faults.links import HARNESS
    from testbed.scenario.models import HARNESS_END

    lines = []
    for link in links:
        what = ["cut"] if link.get("cut") else []
        what += [f"delayed {link['delay_ms']} ms"] if link.get("delay_ms") else []
        what += [f"losing {link['loss']:.0%} of its connections"] if link.get("loss") else []
        unanswered = " (connections left unanswered)" if link.get("stall") else ""
        ends = [HARNESS_END if name == HARNESS else str(name) for name in (link["from"], link["to"])]
        lines.append(f"{ends[0]} -> {ends[1]}: {', '.join(what)}{unanswered}")
    return lines


@app.command()
def validate(
    paths: Annotated[list[Path], typer.Argument(help="Scenario or network files")],
    runtime: RuntimeOption = "process",
) -> None:
    """Check scenario and network files without starting anything: every check a run makes
    before it starts a node, every problem of every file. Exit 2 when any has one."""
    from testbed.conformance.catalogue import Catalogue
    from testbed.scenario.loader import validate_file

    catalogue = Catalogue.load()
    broken = 0
    for path in paths:
        try:
            validate_file(path, catalogue, runtime=runtime)
        except TestbedError as exc:
            errors.print(_labelled("✗", exc), soft_wrap=True)
            broken += 1
        except RecursionError:
            errors.print(_labelled("✗", f"{path}: values nest too deeply to be read"), soft_wrap=True)
            broken += 1
        else:
            console.print(Text.assemble(("✓", "green"), f" {path}"))
    if broken:
        errors.print(_labelled("error:", f"{broken} of {len(paths)} files have problems"))
        raise typer.Exit(ExitCode.HARNESS_ERROR)


@app.command()
def cert(
    ca: Annotated[Path, typer.Option("--ca", help="The CA folder (as given to `--ca` of up/conformance)")],
    *,
    name: Annotated[str, typer.Option("--name", help="Common name, e.g. the node name")],
    host: Annotated[list[str], typer.Option("--host", help="Address or DNS name the node serves on")],
    out: Annotated[Path, typer.Option("--out", help="Folder for cert.pem and key.pem")],
) -> None:
    """Issue a server and client certificate from the network CA, for an implementation under test."""
    from testbed.pki import NetworkCA

    files = NetworkCA.open(ca, "testbed").issue(out, name, host)
    console.print(f"wrote {files.cert} and {files.key}; the CA certificate is {files.ca}")


@app.command()
def schema(out: Annotated[Path | None, typer.Option("--out", help="Folder to write the schemas into")] = None) -> None:
    """Write the JSON Schemas of scenario, network and results files."""
    from testbed.schemas import SCHEMA_DIR, write_schemas

    for path in write_schemas(out or SCHEMA_DIR):
        console.print(f"wrote {path}")


def _duration_option(text: str | None) -> float | None:
    """`--duration` in seconds; units as Locust and k6 take them (30s, 5m, 1h30m)."""
    from testbed.scenario.durations import parse_duration

    if text is None:
        return None
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise ConfigError(f"--duration: {exc}") from None
    if seconds < 1:
        raise ConfigError(f"--duration: {text!r} is less than the one second Locust can run for")
    return seconds


def _available_profiles() -> list[str]:
    return sorted(p.name for p in PROFILES.iterdir() if p.is_dir()) if PROFILES.is_dir() else []


def _known_profiles(names: list[str]) -> list[str]:
    """The named profiles, each of which must exist."""
    available = _available_profiles()
    unknown = [name for name in names if name not in available]
    if unknown:
        raise ConfigError(f"unknown profile(s) {', '.join(unknown)}; available: {', '.join(available) or 'none'}")
    return names


def _scenario_paths(paths: list[Path], profiles: list[str]) -> list[Path]:
    """What to replay: the given files and folders plus the named profiles; by default the
    use-case scenarios and every profile."""
    chosen = [*paths, *(PROFILES / name for name in _known_profiles(profiles))]
    return chosen or [Path("scenarios"), *(PROFILES / name for name in _available_profiles())]


def _health(get: Callable[[str], httpx.Response], url: str) -> str:
    try:
        return "up" if get(url).status_code == 200 else "unhealthy"
    except httpx.HTTPError as exc:
        return f"down ({exc.__class__.__name__})"


def _print_nodes(nodes: list[Any], health: dict[str, str]) -> None:
    table = Table("node", "role", "organisation", "kind", "public URL", "internal URL", "pid", "health")
    for node in nodes:
        plan = node.plan
        table.add_row(
            plan.name,
            plan.role.value,
            plan.organisation,
            plan.kind,
            plan.public_url,
            plan.internal_url,
            str(node.pid or "-"),
            health.get(plan.name, "?"),
        )
    console.print(table)


def _print_variant(outcome: VariantOutcome) -> None:
    """One line per variant run of the mutation self-test, as it completes."""
    good = outcome.caught
    symbol, style = ("✓", "green") if good else ("✗", "bold red")
    line = Text.assemble((f"{symbol} ", style), (f"{outcome.role}/{outcome.variant}", "bold"))
    if outcome.variant == "identity":
        line.append(" conforms" if good else f" does not conform (exit {outcome.exit_code})", style)
    elif good:
        by = ", ".join(outcome.caught_by[:3])
        line.append(f" caught by {by}{' …' if len(outcome.caught_by) > 3 else ''}", "dim")
    elif outcome.error:
        line.append(f" NOT caught: the run ended in a harness error: {outcome.error.splitlines()[0][:100]}", style)
    else:
        line.append(" NOT caught: the profile passed this faulty node", style)
    line.append(f" {outcome.duration_s:.1f} s", "dim")
    console.print(line)


def _print_scores(results: SelftestResults) -> None:
    table = Table(title=f"Mutation self-test {results.run_id}", title_justify="left")
    for column in ("profile", "variants caught", "identity conforms"):
        table.add_column(column)
    for score in results.scores:
        style = "green" if score.complete else "bold red"
        table.add_row(
            score.role,
            Text(f"{score.caught} of {score.total}", style=style),
            Text("yes" if score.identity_conforms else "no", style="green" if score.identity_conforms else "bold red"),
        )
    console.print(table)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
