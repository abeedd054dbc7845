"""What a person sees in the terminal during and after a run (the CLI passes its Console).

Text from the systems under test (messages, ids) is added as plain Text, never as rich
markup, so a "[" in a server's error message cannot restyle or break the output.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

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


def print_check(console: Console, scenario_name: str, check: CheckResult) -> None:
    """Print one line for a check that has just completed."""
    symbol, style = _MARKS[check.outcome]
    line = Text.assemble((f"{symbol} ", style), (f"{scenario_name}/{check.id}", "bold"))
    if check.requirements:
        line.append(f" [{', '.join(check.requirements)}]", "cyan")
    line.append(f" {check.duration_ms:.0f} ms", "dim")
    if check.outcome is not Outcome.PASSED and check.message:
        line.append(f"  {check.message}", style)
    console.print(line)


def _tally(scenario: ScenarioResult) -> Counter[Outcome]:
    return Counter(check.outcome for check in scenario.checks)


def _count_cell(outcome: Outcome, count: int) -> Text:
    # Zero counts are dimmed so the eye lands on the non-zero ones.
    style = _MARKS[outcome][1] if count else "dim"
    return Text(str(count), style=style)


def _summary_table(results: RunResults) -> Table:
    table = Table(title=f"Run {results.run_id}", title_justify="left")
    table.add_column("Scenario")
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
}


def print_summary(console: Console, results: RunResults, report_dir: Path) -> None:
    """Print the end-of-run table, the requirement coverage, the verdict and where the reports are."""
    console.print(_summary_table(results))
    covered = sum(1 for req in results.requirements if req.outcome is not None)
    console.print(f"covered {covered} of {len(results.requirements)} requirements{coverage_scope(results)}")
    for score in results.mutation_scores:
        console.print(f"the {score.role} profile catches {score.caught} of {score.total} known faulty variants")
    # A run error's whole text (a node's log tail, say) goes to stderr after this; its first line is enough here.
    line = verdict_line(results).splitlines()[0]
    console.print(Text(f"{results.verdict.value}: {line}", style=_VERDICT_STYLES[results.verdict]))
    for name, path in report_paths(report_dir).items():
        console.print(Text.assemble((f"{name:<13}", "dim"), str(path)))
