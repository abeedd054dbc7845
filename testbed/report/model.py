"""The one results model every report format is written from.

A run holds scenario results; a scenario result holds checks (one per step); every check
names the requirement ids it verifies. Report writers only read this model, never raw data.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

# 1.1: suite_version, the implementations registry's entries (`registered`) and expected
# failures (`xfail` on checks and requirements, `summary.xfailed`); 1.0 files read as 1.1.
RESULTS_SCHEMA_VERSION = "1.1"


class Outcome(StrEnum):
    """What happened to one check (shared/DESIGN.md, "Outcomes")."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"  # not applicable, or not run because an earlier step did not deliver
    ERROR = "error"  # the harness or the environment failed, not the implementation


class Verdict(StrEnum):
    """What a run says about the implementations, first thing in every report."""

    CONFORMS = "conforms"  # a profile run: every MUST of the profile's role tested, and passed
    PASSES = "passes"  # no profile: every MUST check that ran passed (no claim of completeness)
    FAILS = "fails"  # a MUST check failed, or could not run because an earlier step failed
    INCOMPLETE = "incomplete"  # nothing failed, but a MUST of a profile's role went untested
    ERROR = "error"  # the harness or the environment failed: no verdict on the implementations
    INTERRUPTED = "interrupted"  # stopped by SIGINT or SIGTERM: the checks finished before it, no verdict


class Level(StrEnum):
    MUST = "MUST"
    SHOULD = "SHOULD"
    MAY = "MAY"


class HttpRequestRecord(BaseModel):
    method: str
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None


class HttpResponseRecord(BaseModel):
    status: int
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    elapsed_ms: float


class ExpectationResult(BaseModel):
    """One expectation of a step: what was expected, what was seen, and whether they agree."""

    what: str  # e.g. "status", "json $.active", "header content-type"
    expected: Any
    actual: Any
    passed: bool


class Evidence(BaseModel):
    request: HttpRequestRecord | None = None
    response: HttpResponseRecord | None = None
    expectations: list[ExpectationResult] = Field(default_factory=list)
    node: str | None = None  # the node the step talked to
    node_log_tail: list[str] = Field(default_factory=list)  # filled for failed and error checks


class CheckResult(BaseModel):
    id: str  # the step id, unique within its scenario
    title: str
    requirements: list[str]
    outcome: Outcome
    message: str = ""  # why it failed, errored or was skipped
    blocked_by: str | None = None  # skipped because this earlier step did not capture what it needs
    started: datetime
    duration_ms: float
    evidence: Evidence = Field(default_factory=Evidence)
    # Requirement id -> the reading of it this check follows, for requirements whose sources
    # disagree (the requirement's `readings`).
    readings: dict[str, str] = Field(default_factory=dict)
    # Requirement id -> why the implementations registry expects the implementation under test
    # to fail it (never a MUST). The outcome stays what happened; reports show both.
    xfail: dict[str, str] = Field(default_factory=dict)

    @property
    def expected_failure(self) -> bool:
        """A failed check all of whose requirements were declared expected to fail."""
        return self.outcome is Outcome.FAILED and bool(self.requirements) and set(self.requirements) <= set(self.xfail)


class ScenarioResult(BaseModel):
    name: str
    file: str
    sha256: str
    description: str = ""
    checks: list[CheckResult] = Field(default_factory=list)


class ReadingNote(BaseModel):
    """One reading of a requirement whose sources disagree (see the catalogue's `readings`)."""

    id: str
    says: str
    source: str


class RequirementCoverage(BaseModel):
    """A catalogue requirement and what this run learned about it."""

    id: str
    role: str
    level: Level
    statement: str
    source: str
    outcome: Outcome | None = None  # None: no check in this run verified it
    checks: list[str] = Field(default_factory=list)  # "<scenario>/<check id>"
    readings: list[ReadingNote] = Field(default_factory=list)  # where its sources disagree
    follows: str | None = None  # the reading the suite's checks follow unless a check says otherwise
    xfail: str | None = None  # why the implementations registry expects it to fail (the outcome is unchanged)


class ImplementationInfo(BaseModel):
    node: str
    role: str
    organisation: str
    kind: str  # "reference", "image" or "url"
    public_url: str | None = None  # None: not known, the run ended before the node was planned
    internal_url: str | None = None
    image: str | None = None  # the image under test (kind "image")
    product: str | None = None  # the implementation the node says it is (its /status or diagnostics)
    version: str | None = None  # the version it reports, when it says


