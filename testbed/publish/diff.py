"""`testbed diff RUN_A RUN_B`: what changed from one run to the next, for CI gating.

New failures, new errors, fixed checks, checks added and removed, requirement coverage gained
and lost, a change of verdict, a change of suite version (then the runs are not like for like,
and the diff says so first), and for load runs the figures that moved by more than a
tolerance. A regression (a check that did not fail now fails or errors, a worse verdict, a MUST
requirement no longer tested, a load figure worse beyond the tolerance) makes the exit code 1.
A failure the implementations registry declared expected is listed, never a regression.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from testbed.errors import ConfigError
from testbed.publish.suite import short
from testbed.report.counts import tested
from testbed.report.model import CheckResult, Level, Outcome, RequestFigures, RunResults, Verdict

RESULTS = "results.json"
# How bad a verdict is: a run's verdict got worse when this rises.
VERDICT_RANK = {
    Verdict.CONFORMS: 0,
    Verdict.PASSES: 0,
    Verdict.INCOMPLETE: 1,
    Verdict.FAILS: 2,
    Verdict.ERROR: 2,
    Verdict.INTERRUPTED: 2,
}
LATENCIES = ("avg_ms", "50", "95", "99")  # RequestFigures.avg_ms and its percentiles_ms keys


class RunRef(BaseModel):
    path: str
    run_id: str
    kind: str
    verdict: Verdict
    suite_version: str


class CheckChange(BaseModel):
    check: str  # "<scenario>/<check id>"
    title: str
    before: Outcome | None  # None: not in that run
    after: Outcome | None
    requirements: list[str] = Field(default_factory=list)
    message: str = ""  # the later run's message (or the earlier one's, for a removed check)
    xfail: dict[str, str] = Field(default_factory=dict)


class CoverageChange(BaseModel):
    requirement: str
    level: Level
    before: str  # an outcome, or "untested"
    after: str


class PerformanceDelta(BaseModel):
    scope: str  # "overall" or a step
    metric: str  # "p95_ms", "avg_ms", "rps", "failure_rate"
    before: float
    after: float
    change: float  # percent of `before`; for failure_rate, percentage points
    worse: bool


class RunDiff(BaseModel):
    a: RunRef
    b: RunRef
    like_for_like: bool
    tolerance_percent: float
    failure_tolerance_points: float
    new_failures: list[CheckChange] = Field(default_factory=list)
    new_errors: list[CheckChange] = Field(default_factory=list)
    expected_failures: list[CheckChange] = Field(default_factory=list)  # newly failed, as the registry expected
    fixed: list[CheckChange] = Field(default_factory=list)
    added: list[CheckChange] = Field(default_factory=list)
    removed: list[CheckChange] = Field(default_factory=list)
    coverage_lost: list[CoverageChange] = Field(default_factory=list)
    coverage_gained: list[CoverageChange] = Field(default_factory=list)
    performance: list[PerformanceDelta] = Field(default_factory=list)  # the figures beyond the tolerance
    regressions: list[str] = Field(default_factory=list)  # one line each; empty: no regression

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions else 0


def load_run(given: Path) -> tuple[Path, RunResults]:
    """A run folder or its results.json, read into the results model; anything else is bad input."""
    path = given / RESULTS if given.is_dir() else given
    if not path.is_file():
        where = f"{given} holds no {RESULTS}" if given.is_dir() else f"{given}: no such run folder or results file"
        raise ConfigError(where)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable results file: {exc}") from None
    try:
        return path, RunResults.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        raise ConfigError(f"{path}: not a testbed results file ({where}: {first['msg']})") from None


def diff_runs(
    a: tuple[Path, RunResults], b: tuple[Path, RunResults], *, tolerance: float = 10.0, failure_tolerance: float = 1.0
) -> RunDiff:
    """What changed from run A to run B."""
    (path_a, run_a), (path_b, run_b) = a, b
    if run_a.kind != run_b.kind:
        raise ConfigError(f"{path_a} is a {run_a.kind} run and {path_b} a {run_b.kind} run: they do not compare")
    diff = RunDiff(
        a=_ref(path_a, run_a),
        b=_ref(path_b, run_b),
        like_for_like=bool(run_a.suite_version) and run_a.suite_version == run_b.suite_version,
        tolerance_percent=tolerance,
        failure_tolerance_points=failure_tolerance,
    )
    _compare_checks(diff, _checks(run_a), _checks(run_b))
    _compare_coverage(diff, run_a, run_b)
    if run_a.performance is not None and run_b.performance is not None:
        diff.performance = _performance(run_a, run_b, tolerance=tolerance, failure_tolerance=failure_tolerance)
    diff.regressions = list(_regressions(diff))
    return diff


def _ref(path: Path, results: RunResults) -> RunRef:
    return RunRef(
        path=str(path),
        run_id=results.run_id,
        kind=results.kind,
        verdict=results.verdict,
        suite_version=results.suite_version,
    )


def _checks(results: RunResults) -> dict[str, CheckResult]:
    return {f"{scenario.name}/{check.id}": check for scenario, check in results.all_checks()}


def _change(key: str, before: CheckResult | None, after: CheckResult | None) -> CheckChange:
    shown = after or before
    assert shown is not None
    return CheckChange(
        check=key,
        title=shown.title,
        before=before.outcome if before else None,
        after=after.outcome if after else None,
        requirements=shown.requirements,
        message=shown.message,
        xfail=after.xfail if after else {},
    )


def _compare_checks(diff: RunDiff, before: dict[str, CheckResult], after: dict[str, CheckResult]) -> None:
    for key, check in after.items():
        earlier = before.get(key)
        change = _change(key, earlier, check)
        was = earlier.outcome if earlier else None
        if earlier is None:
            diff.added.append(change)
        if check.outcome is Outcome.FAILED and was is not Outcome.FAILED:
            (diff.expected_failures if check.expected_failure else diff.new_failures).append(change)
        elif check.outcome is Outcome.ERROR and was is not Outcome.ERROR:
            diff.new_errors.append(change)
        elif check.outcome is Outcome.PASSED and was in (Outcome.FAILED, Outcome.ERROR):
            diff.fixed.append(change)
    diff.removed = [_change(key, check, None) for key, check in before.items() if key not in after]


def _coverage_state(outcome: Outcome | None) -> str:
    return outcome.value if outcome is not None else "untested"


def _compare_coverage(diff: RunDiff, run_a: RunResults, run_b: RunResults) -> None:
    """Requirements tested in one run and not in the other (a skipped check tests nothing)."""
    before = {r.id: r for r in run_a.requirements}
    after = {r.id: r for r in run_b.requirements}
    for requirement_id in sorted(before.keys() | after.keys()):
        old, new = before.get(requirement_id), after.get(requirement_id)
        was, now = old is not None and tested(old), new is not None and tested(new)
        if was == now:
            continue
        known = new or old
        assert known is not None
        change = CoverageChange(
            requirement=requirement_id,
            level=known.level,
            before=_coverage_state(old.outcome if old else None),
            after=_coverage_state(new.outcome if new else None),
        )
        (diff.coverage_lost if was else diff.coverage_gained).append(change)


def _figures(results: RunResults) -> dict[str, RequestFigures]:
    assert results.performance is not None
    return {"overall": results.performance.overall, **{s.name: s for s in results.performance.steps}}


def _metrics(figures: RequestFigures) -> dict[str, float]:
    found = {"avg_ms": figures.avg_ms, "rps": figures.rps, "failure_rate": figures.failure_rate}
    found |= {f"p{p}_ms": figures.percentiles_ms[p] for p in LATENCIES[1:] if p in figures.percentiles_ms}
    return found


def _performance(
    run_a: RunResults, run_b: RunResults, *, tolerance: float, failure_tolerance: float
) -> list[PerformanceDelta]:
    """The figures of steps both runs measured that moved by more than the tolerance: latency
    and throughput relative to run A, the failure rate in percentage points."""
    deltas = []
    before, after = _figures(run_a), _figures(run_b)
    for scope in [s for s in after if s in before]:
        old, new = _metrics(before[scope]), _metrics(after[scope])
        for metric in [m for m in new if m in old]:
            delta = _delta(scope, metric, old[metric], new[metric], tolerance, failure_tolerance)
            if delta is not None:
                deltas.append(delta)
    return deltas


def _delta(
    scope: str, metric: str, old: float, new: float, tolerance: float, failure_tolerance: float
) -> PerformanceDelta | None:
    if metric == "failure_rate":
        points = (new - old) * 100
        if abs(points) <= failure_tolerance:
            return None
        return PerformanceDelta(scope=scope, metric=metric, before=old, after=new, change=points, worse=points > 0)
    if old <= 0:
        return None  # no base to measure a change against
    percent = (new - old) / old * 100
    if abs(percent) <= tolerance:
        return None
    worse = percent < 0 if metric == "rps" else percent > 0  # fewer requests a second, or slower
    return PerformanceDelta(scope=scope, metric=metric, before=old, after=new, change=percent, worse=worse)


def _regressions(diff: RunDiff) -> Iterator[str]:
    if VERDICT_RANK[diff.b.verdict] > VERDICT_RANK[diff.a.verdict]:
        yield f"verdict {diff.a.verdict.value} -> {diff.b.verdict.value}"
    for change in diff.new_failures:
        yield f"new failure: {change.check} ({_was(change)}): {_first_line(change.message)}"
    for change in diff.new_errors:
        yield f"new error: {change.check} ({_was(change)}): {_first_line(change.message)}"
    for coverage in diff.coverage_lost:
        if coverage.level is Level.MUST:
            yield f"no longer tested: MUST requirement {coverage.requirement} (was {coverage.before})"
    for delta in diff.performance:
        if delta.worse:
            yield f"slower or less reliable: {delta.scope} {delta.metric} {_figure(delta)}"


def _was(change: CheckChange) -> str:
    return f"was {change.before.value}" if change.before else "a check run A did not have"


def _first_line(text: str, limit: int = 160) -> str:
    """A message's first line, cut to a length a CI log shows whole: results.json has the rest."""
    line = text.strip().splitlines()[0] if text.strip() else "no message"
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _figure(delta: PerformanceDelta) -> str:
    unit = " points" if delta.metric == "failure_rate" else "%"
    return f"{delta.before:.4g} -> {delta.after:.4g} ({delta.change:+.1f}{unit})"


