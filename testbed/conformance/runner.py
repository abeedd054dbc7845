"""A conformance run, front to back: load and check every input, start (or attach to) the
network, replay the scenarios, and fold the checks into one results model."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from protocols.xmldsig import SigningIdentity
from testbed import __version__, interrupts
from testbed.conformance.catalogue import Catalogue
from testbed.conformance.mutants import recorded_score
from testbed.conformance.selection import LastRun, check_key, choose
from testbed.errors import ConfigError, ExitCode, TestbedError
from testbed.faults.nodes import faults_undone, refuse_faults_on
from testbed.files import display_path
from testbed.network import NetworkOptions, RunningNetwork
from testbed.phases import PhaseTimer
from testbed.publish.suite import suite_version
from testbed.report.counts import requirements_covered
from testbed.report.model import (
    CheckResult,
    ImplementationInfo,
    InputFile,
    Level,
    MachineInfo,
    Outcome,
    ReadingNote,
    RequirementCoverage,
    RunResults,
    ScenarioResult,
    Selection,
    Summary,
    Verdict,
)
from testbed.runtime.state import RunFolder
from testbed.scenario.engine import Engine, StepChoice
from testbed.scenario.engine import Verdict as EngineVerdict
from testbed.scenario.loader import LoadedScenario, check_scenario, load_scenario, network_of, unfaultable
from testbed.scenario.transport import HttpxTransport
from testbed.topology import LoadedNetwork, UrlImplementation, load_network


@dataclass(kw_only=True)
class ConformanceOptions(NetworkOptions):
    scenario_paths: list[Path]
    on_check: Callable[[str, CheckResult], None] = lambda _s, _c: None
    scenarios: list[LoadedScenario] = field(default_factory=list)
    patterns: list[str] = field(default_factory=list)  # -k: run only the checks these match
    last_failed: LastRun | None = None  # --last-failed: run only the checks that failed in this run
    exitfirst: bool = False  # -x: stop at the first failed or errored check
    on_setup: Callable[[str, Outcome, str], None] = lambda _k, _o, _m: None  # a step run as setup only
    choices: list[StepChoice] | None = None  # per scenario, what a selection runs (None: everything)


def collect_scenario_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(path.glob("*.yaml")))
        elif path.exists():
            files.append(path)
        else:
            raise ConfigError(f"{path}: no such scenario file or folder")
    if not files:
        raise ConfigError(f"no scenario files (*.yaml) in {', '.join(map(str, paths))}")
    return files


def prepare(options: ConformanceOptions, catalogue: Catalogue) -> LoadedNetwork:
    """Everything that can be wrong with the inputs is found here, before a node starts."""
    options.scenarios = [load_scenario(p) for p in collect_scenario_files(options.scenario_paths)]
    network_path = options.network_path or options.scenarios[0].network_path
    if options.network_path is None:
        others = {s.path for s in options.scenarios if s.network_path != network_path}
        if others:
            raise ConfigError(
                f"one run uses one network: {', '.join(map(str, sorted(others)))} name another network than "
                f"{network_path}; run them separately or pass --network"
            )
    runtime = None if options.attach else options.runtime  # an attached network runs already
    if options.network_path is None:
        loaded = network_of(options.scenarios[0], runtime=runtime)  # a problem names the scenario's line
    else:
        loaded = load_network(network_path, runtime=runtime)
    for scenario in options.scenarios:
        check_scenario(scenario, loaded.network, catalogue)
    if runtime is not None:
        refuse_faults_on(runtime, options.scenarios)
    if options.patterns or options.last_failed is not None:  # nothing matched: said before a node starts
        only = options.last_failed.failed if options.last_failed is not None else None
        options.choices = choose(options.scenarios, patterns=options.patterns, only=only)
    return loaded


def selection_of(options: ConformanceOptions) -> Selection | None:
    """What the results record of a run's selection; None for a plain run."""
    if options.choices is None and not options.exitfirst:
        return None
    chosen = zip(options.scenarios, options.choices or [], strict=False)
    return Selection(
        patterns=options.patterns,
        last_failed_from=display_path(options.last_failed.results) if options.last_failed else None,
        exitfirst=options.exitfirst,
        selected=[
            check_key(s.scenario.name, step.id) for s, c in chosen for step in s.scenario.steps if step.id in c.checks
        ],
    )


