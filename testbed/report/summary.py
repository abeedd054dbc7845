"""summary.md: the run on one page of Markdown, for a pull request, a mail or a wiki."""

from __future__ import annotations

from pathlib import Path

from testbed.report.model import Outcome, RunResults


def summary_markdown(results: RunResults) -> str:
    s = results.summary
    verdict = "error: " + results.error if results.error else ("fails" if results.exit_code else "passes")
    lines = [
        f"# {results.kind.capitalize()} run {results.run_id}: {verdict}",
        "",
        f"{s.total} checks: {s.passed} passed, {s.failed} failed, {s.skipped} skipped, {s.error} errors; "
        f"{s.requirements_covered} of {s.requirements_total} requirements tested. Exit code {results.exit_code}.",
        f"Network `{results.network.path}` (seed `{results.seed}`), {results.runtime} runtime, "
        f"harness {results.harness_version}" + (f" at {results.git_revision}" if results.git_revision else "") + ".",
        "",
        "| scenario | passed | failed | skipped | error |",
        "| --- | --- | --- | --- | --- |",
    ]
    for scenario in results.scenarios:
        counts = {o: sum(1 for c in scenario.checks if c.outcome == o) for o in Outcome}
        lines.append(
            f"| {scenario.name} | {counts[Outcome.PASSED]} | {counts[Outcome.FAILED]} | "
            f"{counts[Outcome.SKIPPED]} | {counts[Outcome.ERROR]} |"
        )
    problems = [(sc, c) for sc, c in results.all_checks() if c.outcome in (Outcome.FAILED, Outcome.ERROR)]
    if problems:
        lines += ["", "## Failed and errored checks", ""]
        lines += [f"- `{sc.name}/{c.id}` ({', '.join(c.requirements)}), {c.outcome}: {c.message}" for sc, c in problems]
    if results.performance is not None:
        perf = results.performance
        lines += ["", "## Performance", ""]
        lines.append(
            f"{perf.users} users for {perf.duration_s:.0f} s: {perf.overall.requests} requests, "
            f"{perf.overall.failures} failed, {perf.overall.rps:.1f} requests/s, "
            f"p95 {perf.overall.percentiles_ms.get('95', '-')} ms."
        )
        lines += [
            f"- {'passed' if t.passed else 'BREACHED'}: {t.scope} `{t.expression}`: {t.detail}" for t in perf.thresholds
        ]
    untested = [r.id for r in results.requirements if r.outcome is None]
    if untested:
        lines += ["", f"Requirements not tested in this run: {', '.join(untested)}."]
    return "\n".join(lines) + "\n"


def write_summary(results: RunResults, path: Path) -> None:
    path.write_text(summary_markdown(results), encoding="utf-8")