def render_text(diff: RunDiff) -> list[str]:
    """The diff as a person reads it: the comparison first, the verdict of the diff last."""
    lines = [f"A: {diff.a.run_id} ({diff.a.verdict.value}, suite {short(diff.a.suite_version)})  {diff.a.path}"]
    lines.append(f"B: {diff.b.run_id} ({diff.b.verdict.value}, suite {short(diff.b.suite_version)})  {diff.b.path}")
    if not diff.like_for_like:
        lines.append(
            "suite version changed: the runs did not replay the same scenario and requirement files, so their "
            "results are not like for like"
            if diff.a.suite_version and diff.b.suite_version
            else "suite version unknown for a run (written before suite versions): not shown to be like for like"
        )
    sections = [
        ("new failures", diff.new_failures),
        ("new errors", diff.new_errors),
        ("newly failed as the registry expected (xfail)", diff.expected_failures),
        ("fixed", diff.fixed),
        ("checks only in B", diff.added),
        ("checks only in A", diff.removed),
    ]
    for title, changes in sections:
        lines += _section(title, [f"{c.check}: {_outcome(c.before)} -> {_outcome(c.after)}" for c in changes])
    lines += _section(
        "coverage lost", [f"{c.requirement} ({c.level.value}): {c.before} -> {c.after}" for c in diff.coverage_lost]
    )
    lines += _section(
        "coverage gained", [f"{c.requirement} ({c.level.value}): {c.before} -> {c.after}" for c in diff.coverage_gained]
    )
    lines += _section(
        f"load figures beyond the tolerance ({diff.tolerance_percent:g}%; failure rate "
        f"{diff.failure_tolerance_points:g} points)",
        [f"{'worse' if d.worse else 'better'}: {d.scope} {d.metric} {_figure(d)}" for d in diff.performance],
    )
    if diff.regressions:
        lines += _section("REGRESSIONS", diff.regressions)
    else:
        lines.append("no regression")
    return lines


def _outcome(outcome: Outcome | None) -> str:
    return outcome.value if outcome is not None else "absent"


def _section(title: str, items: list[str]) -> list[str]:
    return [f"{title} ({len(items)}):", *(f"  {item}" for item in items)] if items else []
