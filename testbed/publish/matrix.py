"""`testbed matrix implementations.yaml --out DIR`: the interop matrix of a registry.

Every implementation of the registry runs its role's conformance profile on the profile's
network, standing in for one node of its role while the reference nodes fill every other role
(the conformance runner, with a network file in which that node is the implementation: by URL,
or by image on the docker runtime). Then every pair of implementations whose roles talk to each
other (a trust node asking another organisation's trust node for a token, a station asking the
consent service, ...) runs the use-case scenarios that involve both roles, each implementation
in its place, one network per pair and placement. The matrix is implementation x requirement
and pair x scenario, written as matrix.json, matrix.md and matrix.html, with each run's own
reports under runs/<name>/.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml

from testbed.conformance.catalogue import Catalogue
from testbed.conformance.runner import (
    ConformanceOptions,
    RunInterrupted,
    collect_scenario_files,
    prepare,
    run_conformance,
)
from testbed.errors import ConfigError, ExitCode
from testbed.files import sha256_of
from testbed.publish.matrix_model import Cell, ImplementationRow, Matrix, PairCell, RequirementRow
from testbed.publish.registry import Entry, LoadedRegistry, Reachable, apply_xfail, load_registry
from testbed.report.model import CheckResult, Outcome, RunResults, Verdict
from testbed.report.writers import write_all
from testbed.runtime.state import RunFolder, new_run_id
from testbed.scenario.loader import LoadedScenario, faulted_nodes, load_scenario, resolve_node
from testbed.topology import ImageImplementation, Network, Role, UrlImplementation, load_network


@dataclass(frozen=True)
class Interaction:
    """Two roles whose nodes talk to each other; `same_organisation`: only within one
    organisation (a station and the trust node that introspects its tokens)."""

    roles: tuple[Role, Role]
    how: str
    same_organisation: bool = False


INTERACTIONS = (
    Interaction((Role.TRUST, Role.TRUST), "a trust node asks another organisation's trust node for an access token"),
    Interaction((Role.STATION, Role.CONSENT), "a data station asks the consent service before it hands out data"),
    Interaction((Role.STATION, Role.TRUST), "a data station has its organisation's trust node introspect tokens", True),
    Interaction((Role.HDAB, Role.STATION), "the access body harvests catalogues and runs analyses at data stations"),
    Interaction(
        (Role.HDAB, Role.TRUST), "the access body introspects tokens and issues permits through its trust node", True
    ),
    Interaction(
        (Role.VAULT, Role.TRUST), "a vault has its provider's trust node introspect tokens and issue grants", True
    ),
)


@dataclass(kw_only=True)
class MatrixOptions:
    registry: Path
    out: Path
    runtime: str = "process"
    state: Path = Path(".testbed")
    ca_dir: Path | None = None
    profiles: Path = Path("scenarios/profiles")
    use_cases: Path = Path("scenarios")  # its own *.yaml files: the scenarios pairs run through
    only: list[str] = field(default_factory=list)  # implementation names (empty: all)
    pairs: bool = True
    on_progress: Callable[[str], None] = lambda _: None
    on_run: Callable[[str, RunResults], None] = lambda _n, _r: None


@dataclass
class Placement:
    node: str  # the node of the network the implementation stands in for
    entry: Entry


@dataclass
class PlannedRun:
    name: str  # its folder under runs/
    kind: Literal["profile", "pair"]
    scenario_files: list[Path]
    source_network: Path
    placements: list[Placement]
    interaction: Interaction | None = None
    network_file: Path | None = None  # written before any run starts

    def reached(self) -> list[tuple[str, Reachable]]:
        """Every node this run gives an implementation under test, companions included."""
        found: list[tuple[str, Reachable]] = []
        for placement in self.placements:
            found += [(placement.node, placement.entry.implementation), *placement.entry.companions.items()]
        return found

    def runtime(self, default: str) -> str:
        """An implementation that comes as an image needs containers: the docker runtime,
        unless the one asked for runs containers already."""
        images = any(isinstance(r, ImageImplementation) for _, r in self.reached())
        return "docker" if images and default == "process" else default


def run_matrix(options: MatrixOptions) -> Matrix:
    """Plan every run (finding every problem of the registry before a node starts), run them
    one after the other, and write the matrix."""
    catalogue = Catalogue.load()
    registry = load_registry(options.registry, catalogue)
    entries = _chosen(registry, options.only)
    runs = [_profile_run(registry, entry, options.profiles) for entry in entries]
    unplaced: list[PairCell] = []
    if options.pairs:
        pair_runs, unplaced = plan_pairs(entries, collect_scenario_files([options.use_cases]))
        runs += pair_runs
    _write_networks(runs, options.out / "networks")
    _check_runs(runs, options, catalogue)
    if options.ca_dir is None and any(isinstance(r, UrlImplementation) for run in runs for _, r in run.reached()):
        # Each run would make a CA of its own, whose harness certificate they would not accept.
        options.on_progress("implementations reached by URL trust the CA they were issued from: pass it as --ca DIR")
    matrix = _empty_matrix(registry, entries, catalogue, options)
    matrix.pairs += unplaced
    for run in runs:
        results = _execute(run, options, matrix)
        _record(matrix, run, results)
        options.on_run(run.name, results)
    matrix.finished = datetime.now(UTC)
    matrix.exit_code = matrix_exit_code(matrix)
    write_matrix(matrix, options.out)
    return matrix


def _chosen(registry: LoadedRegistry, only: list[str]) -> list[Entry]:
    names = [e.name for e in registry.registry.implementations]
    unknown = [name for name in only if name not in names]
    if unknown:
        raise ConfigError(f"--only {', '.join(unknown)}: not in {registry.path} (it names {', '.join(names)})")
    return [e for e in registry.registry.implementations if not only or e.name in only]


def _profile_run(registry: LoadedRegistry, entry: Entry, profiles: Path) -> PlannedRun:
    """The implementation's role's profile on the profile's network, standing in for its node."""
    folder = profiles / entry.role.value
    files = collect_scenario_files([folder]) if folder.is_dir() else []
    if not files:
        where = registry.where(registry.index(entry.name), "role")
        raise ConfigError(f"{where}: no profile for the {entry.role.value} role in {folder}")
    source = load_scenario(files[0]).network_path
    network = load_network(source).network
    node = _own_node(registry, entry, network, source)
    return PlannedRun(entry.name, "profile", files, source, [Placement(node, entry)])


