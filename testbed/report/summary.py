"""summary.md: the run on one page of Markdown, for a pull request, a mail or a wiki."""

from __future__ import annotations

from pathlib import Path

from testbed.report.counts import coverage as run_coverage
from testbed.report.counts import outcome_counts, problems, tested
from testbed.report.load_summary import ms, seconds
from testbed.report.model import RunResults, Verdict


def named(names: list[str], noun: str) -> str:
    """'the trust profile', 'the consent and trust profiles'."""
    if len(names) <= 1:
        return f"the {''.join(names)} {noun}"
    return f"the {', '.join(names[:-1])} and {names[-1]} {noun}s"


def coverage_scope(results: RunResults) -> str:
    """Whose requirements the coverage counts: ' of the trust role' when that is all of them."""
    roles = sorted({r.role for r in results.requirements})
    return f" of {named(roles, 'role')}" if results.profiles and roles == results.profiles else ""


def verdict_line(results: RunResults) -> str:
    """The verdict in one sentence, as every report states it first."""
    s = results.summary
    profiles = named(results.profiles, "profile")
    match results.verdict:
        case Verdict.ERROR:
            cause = results.error or f"{s.error} check(s) could not be carried out"
            return f"Error, no verdict on the implementations: {cause}"
        case Verdict.INTERRUPTED:
            return f"Interrupted, no verdict on the implementations: {results.error or 'the run was interrupted'}."
        case Verdict.FAILS:
            blocked = f", {s.must_blocked} could not run after an earlier failure" if s.must_blocked else ""
            target = f" to {profiles}" if results.profiles else ""
            return f"Does not conform{target}: {s.must_failed} check(s) of a MUST requirement failed{blocked}."
        case Verdict.INCOMPLETE if not s.must_untested and results.selection is not None:
            how = "stopped at the first failure" if results.selection.stopped_at else "ran a selection of its checks"
            return f"Incomplete, not shown to conform to {profiles}: no check failed, but the run {how}."
        case Verdict.INCOMPLETE:
            untested = ", ".join(s.must_untested)
            return (
                f"Incomplete, not shown to conform to {profiles}: no check failed, but "
                f"{len(s.must_untested)} MUST requirement(s) of the profile's role were not tested ({untested})."
            )
        case Verdict.CONFORMS:
            roles = "its role" if len(results.profiles) == 1 else "their roles"
            return f"Conforms to {profiles}: every MUST requirement of {roles} tested and passed."
    return "Every MUST check passed (no profile ran: requirements no check tested are not judged)."


def implementations_line(results: RunResults) -> str:
    under_test = [i for i in results.implementations if i.kind != "reference"]
    if not under_test:
        return f"Every node is a reference node ({len(results.implementations)})."
    named = [f"`{i.node}` ({i.role}, {i.kind} {i.image or i.public_url or ''})".replace(" )", ")") for i in under_test]
    return "Under test: " + ", ".join(named) + "."


