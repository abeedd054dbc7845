"""What a person sees in the terminal during and after a run (the CLI passes its Console).

Text from the systems under test (messages, ids) is added as plain Text, never as rich
markup, so a "[" in a server's error message cannot restyle or break the output. A run ends
as pytest's does: where the reports are, a recap of what failed with a one-line reason each,
and the verdict as the very last line, so the tail of a CI log says what happened.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from testbed.report.counts import coverage, problems
from testbed.report.load_summary import print_load_summary
from testbed.report.model import CheckResult, Outcome, RunResults, ScenarioResult, Verdict
from testbed.report.summary import coverage_scope, verdict_line
from testbed.report.writers import report_paths

# Symbol and colour per outcome; the symbol keeps outcomes apart without colour too.
_MARKS: dict[Outcome, tuple[str, str]] = {
    Outcome.PASSED: ("✓", "green"),
    Outcome.FAILED: ("✗", "bold red"),
    Outcome.ERROR: ("!", "bold magenta"),
    Outcome.SKIPPED: ("-", "yellow"),
}

_COLUMNS = (Outcome.PASSED, Outcome.FAILED, Outcome.SKIPPED, Outcome.ERROR)
RECAP_LIMIT = 30  # past this many failures the recap names the rest by count: the report lists them all


def print_check(console: Console, scenario_name: str, check: CheckResult) -> None:
    """Print one line for a check that has just completed."""
    symbol, style = _MARKS[check.outcome]
    line = Text.assemble((f"{symbol} ", style), (f"{scenario_name}/{check.id}", "bold"))
    if check.requirements:
        line.append(f" [{', '.join(check.requirements)}]", "cyan")
    line.append(f" {check.duration_ms:.0f} ms", "dim")
    if check.outcome is not Outcome.PASSED and check.message:
        line.append(f"  {check.message}", style)
    if check.xfail:  # declared by the implementations registry: shown whatever the outcome
        line.append(f"  xfail: {_xfail_text(check.xfail)}", "yellow")
    console.print(line)


def _xfail_text(xfail: dict[str, str]) -> str:
    return "; ".join(f"{requirement}: {reason}" for requirement, reason in xfail.items())


def _tally(scenario: ScenarioResult) -> Counter[Outcome]:
    return Counter(check.outcome for check in scenario.checks)


def _count_cell(outcome: Outcome, count: int) -> Text:
    # Zero counts are dimmed so the eye lands on the non-zero ones.
    style = _MARKS[outcome][1] if count else "dim"
    return Text(str(count), style=style)


def _summary_table(results: RunResults) -> Table:
    table = Table(title=f"Run {results.run_id}", title_justify="left")
    table.add_column("Scenario", no_wrap=True)
    for outcome in _COLUMNS:
        table.add_column(outcome.value, justify="right")
    total: Counter[Outcome] = Counter()
    for index, scenario in enumerate(results.scenarios):
        tally = _tally(scenario)
        total.update(tally)
        last = index == len(results.scenarios) - 1
        cells = [_count_cell(outcome, tally[outcome]) for outcome in _COLUMNS]
        table.add_row(Text(scenario.name), *cells, end_section=last)
    table.add_row(Text("total", style="bold"), *[_count_cell(o, total[o]) for o in _COLUMNS])
    return table


_VERDICT_STYLES = {
    Verdict.CONFORMS: "bold green",
    Verdict.PASSES: "bold green",
    Verdict.FAILS: "bold red",
    Verdict.INCOMPLETE: "bold yellow",
    Verdict.ERROR: "bold magenta",
    Verdict.INTERRUPTED: "bold magenta",
}


def print_phases(console: Console, results: RunResults) -> None:
    """Where the run's time went: one line, phase by phase."""
    if not results.phases:
        return
    parts = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in results.phases.items())
    console.print(Text(f"time: {parts}", style="dim"))


def print_recap(console: Console, results: RunResults) -> None:
    """The failed and errored checks, one line each with their reason (pytest's short summary)."""
    found = problems(results)
    if not found:
        return
    console.print(Text(f"failed and errored checks ({len(found)}):", style="bold"))
    for problem in found[:RECAP_LIMIT]:
        symbol, style = _MARKS[problem.check.outcome]
        label = "XFAIL" if problem.check.expected_failure else problem.check.outcome.value.upper()
        line = Text.assemble(
            (f"{symbol} {label} ", "yellow" if problem.check.expected_failure else style),
            (problem.ref, "bold"),
            f" [{', '.join(problem.check.requirements)}]" if problem.check.requirements else "",
            f" - {problem.reason}",
        )
        console.print(line)
    if len(found) > RECAP_LIMIT:
        console.print(f"… and {len(found) - RECAP_LIMIT} more: see report.html or summary.md")


def print_xfail(console: Console, results: RunResults) -> None:
    """Every requirement the implementations registry declared expected to fail, with its
    reason and what the run found: never hidden, also when it passed."""
    declared = [r for r in results.requirements if r.xfail]
    if not declared:
        return
    console.print(Text(f"expected failures declared (xfail): {len(declared)}", style="bold yellow"))
    for requirement in declared:
        found = requirement.outcome.value if requirement.outcome is not None else "untested"
        console.print(Text(f"  {requirement.id} ({found}): {requirement.xfail}", style="yellow"))


def print_verdict(console: Console, results: RunResults) -> None:
    # A run error's whole text (a node's log tail, say) goes to stderr after this; its first line is enough here.
    line = verdict_line(results).splitlines()[0]
    console.print(Text(f"{results.verdict.value}: {line}", style=_VERDICT_STYLES[results.verdict]))


def print_summary(console: Console, results: RunResults, report_dir: Path) -> None:
    """The end of a run: its table (a load run: its end-of-test summary), coverage, time per
    phase, where the reports are, the recap of failures, and the verdict as the last line."""
    if results.performance is not None:
        print_load_summary(console, results)
    else:
        console.print(_summary_table(results))
    console.print(f"covered {coverage(results)} requirements{coverage_scope(results)}")
    if results.suite_version:
        console.print(Text(f"suite version {results.suite_version}", style="dim"))
    print_xfail(console, results)
    for score in results.mutation_scores:
        console.print(f"the {score.role} profile catches {score.caught} of {score.total} known faulty variants")
    print_phases(console, results)
    for name, path in report_paths(report_dir).items():
        console.print(Text.assemble((f"{name:<13}", "dim"), str(path)))
    print_recap(console, results)
    print_verdict(console, results)