def _own_node(registry: LoadedRegistry, entry: Entry, network: Network, source: Path) -> str:
    """The node an implementation stands in for (its `node`, or the network's first node of its
    role), and the nodes its companions stand in for, all checked against the network."""
    index = registry.index(entry.name)
    roles = {node.name: node.role for _, node in network.nodes()}
    node = entry.node or next((name for name, role in roles.items() if role == entry.role), None)
    problems = []
    if node is None or roles.get(node) != entry.role:
        what = f"node {node!r} is not a {entry.role.value} node of" if node else f"no {entry.role.value} node in"
        problems.append(f"{registry.where(index, 'node')}: {what} the network {source}")
    for companion in entry.companions:
        if companion not in roles or companion == node:
            why = "is the implementation's own node" if companion == node else "is not a node of"
            problems.append(f"{registry.where(index, 'companions', companion)}: {companion!r} {why} {source}")
    if problems or node is None:
        raise ConfigError("\n".join(problems))
    return node


def involved_nodes(scenario: LoadedScenario, network: Network) -> tuple[list[str], list[tuple[str, str]]]:
    """The nodes a scenario talks to (in the order it first does), and the (requester, holder)
    trust nodes of its token requests."""
    actors = scenario.scenario.actors
    nodes: dict[str, None] = {}
    tokens: list[tuple[str, str]] = []
    for step in scenario.scenario.steps:
        if step.request is not None:
            nodes.setdefault(resolve_node(step.request.node, actors, network))
        action = step.action
        if action is not None and action.name == "request-access-token" and action.requester and action.holder:
            requester = resolve_node(f"{action.requester}.trust", actors, network)
            holder = resolve_node(f"{action.holder}.trust", actors, network)
            nodes.update(dict.fromkeys((requester, holder)))
            if requester != holder and (requester, holder) not in tokens:
                tokens.append((requester, holder))
    return list(nodes), tokens


def places(interaction: Interaction, scenario: LoadedScenario, network: Network) -> tuple[str, str] | None:
    """Where a pair of the interaction's roles stands in the scenario: the first two nodes it
    involves that talk to each other in this way; None where it does not involve both."""
    nodes, tokens = involved_nodes(scenario, network)
    first, second = interaction.roles
    if first == second == Role.TRUST:
        return tokens[0] if tokens else None
    organisation = {node.name: (org.id, node.role) for org, node in network.nodes()}
    for a in (n for n in nodes if organisation[n][1] == first):
        for b in (n for n in nodes if organisation[n][1] == second and n != a):
            if not interaction.same_organisation or organisation[a][0] == organisation[b][0]:
                return a, b
    return None