def run_conformance(options: ConformanceOptions) -> RunResults:
    catalogue = Catalogue.load()
    loaded = prepare(options, catalogue)
    results = base_results(options.folder.run_id, options.runtime, loaded, scenarios=options.scenarios)
    results.profiles = sorted({s.scenario.profile for s in options.scenarios if s.scenario.profile})
    results.mutation_scores = [score for role in results.profiles if (score := recorded_score(role))]
    results.selection = selection_of(options)
    return run_on_network(
        options,
        loaded,
        results,
        catalogue=catalogue,
        work=lambda running: _replay(options, loaded, running, results),
        roles=coverage_roles(options.scenarios, catalogue),
    )


def coverage_roles(scenarios: list[LoadedScenario], catalogue: Catalogue) -> set[str]:
    """Whose requirements a conformance run reports: a run of profiles only, their roles'; a
    run with use-case scenarios, every role's but those of load runs."""
    profiles = {s.scenario.profile for s in scenarios}
    if None not in profiles:
        return {p for p in profiles if p}
    return set(catalogue.by_role) - {"load"}


def _split_start(phases: dict[str, float], *, started: dict[str, float]) -> None:
    """The network's own account of starting (plan, nodes up, identity, bootstrap) in place of
    the one "start" figure; what it does not account for stays as "start (other)"."""
    total = phases.pop("start", 0.0)
    if not started:
        phases["start"] = total
        return
    phases.update(started)
    rest = round(total - sum(started.values()), 3)
    if rest > 0.05:
        phases["start (other)"] = rest


def run_on_network(
    options: NetworkOptions,
    loaded: LoadedNetwork,
    results: RunResults,
    *,
    catalogue: Catalogue,
    work: Callable[[RunningNetwork], None],
    roles: set[str] | None = None,
) -> RunResults:
    """Do a run's work on its network, whatever fails, then complete the results: an error of
    the harness or the environment, the containers' resource use, the end time, the verdict.
    `roles`: whose requirements the coverage reports (None: every role's)."""
    interrupts.resume()  # an interrupt held since the previous run of this process ends this one
    before = interrupts.received()
    stopped = False
    timer = PhaseTimer(results.phases)  # where the time went, for the terminal and results.json
    try:
        with options.network(loaded) as running:
            timer.lap("start")  # plan, start, health checks and bootstrap of the network
            _split_start(results.phases, started=running.state.phases if not options.attach else {})
            results.implementations = implementations(running)
            try:
                work(running)
            finally:
                timer.lap("load" if results.kind == "load" else "replay")
    except TestbedError as exc:
        results.error = str(exc)
    except KeyboardInterrupt:  # the network is down already: its teardown ran on the way out
        stopped = True
    interrupts.hold()  # from here the results are made final; an interrupt can no longer cut that short
    timer.lap("teardown" if "replay" in results.phases or "load" in results.phases else "start (failed) and teardown")
    results.node_resources = node_resources(options.folder)
    results.finished = datetime.now(UTC)
    finalise(results, catalogue, roles)
    if stopped or interrupts.received() > before:  # also one during teardown, which went on
        mark_interrupted(results)
        raise RunInterrupted(results)
    return results


class RunInterrupted(KeyboardInterrupt):
    """A run ended by SIGINT or SIGTERM, carrying its final results: the checks finished before
    the interrupt, verdict interrupted. A caller that does not look for it sees the interrupt."""

    def __init__(self, results: RunResults) -> None:
        super().__init__("interrupted")
        self.results = results