class RegisteredImplementation(BaseModel):
    """An implementation under test as an implementations registry declares it (runs made by
    `testbed matrix`): who makes it, which node of the run's network it stood in for, and the
    requirements it is expected to fail, each with its reason."""

    name: str  # its id in the registry
    vendor: str
    product: str
    version: str
    role: str
    node: str  # the node of this run's network it stood in for
    reached_by: str  # "url <public url>" or "image <image>"
    xfail: dict[str, str] = Field(default_factory=dict)  # requirement id -> reason


class MutationScore(BaseModel):
    """How many known faulty variants of a role's reference node its profile catches, as last
    measured by `testbed selftest --record` on the current list of variants."""

    role: str
    caught: int
    total: int
    measured: str  # the date of the measurement


class InputFile(BaseModel):
    path: str
    sha256: str


class MachineInfo(BaseModel):
    platform: str
    python: str
    cpus: int


class Summary(BaseModel):
    total: int = 0
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    error: int = 0
    must_failed: int = 0  # failed checks that verify at least one MUST requirement
    must_blocked: int = 0  # MUST checks skipped because an earlier step failed
    must_untested: list[str] = Field(default_factory=list)  # MUSTs of a profile's role no check tested
    xfailed: int = 0  # failed checks whose every requirement was declared expected to fail (counted in `failed`)
    requirements_total: int = 0
    requirements_covered: int = 0


class Selection(BaseModel):
    """How a run replayed fewer checks than its scenarios hold (`-k`, `--last-failed`) or
    stopped early (`-x`). Such a run did not test everything, so it never conforms."""

    patterns: list[str] = Field(default_factory=list)  # -k: substrings of "<scenario>/<check id>" or a title
    last_failed_from: str | None = None  # --last-failed: the results.json whose failures were re-run
    exitfirst: bool = False  # -x: stop at the first failed or errored check
    selected: list[str] = Field(default_factory=list)  # "<scenario>/<check id>" chosen to run as checks
    # Earlier steps of a chosen check's scenario, run only to set up what it needs (its
    # captures, the state they leave): never reported as checks or counted.
    setup: list[str] = Field(default_factory=list)
    setup_not_passed: list[str] = Field(default_factory=list)  # "<scenario>/<step>: <outcome>: <message>"
    stopped_at: str | None = None  # -x: the check after which the replay stopped

    @property
    def partial(self) -> bool:
        """Whether the run left checks out: it chose some, or stopped before the end."""
        return bool(self.patterns or self.last_failed_from or self.stopped_at)


class RequestFigures(BaseModel):
    """What Locust measured for one step (or, as `overall`, for every request)."""

    name: str
    requests: int
    failures: int
    rps: float
    failure_rate: float
    avg_ms: float
    min_ms: float
    max_ms: float
    percentiles_ms: dict[str, float] = Field(default_factory=dict)  # "50", "95", "99.9", ...
    step_errors: int = 0  # passes of the step that failed before sending a request


class SeriesPoint(BaseModel):
    """One moment of a load run (Locust writes one a second)."""

    t: float  # seconds since the load started
    users: int
    rps: float
    failures_per_s: float
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None


class NodeSample(BaseModel):
    t: float
    cpu_percent: float
    rss_mb: float


class ThresholdOutcome(BaseModel):
    scope: str  # "overall" or a step id
    expression: str  # as written, e.g. "p(95)<200"
    actual: float | None
    passed: bool
    detail: str


class FailureRecord(BaseModel):
    """One kind of failed request of a load run, as Locust groups them: a step, a message and
    how often it happened."""

    step: str
    method: str = ""
    message: str
    occurrences: int


class SteadyState(BaseModel):
    """The run once every user had started (ramp-up left out), from the per-second series:
    throughput and failures averaged, percentiles as the median of the per-second values."""

    start_s: float  # seconds after the load began: the end of the ramp-up
    end_s: float
    rps: float
    failures_per_s: float
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None


class WindowFigures(RequestFigures):
    """The requests of a load run inside its fault windows, outside them, or in one window,
    from each request's own record (a request belongs to a window it overlaps), with its
    failures told apart by kind."""

    seconds: float  # how long that part of the run lasted
    refused: int = 0  # clean refusals: an error status with an error document, or no answer (refused, reset, timeout)
    wrong: int = 0  # wrong answers: an answer that is no error status, yet failed the step's checks
    other: int = 0  # the other failures: an error status without an error document, a retried step's attempts, ...
    wrong_by_step: dict[str, int] = Field(default_factory=dict)  # step id -> its wrong answers, most first