def plan_pairs(entries: list[Entry], use_cases: list[Path]) -> tuple[list[PlannedRun], list[PairCell]]:
    """Runs for every pair of implementations whose roles interact, one per pair, network and
    placement, each with the use cases that place them so; and the pairs that could not be
    placed in a use case that involves both roles (an implementation that brings a node the
    other one is to stand in for), with the reason."""
    scenarios = [load_scenario(path) for path in use_cases]
    networks = {s.network_path: load_network(s.network_path).network for s in scenarios}
    grouped: dict[tuple[str, str, Path, str, str], PlannedRun] = {}
    unplaced: list[PairCell] = []
    for interaction in INTERACTIONS:
        for a, b in _pairs(entries, interaction):
            for scenario in scenarios:
                spot = places(interaction, scenario, networks[scenario.network_path])
                if spot is None:
                    continue
                network = networks[scenario.network_path]
                clash = _clash(a, b, spot, network) or _faulted_by_url(a, b, spot, faulted_nodes(scenario, network))
                if clash:
                    unplaced.append(_unplaced(a, b, interaction, scenario.scenario.name, clash))
                    continue
                key = (a.name, b.name, scenario.network_path, *spot)
                run = grouped.get(key) or _pair_run(a, b, interaction, scenario.network_path, spot, grouped)
                grouped[key] = run
                run.scenario_files.append(scenario.path)
    return list(grouped.values()), unplaced


def _pairs(entries: list[Entry], interaction: Interaction) -> list[tuple[Entry, Entry]]:
    first, second = interaction.roles
    return [(a, b) for a in entries for b in entries if a.role == first and b.role == second and a is not b]


def _clash(a: Entry, b: Entry, spot: tuple[str, str], network: Network) -> str:
    """Why two implementations cannot stand where a use case puts them ("" when they can)."""
    for entry, other in ((a, spot[1]), (b, spot[0])):
        if other in entry.companions:
            return f"{entry.name} comes with its own {other}, where the other implementation is to stand"
    for entry, own in ((a, spot[0]), (b, spot[1])):
        home = entry.node or next((n.name for _, n in network.nodes() if n.role == entry.role), None)
        if entry.companions and home != own:
            return f"{entry.name} comes with companions for {home}, and the use case puts it at {own}"
    reached = [a.implementation, *a.companions.values(), b.implementation, *b.companions.values()]
    if any(isinstance(r, ImageImplementation) for r in reached) and any(_on_loopback(r) for r in reached):
        return "one comes as an image and one is reached on this machine's loopback, which containers cannot reach"
    return ""


def _faulted_by_url(a: Entry, b: Entry, spot: tuple[str, str], faulted: set[str]) -> str:
    """A use case that stops, kills or pauses a node cannot have something reached by URL there."""
    placed = [(a.name, spot[0], a.implementation), (b.name, spot[1], b.implementation)]
    placed += [(e.name, node, reached) for e in (a, b) for node, reached in e.companions.items()]
    for name, node, reached in placed:
        if node in faulted and isinstance(reached, UrlImplementation):
            return f"the use case does faults to {node}, where {name} puts a node reached by URL (the harness cannot)"
    return ""


def _on_loopback(reached: Reachable) -> bool:
    if not isinstance(reached, UrlImplementation):
        return False
    host = urlsplit(reached.url).hostname or ""
    return host == "localhost" or host.startswith("127.") or host == "::1"


def _unplaced(a: Entry, b: Entry, interaction: Interaction, scenario: str, why: str) -> PairCell:
    return PairCell(
        a=a.name,
        b=b.name,
        roles=[r.value for r in interaction.roles],
        how=interaction.how,
        scenario=scenario,
        state="not run",
        note=why,
    )


def _pair_run(
    a: Entry, b: Entry, interaction: Interaction, network: Path, spot: tuple[str, str], taken: dict[Any, PlannedRun]
) -> PlannedRun:
    base = f"{a.name}--{b.name}"
    same = sum(run.name.startswith(base) for run in taken.values())
    name = base if not same else f"{base}-{same + 1}"
    placements = [Placement(spot[0], a), Placement(spot[1], b)]
    return PlannedRun(name, "pair", [], network, placements, interaction=interaction)