def summary_markdown(results: RunResults) -> str:
    s = results.summary
    lines = [
        f"# {results.kind.capitalize()} run {results.run_id}: {results.verdict.value}",
        "",
        f"**{verdict_line(results)}**",
        "",
        *_selection_lines(results),
        *[
            f"The {m.role} profile catches {m.caught} of {m.total} known faulty variants of the {m.role} reference "
            f"node (mutation self-test, measured {m.measured})."
            for m in results.mutation_scores
        ],
        "",
        f"{s.total} checks: {s.passed} passed, {s.failed} failed{_xfailed(results)}, {s.skipped} skipped, "
        f"{s.error} errors; {run_coverage(results)} requirements{coverage_scope(results)} tested. "
        f"Exit code {results.exit_code}.",
        f"Network `{results.network.path}` (seed `{results.seed}`), {results.runtime} runtime, "
        f"harness {results.harness_version}" + (f" at {results.git_revision}" if results.git_revision else "") + ".",
        f"Suite version `{results.suite_version or 'not recorded'}`.",
        "",
        implementations_line(results),
        *registered_lines(results),
        "",
        "| scenario | passed | failed | skipped | error |",
        "| --- | --- | --- | --- | --- |",
    ]
    for scenario in results.scenarios:
        counts = outcome_counts(scenario.checks)
        lines.append(
            f"| {scenario.name} | {counts['passed']} | {counts['failed']} | {counts['skipped']} | {counts['error']} |"
        )
    found = problems(results)
    if found:
        lines += ["", "## Failed and errored checks", ""]
        lines += [
            f"- `{p.ref}` ({', '.join(p.check.requirements)}), {p.check.outcome}"
            + (" as expected (xfail)" if p.check.expected_failure else "")
            + f": {p.check.message}"
            for p in found
        ]
    lines += _xfail_lines(results)
    if results.performance is not None:
        perf = results.performance
        lines += ["", "## Performance", ""]
        lines.append(
            f"{perf.users} users for {seconds(perf.duration_s)}: {perf.overall.requests} requests, "
            f"{perf.overall.failures} failed, {perf.overall.rps:.1f} requests/s, "
            f"p95 {ms(perf.overall.percentiles_ms.get('95'))}."
        )
        lines += [f"- {f.occurrences} x `{f.step}` failed: {f.message}" for f in perf.failures]
        lines += [
            f"- {'passed' if t.passed else 'BREACHED'}: {t.scope} `{t.expression}`: {t.detail}" for t in perf.thresholds
        ]
    lines += _disagreements(results)
    untested = [r.id for r in results.requirements if not tested(r)]
    if untested:
        lines += ["", f"Requirements not tested in this run: {', '.join(untested)}."]
    return "\n".join(lines) + "\n"


def _xfailed(results: RunResults) -> str:
    return f" ({results.summary.xfailed} of them expected, xfail)" if results.summary.xfailed else ""


def registered_lines(results: RunResults) -> list[str]:
    """The implementations under test as the implementations registry declares them."""
    return [
        f"Registered: `{r.name}`, {r.product} {r.version} by {r.vendor} ({r.role}, {r.reached_by}), as node "
        f"`{r.node}`."
        for r in results.registered
    ]


def _xfail_lines(results: RunResults) -> list[str]:
    """Every requirement declared expected to fail, with its reason and what the run found."""
    declared = [r for r in results.requirements if r.xfail]
    if not declared:
        return []
    lines = ["", "## Expected failures (xfail), as the implementations registry declares them", ""]
    for requirement in declared:
        found = requirement.outcome.value if requirement.outcome is not None else "untested"
        lines.append(f"- **{requirement.id}** ({requirement.level.value}, {found} in this run): {requirement.xfail}")
    return lines


def _selection_lines(results: RunResults) -> list[str]:
    """A run of fewer checks than its scenarios hold says which, and how they were chosen."""
    chosen = results.selection
    if chosen is None:
        return []
    how = [f"`-k {p}`" for p in chosen.patterns]
    how += [f"the failures of {chosen.last_failed_from}"] if chosen.last_failed_from else []
    how += [f"`-x`, stopped after {chosen.stopped_at}"] if chosen.stopped_at else ["`-x`"] if chosen.exitfirst else []
    setup = f"; {len(chosen.setup)} earlier step(s) ran as setup only, not as checks" if chosen.setup else ""
    return [
        f"A selection: {len(chosen.selected)} check(s), chosen by {', '.join(how) or 'the command line'}{setup}.",
        "",
    ]


def _disagreements(results: RunResults) -> list[str]:
    """Requirements whose sources disagree, each reading, and which one this run's checks followed."""
    disputed = [r for r in results.requirements if r.readings]
    if not disputed:
        return []
    followed: dict[str, set[str]] = {}
    for _, check in results.all_checks():
        for requirement, reading in check.readings.items():
            followed.setdefault(requirement, set()).add(reading)
    lines = ["", "## Where the sources disagree", ""]
    for coverage in disputed:
        used = sorted(followed.get(coverage.id, set()))
        checked = f"checks of this run followed: {', '.join(used)}" if used else "no check of this run tested it"
        lines.append(f"- **{coverage.id}** ({checked})")
        lines += [f"  - `{reading.id}`: {reading.says} ({reading.source})" for reading in coverage.readings]
    return lines


def write_summary(results: RunResults, path: Path) -> None:
    path.write_text(summary_markdown(results), encoding="utf-8")