def mark_interrupted(results: RunResults) -> None:
    """Whatever the checks finished so far say, an interrupted run reaches no verdict; its exit
    code is the one the process ends with."""
    checks = results.summary.total
    results.verdict, results.exit_code = Verdict.INTERRUPTED, interrupts.INTERRUPTED
    cause = f"the run was interrupted (SIGINT or SIGTERM) after {checks} check{'s' if checks != 1 else ''}"
    results.error = f"{cause}; before that: {results.error}" if results.error else cause


def node_resources(folder: RunFolder) -> dict[str, dict[str, Any]]:
    """What the docker runtime recorded per container at teardown (nothing for processes)."""
    path = folder.logs_dir / "resources.json"
    with contextlib.suppress(OSError, ValueError):
        recorded = json.loads(path.read_text(encoding="utf-8"))
        return recorded if isinstance(recorded, dict) else {}
    return {}


def base_results(run_id: str, runtime: str, loaded: LoadedNetwork, *, scenarios: list[LoadedScenario]) -> RunResults:
    """What every run records to be reproducible, before anything has run."""
    return RunResults(
        run_id=run_id,
        harness_version=__version__,
        suite_version=suite_version([s.path for s in scenarios]),
        git_revision=_git_revision(),
        started=datetime.now(UTC),
        runtime=runtime,
        seed=loaded.network.seed,
        network=InputFile(path=display_path(loaded.path), sha256=loaded.sha256),
        scenario_files=[InputFile(path=display_path(s.path), sha256=s.sha256) for s in scenarios],
        machine=MachineInfo(platform=platform.platform(), python=platform.python_version(), cpus=os.cpu_count() or 1),
        implementations=declared_implementations(loaded),
    )


def declared_implementations(loaded: LoadedNetwork) -> list[ImplementationInfo]:
    """The nodes as the network file names them, so that a report lists what was under test
    even when the run ends before the network is up."""
    infos = []
    for organisation, node in loaded.network.nodes():
        implementation = node.implementation
        url = implementation if isinstance(implementation, UrlImplementation) else None
        infos.append(
            ImplementationInfo(
                node=node.name,
                role=node.role.value,
                organisation=organisation.id,
                kind="url" if url else "image" if node.image else "reference",
                public_url=url.url if url else None,
                internal_url=(url.internal_url or url.url) if url else None,
                image=node.image,
            )
        )
    return infos


def _replay(options: ConformanceOptions, loaded: LoadedNetwork, running: RunningNetwork, results: RunResults) -> None:
    # Fault steps go through `faults`; whatever ends the replay, no fault outlives it.
    with (
        running.client() as client,
        running.client(certificate=False) as anonymous,
        faults_undone(running, progress=options.on_progress) as faults,
    ):
        # `run.id` is this replay's own id, unique even when replaying against a network
        # that `testbed up` started earlier (whose id is `network.run_id`).
        context = {
            **running.state.context,
            "run": {"id": options.folder.run_id},
            "user": {"index": 0, "iteration": 1},  # a load run has many users; a conformance run one
        }
        # Through the run's link proxy while a link from the harness is faulted, straight otherwise.
        transport = faults.route(HttpxTransport(client, anonymous))
        engine = Engine(loaded.network, context, transport, running.log_tail, _signer(running), faults=faults.step)
        choices: list[StepChoice | None] = [*options.choices] if options.choices else [None] * len(options.scenarios)
        for scenario, choice in zip(options.scenarios, choices, strict=True):
            if choice is not None and not choice.checks:
                continue  # a selection chose none of its checks
            _replay_scenario(engine, scenario, choice=choice, options=options, results=results)
            faults.end_scenario(scenario.scenario.name)
            if results.selection is not None and results.selection.stopped_at:
                options.on_progress(f"stopped after {results.selection.stopped_at} (-x): later checks not run")
                break