def _write_networks(runs: list[PlannedRun], folder: Path) -> None:
    """Each run's network: its source with the implementations under test in their places."""
    folder.mkdir(parents=True, exist_ok=True)
    for run in runs:
        data = yaml.safe_load(run.source_network.read_text(encoding="utf-8"))
        reached = dict(run.reached())
        for organisation in data.get("organisations", []):
            for node in organisation.get("nodes", []):
                if node.get("name") in reached:
                    node.pop("settings", None)  # a reference node's settings: this one is not the reference
                    node["implementation"] = reached[node["name"]].model_dump(exclude_none=True)
        run.network_file = folder / f"{run.name}.network.yaml"
        header = (
            f"# {run.kind} run {run.name} of the matrix: {run.source_network.name} with the implementations in place\n"
        )
        run.network_file.write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def _check_runs(runs: list[PlannedRun], options: MatrixOptions, catalogue: Catalogue) -> None:
    """Every run's inputs, as the runner checks them, before the first node starts; and a
    Docker Engine where an implementation comes as an image."""
    for run in runs:
        prepare(_conformance_options(run, options, RunFolder(options.state, options.out, "check")), catalogue)
    if any(run.runtime(options.runtime) != "process" for run in runs):
        from testbed.runtime.docker import DockerUnavailable, docker_client

        try:
            docker_client()
        except DockerUnavailable as exc:
            images = sorted(
                {p.entry.name for run in runs for p in run.placements if run.runtime("process") != "process"}
            )
            what = f"{', '.join(images)} come(s) as an image" if images else f"the {options.runtime} runtime"
            raise ConfigError(f"{options.registry}: {what}: {exc}") from None


def _conformance_options(run: PlannedRun, options: MatrixOptions, folder: RunFolder) -> ConformanceOptions:
    return ConformanceOptions(
        scenario_paths=list(run.scenario_files),
        network_path=run.network_file,
        runtime=run.runtime(options.runtime),
        folder=folder,
        ca_dir=options.ca_dir,
        # One line per run (from _execute) says what is going on; the network's own steps, run
        # after run, would bury it.
        on_progress=lambda _message: None,
    )


def _execute(run: PlannedRun, options: MatrixOptions, matrix: Matrix) -> RunResults:
    """One run of the matrix, its reports written with what the registry declares; an
    interrupt still writes them, and the matrix so far, before it ends the command."""
    report_dir = options.out / "runs" / run.name
    folder = RunFolder(options.state, options.out / "runs", new_run_id(f"matrix-{run.kind}"), report_dir=report_dir)
    options.on_progress(f"{run.name}: {run.kind} run, {len(run.scenario_files)} scenario file(s), {_where(run)}")
    try:
        results = run_conformance(_conformance_options(run, options, folder))
    except RunInterrupted as stopped:
        _registered(stopped.results, run)
        write_all(stopped.results, report_dir)
        _record(matrix, run, stopped.results)
        matrix.interrupted = True
        write_matrix(matrix, options.out)
        raise
    _registered(results, run)
    write_all(results, report_dir)
    return results


def _where(run: PlannedRun) -> str:
    return ", ".join(f"{p.entry.name} as {p.node}" for p in run.placements)


def _registered(results: RunResults, run: PlannedRun) -> None:
    results.registered = [p.entry.registered(p.node) for p in run.placements]
    apply_xfail(results)


def _empty_matrix(
    registry: LoadedRegistry, entries: list[Entry], catalogue: Catalogue, options: MatrixOptions
) -> Matrix:
    roles = sorted({e.role.value for e in entries})
    return Matrix(
        title=registry.registry.title,
        registry=str(options.registry),
        registry_sha256=sha256_of(options.registry),
        started=datetime.now(UTC),
        runtime=options.runtime,
        requirements=[
            RequirementRow(id=r.id, role=role, level=r.level, statement=r.statement)
            for role in roles
            for r in catalogue.by_role.get(role, [])
        ],
    )


def _record(matrix: Matrix, run: PlannedRun, results: RunResults) -> None:
    folder = f"runs/{run.name}"
    if run.kind == "profile":
        matrix.implementations.append(implementation_row(run.placements[0], results, folder))
    else:
        matrix.pairs += pair_cells(run, results, folder)