class FaultWindow(BaseModel):
    """One entry of a load run's fault schedule as the harness carried it out. Times are
    seconds after the load began."""

    entry: int  # its place in the schedule, from 1
    given: str  # where it was given: a scenario file's line, or the --fault option
    fault: str  # what it does, in words, with node names
    operation: str
    targets: list[str] = Field(default_factory=list)  # the node, or the link's two ends
    at_s: float  # when it was due
    for_s: float | None = None  # how long it was to hold; None: to the end of the run (a restart: until done)
    start_s: float | None = None  # when the harness began to do it; None: it was never done
    end_s: float | None = None  # when it was undone (or a restart done); None: not undone, it held to the end
    done: str = ""  # what was done, as the runtime or link proxy reported it
    undone: str = ""
    error: str | None = None  # why it could not be done or undone
    figures: WindowFigures | None = None  # the requests that overlapped this window


class FaultRun(BaseModel):
    """A load run's fault schedule as carried out, and its requests inside and outside the
    windows (None: the run recorded no requests one by one)."""

    windows: list[FaultWindow] = Field(default_factory=list)
    inside: WindowFigures | None = None
    outside: WindowFigures | None = None


class Performance(BaseModel):
    """The figures of a load run, per step and over time, with the thresholds checked."""

    users: int
    spawn_rate: float
    duration_s: float
    workers: int
    overall: RequestFigures
    steps: list[RequestFigures] = Field(default_factory=list)
    series: list[SeriesPoint] = Field(default_factory=list)
    step_series: dict[str, list[SeriesPoint]] = Field(default_factory=dict)  # step id -> its series
    nodes: dict[str, list[NodeSample]] = Field(default_factory=dict)  # node name -> samples
    thresholds: list[ThresholdOutcome] = Field(default_factory=list)
    failures: list[FailureRecord] = Field(default_factory=list)  # what failed, per step and message
    ramp_up_s: float = 0.0  # seconds until every user had started
    steady: SteadyState | None = None  # None: the run had no steady part (it ended while ramping up)
    stages: list[tuple[float, int]] = Field(default_factory=list)  # (end second, users) of a load shape
    files: list[str] = Field(default_factory=list)  # Locust's CSVs, next to the report
    faults: FaultRun | None = None  # a run with a fault schedule


class RunResults(BaseModel):
    schema_version: str = RESULTS_SCHEMA_VERSION
    kind: str = "conformance"
    run_id: str
    # The verdict first: a reader (or a script) must not have to scroll past a green table to
    # learn that the run ended in an error.
    verdict: Verdict = Verdict.ERROR  # set when the run is complete
    exit_code: int = 0
    error: str | None = None  # a harness or environment error that stopped the run
    harness_version: str
    # A digest ("sha256:<hex>") of the scenario (profile) and requirement files the run used,
    # by their paths and contents: two runs are like for like only when it is the same. Empty
    # in results written before suite versions existed.
    suite_version: str = ""
    git_revision: str | None = None
    started: datetime
    finished: datetime | None = None
    runtime: str
    seed: str
    network: InputFile
    scenario_files: list[InputFile] = Field(default_factory=list)
    implementations: list[ImplementationInfo] = Field(default_factory=list)
    registered: list[RegisteredImplementation] = Field(default_factory=list)  # `testbed matrix` runs only
    machine: MachineInfo
    # The roles whose conformance profile this run replayed: its requirement coverage is of
    # those roles, and it conforms only when every MUST of them was tested and passed.
    profiles: list[str] = Field(default_factory=list)
    mutation_scores: list[MutationScore] = Field(default_factory=list)
    scenarios: list[ScenarioResult] = Field(default_factory=list)
    requirements: list[RequirementCoverage] = Field(default_factory=list)
    summary: Summary = Field(default_factory=Summary)
    performance: Performance | None = None  # load runs only
    selection: Selection | None = None  # a conformance run with -k, --last-failed or -x
    # Where the run's time went: phase (plan, start, health, bootstrap, replay or load,
    # teardown) -> seconds, in the order they happened.
    phases: dict[str, float] = Field(default_factory=dict)
    # Docker runtime: per container, its CPU time and memory when the run ended.
    node_resources: dict[str, dict[str, Any]] = Field(default_factory=dict)

    def all_checks(self) -> list[tuple[ScenarioResult, CheckResult]]:
        return [(s, c) for s in self.scenarios for c in s.checks]