def _replay_scenario(
    engine: Engine,
    scenario: LoadedScenario,
    choice: StepChoice | None,
    options: ConformanceOptions,
    results: RunResults,
) -> None:
    name = scenario.scenario.name
    options.on_progress(f"scenario {name} ({_steps_told(len(scenario.scenario.steps), choice)})")
    if (reason := unfaultable(scenario.scenario, engine.network)) is not None:
        _skip_scenario(scenario, reason, options=options, results=results)
        return
    # Checks join the results as they finish: an interrupt mid-scenario keeps them.
    partial = ScenarioResult(
        name=name, file=scenario.display_path, sha256=scenario.sha256, description=scenario.scenario.description
    )
    results.scenarios.append(partial)
    finished = engine.run(
        scenario,
        functools.partial(_keep_check, partial, options.on_check),
        choice=choice,
        on_setup=lambda step, verdict: _keep_setup(options, results, check_key(name, step.id), verdict),
        stop_after=lambda check: _stops(options, results, check_key(name, check.id), check),
    )
    results.scenarios[-1] = finished


def _skip_scenario(
    scenario: LoadedScenario, reason: str, *, options: ConformanceOptions, results: RunResults
) -> None:
    """Every step of a scenario that cannot run, as a skipped check saying why."""
    skipped = ScenarioResult(
        name=scenario.scenario.name,
        file=scenario.display_path,
        sha256=scenario.sha256,
        description=scenario.scenario.description,
    )
    for step in scenario.scenario.steps:
        check = CheckResult(
            id=step.id,
            title=step.title,
            requirements=step.requirements,
            readings=dict(step.readings),
            outcome=Outcome.SKIPPED,
            message=reason,
            started=datetime.now(UTC),
            duration_ms=0.0,
        )
        skipped.checks.append(check)
        options.on_check(scenario.scenario.name, check)
    results.scenarios.append(skipped)


def _steps_told(total: int, choice: StepChoice | None) -> str:
    if choice is None:
        return f"{total} steps"
    return f"{len(choice.checks)} of {total} steps chosen, {len(choice.setup)} earlier one(s) run as setup"


def _keep_setup(options: ConformanceOptions, results: RunResults, key: str, verdict: EngineVerdict) -> None:
    """A step run only as a chosen check's setup: named in the selection, never a check."""
    assert results.selection is not None
    results.selection.setup.append(key)
    if verdict.outcome != Outcome.PASSED:
        results.selection.setup_not_passed.append(f"{key}: {verdict.outcome.value}: {verdict.message}")
    options.on_setup(key, verdict.outcome, verdict.message)


def _stops(options: ConformanceOptions, results: RunResults, key: str, check: CheckResult) -> bool:
    """-x: the replay ends after the first failed or errored check."""
    if not options.exitfirst or check.outcome not in (Outcome.FAILED, Outcome.ERROR):
        return False
    assert results.selection is not None
    results.selection.stopped_at = key
    return True


def _keep_check(partial: ScenarioResult, on_check: Callable[[str, CheckResult], None], check: CheckResult) -> None:
    partial.checks.append(check)
    on_check(partial.name, check)


def _signer(running: RunningNetwork) -> SigningIdentity | None:
    """The harness signs with the key and certificate it presents in mutual TLS."""
    state = running.state
    if not state.client_cert:
        return None
    return SigningIdentity.from_files(Path(state.client_cert), Path(state.client_key))


def implementations(running: RunningNetwork) -> list[ImplementationInfo]:
    """The nodes as planned, with the version each reported when its role was asked."""
    return [
        ImplementationInfo(
            node=node.plan.name,
            role=node.plan.role.value,
            organisation=node.plan.organisation,
            kind=node.plan.kind,
            public_url=node.plan.public_url,
            internal_url=node.plan.internal_url,
            image=node.plan.image,
            product=node.product,
            version=node.version,
        )
        for node in running.state.nodes
    ]