def pair_cells(run: PlannedRun, results: RunResults, folder: str) -> list[PairCell]:
    """One cell per use case of a pair run; a use case the run never reached (it ended in an
    error first) is an error cell."""
    assert run.interaction is not None
    a, b = run.placements
    common = {
        "a": a.entry.name,
        "b": b.entry.name,
        "a_node": a.node,
        "b_node": b.node,
        "roles": [r.value for r in run.interaction.roles],
        "how": run.interaction.how,
        "run": folder,
        "suite_version": results.suite_version,
    }
    cells = []
    for scenario in results.scenarios:
        outcomes = [check.outcome for check in scenario.checks]
        counts = {o.value: outcomes.count(o) for o in Outcome}
        xfailed = sum(c.expected_failure for c in scenario.checks)
        state = scenario_state(scenario.checks, results)
        cells.append(PairCell(**common, scenario=scenario.name, state=state, xfailed=xfailed, **counts))
    ran = {s.name for s in results.scenarios}
    for path in run.scenario_files:
        name = load_scenario(path).scenario.name
        if name not in ran:
            note = results.error or "the run ended before this scenario"
            cells.append(PairCell(**common, scenario=name, state="error", note=note))
    return cells


def scenario_state(checks: list[CheckResult], results: RunResults) -> str:
    """A pair x scenario cell: failed when a check failed (xfail when every failure was
    expected), error when one could not be carried out, passed when every check passed."""
    if any(c.outcome is Outcome.FAILED and not c.expected_failure for c in checks):
        return "failed"
    if any(c.outcome is Outcome.ERROR for c in checks) or (results.error and not checks):
        return "error"
    if any(c.expected_failure for c in checks):
        return "xfail"
    if checks and all(c.outcome is Outcome.PASSED for c in checks):
        return "passed"
    return "skipped" if checks else "untested"


def matrix_state(outcome: Outcome | None, xfail: str | None) -> str:
    """A requirement's cell: passed, failed, error, skipped, untested, or xfail (failed, as the
    registry expected)."""
    if outcome is None:
        return "untested"
    if outcome is Outcome.FAILED and xfail:
        return "xfail"
    return outcome.value


def implementation_row(placement: Placement, results: RunResults, folder: str) -> ImplementationRow:
    entry = placement.entry
    reported = next((i for i in results.implementations if i.node == placement.node), None)
    s = results.summary
    return ImplementationRow(
        name=entry.name,
        vendor=entry.vendor,
        product=entry.product,
        version=entry.version,
        role=entry.role.value,
        node=placement.node,
        reached_by=entry.reached_by,
        reported=" ".join(filter(None, [reported.product, reported.version])) or None if reported else None,
        run=folder,
        verdict=results.verdict,
        exit_code=results.exit_code,
        error=results.error,
        suite_version=results.suite_version,
        passed=s.passed,
        failed=s.failed,
        skipped=s.skipped,
        error_checks=s.error,
        xfailed=s.xfailed,
        xfail=dict(entry.xfail),
        cells={
            r.id: Cell(state=matrix_state(r.outcome, r.xfail), xfail=r.xfail, checks=r.checks)
            for r in results.requirements
            if r.role == entry.role.value
        },
    )


def matrix_exit_code(matrix: Matrix) -> int:
    """The worst of the runs, in the order a conformance run reports: an error (no verdict),
    a failure, an incomplete profile, else 0."""
    verdicts = {row.verdict for row in matrix.implementations}
    states = {pair.state for pair in matrix.pairs if pair.state != "not run"}
    if verdicts & {Verdict.ERROR, Verdict.INTERRUPTED} or "error" in states:
        return ExitCode.HARNESS_ERROR
    if Verdict.FAILS in verdicts or "failed" in states:
        return ExitCode.FAILED
    if Verdict.INCOMPLETE in verdicts:
        return ExitCode.INCOMPLETE
    return ExitCode.OK


def write_matrix(matrix: Matrix, out: Path) -> list[Path]:
    """matrix.json (the record), matrix.md and matrix.html (the same for people)."""
    from testbed.publish.matrix_report import matrix_html, matrix_markdown

    out.mkdir(parents=True, exist_ok=True)
    written = {
        out / "matrix.json": json.dumps(matrix.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n",
        out / "matrix.md": matrix_markdown(matrix),
        out / "matrix.html": matrix_html(matrix),
    }
    for path, text in written.items():
        path.write_text(text, encoding="utf-8")
    return list(written)