def finalise(results: RunResults, catalogue: Catalogue, roles: set[str] | None = None) -> None:
    """Requirement coverage (of `roles`, or of every role), the summary counts, the verdict
    and the exit code."""
    verified: dict[str, list[tuple[str, CheckResult]]] = {}
    for scenario, check in results.all_checks():
        for requirement_id in check.requirements:
            verified.setdefault(requirement_id, []).append((scenario.name, check))
            follows = catalogue.get(requirement_id)[1].follows if requirement_id in catalogue else None
            if follows is not None:
                check.readings.setdefault(requirement_id, follows)
    results.requirements = [
        RequirementCoverage(
            id=req.id,
            role=role,
            level=req.level,
            statement=req.statement,
            source=req.source,
            readings=[ReadingNote(id=r.id, says=r.says, source=r.source) for r in req.readings],
            follows=req.follows,
            outcome=_combined([c.outcome for _, c in verified.get(req.id, [])]),
            checks=[f"{s}/{c.id}" for s, c in verified.get(req.id, [])],
        )
        for role, req in catalogue.all()
        if roles is None or role in roles
    ]
    checks = [c for _, c in results.all_checks()]
    count = {o: sum(c.outcome == o for c in checks) for o in Outcome}

    def verifies_must(check: CheckResult) -> bool:
        return any(catalogue.get(r)[1].level == Level.MUST for r in check.requirements)

    must_failed = sum(c.outcome == Outcome.FAILED and verifies_must(c) for c in checks)
    # A MUST check that could not run because an earlier step failed has not passed either.
    must_blocked = sum(c.outcome == Outcome.SKIPPED and c.blocked_by is not None and verifies_must(c) for c in checks)
    # A profile is its role's contract: a MUST of the role that no check tested leaves the
    # verdict open, however well everything else went.
    must_untested = [
        r.id
        for r in results.requirements
        if r.role in results.profiles and r.level == Level.MUST and r.outcome in (None, Outcome.SKIPPED)
    ]
    results.summary = Summary(
        total=len(checks),
        passed=count[Outcome.PASSED],
        failed=count[Outcome.FAILED],
        skipped=count[Outcome.SKIPPED],
        error=count[Outcome.ERROR],
        must_failed=must_failed,
        must_blocked=must_blocked,
        must_untested=must_untested,
        requirements_total=len(results.requirements),
        requirements_covered=requirements_covered(results.requirements),  # the rule every report counts by
    )
    if results.error or not checks:
        results.verdict, results.exit_code = Verdict.ERROR, ExitCode.HARNESS_ERROR  # the run did not complete
    elif must_failed or must_blocked:
        results.verdict, results.exit_code = Verdict.FAILS, ExitCode.FAILED
    elif count[Outcome.ERROR]:  # a check could not be carried out: no verdict either way
        results.verdict, results.exit_code = Verdict.ERROR, ExitCode.HARNESS_ERROR
    elif must_untested:
        results.verdict, results.exit_code = Verdict.INCOMPLETE, ExitCode.INCOMPLETE
    else:
        results.verdict = Verdict.CONFORMS if results.profiles else Verdict.PASSES
        results.exit_code = ExitCode.OK
    if results.verdict == Verdict.CONFORMS and results.selection is not None and results.selection.partial:
        # Checks were left out (-k, --last-failed) or never reached (-x): not shown to conform.
        results.verdict, results.exit_code = Verdict.INCOMPLETE, ExitCode.INCOMPLETE


def _combined(outcomes: list[Outcome]) -> Outcome | None:
    for worst in (Outcome.FAILED, Outcome.ERROR):
        if worst in outcomes:
            return worst
    if Outcome.PASSED in outcomes:
        return Outcome.PASSED
    return Outcome.SKIPPED if outcomes else None


def _git_revision() -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None
