"""The end-of-test summary of a load run in the terminal, as k6 users expect one: requests,
rate and failures, each step's latency percentiles, the steady state apart from the ramp-up,
the fault windows with the requests inside and outside them, what failed, and every threshold
by its own name."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from testbed.report.model import FaultRun, FaultWindow, Performance, RequestFigures, RunResults, WindowFigures

PERCENTILE_COLUMNS = ("50", "90", "95", "99")


def ms(value: float | None) -> str:
    """Milliseconds as a person reads them: whole ms from 10 up, one decimal below."""
    if value is None:
        return "-"
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def seconds(value: float) -> str:
    """'1h30m', '5m', '45s': the way durations are given on the command line."""
    whole = round(value)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs or not whole else ""]
    return "".join(parts)


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.2f}%" if whole else "0.00%"


def step_table(perf: Performance) -> Table:
    """Per step, in the scenario's order, then the total: counts, rate and latency."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("step", no_wrap=True)
    for name in ("requests", "failed", "req/s", "min", "avg", *(f"p{p}" for p in PERCENTILE_COLUMNS), "max"):
        table.add_column(name, justify="right", no_wrap=True)
    for figures in [*perf.steps, perf.overall]:
        table.add_row(*_step_cells(figures, total=figures is perf.overall))
    return table


def _step_cells(figures: RequestFigures, *, total: bool) -> list[Text | str]:
    failed = Text(str(figures.failures), style="bold red" if figures.failures else "dim")
    return [
        Text("total" if total else figures.name, style="bold" if total else ""),
        str(figures.requests),
        failed,
        f"{figures.rps:.1f}",
        ms(figures.min_ms),
        ms(figures.avg_ms),
        *(ms(figures.percentiles_ms.get(p)) for p in PERCENTILE_COLUMNS),
        ms(figures.max_ms),
    ]


def _headline(results: RunResults, perf: Performance) -> list[str]:
    overall = perf.overall
    scenario = results.scenarios[0].name if results.scenarios else "scenario"
    drivers = "one Locust process" if not perf.workers else f"a Locust master and {perf.workers} workers"
    lines = [
        f"{scenario}: {perf.users} users for {seconds(perf.duration_s)}, {drivers}",
        f"  requests ........ {overall.requests}  {overall.rps:.1f}/s",
        f"  failed .......... {overall.failures}  {percent(overall.failures, overall.requests)}",
    ]
    if perf.steady is not None:
        steady = perf.steady
        lines.append(
            f"  steady state .... {seconds(steady.start_s)} to {seconds(steady.end_s)}: {steady.rps:.1f} req/s, "
            f"{steady.failures_per_s:.2f} failures/s, p50 {ms(steady.p50_ms)}, p95 {ms(steady.p95_ms)}, "
            f"p99 {ms(steady.p99_ms)} (ramp-up {seconds(perf.ramp_up_s)} left out)"
        )
    else:
        lines.append("  steady state .... none: the run ended while users were still starting")
    return lines


def window_span(window: FaultWindow) -> str:
    """When a fault held, as it happened: "10.0 s to 18.4 s", or why it never did."""
    if window.start_s is None:
        return "never done"
    if window.end_s is None:
        return f"{window.start_s:.1f} s to the end"
    return f"{window.start_s:.1f} s to {window.end_s:.1f} s"


def fault_table(faults: FaultRun) -> Table:
    """The requests inside the fault windows (all of them, then each) and outside them:
    failures by kind, the failure rate, and latency."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("requests", no_wrap=True)
    for name in ("held", "requests", "failed", "rate", "refused", "wrong", "other", "p50", "p95"):
        table.add_column(name, justify="right", no_wrap=True)
    rows: list[tuple[str, str, WindowFigures | None]] = [
        ("inside faults", seconds(faults.inside.seconds) if faults.inside else "-", faults.inside),
        ("outside faults", seconds(faults.outside.seconds) if faults.outside else "-", faults.outside),
    ]
    rows += [(f"  fault {w.entry}: {w.fault}", window_span(w), w.figures) for w in faults.windows]
    for label, held, figures in rows:
        table.add_row(label, held, *_window_cells(figures))
    return table


def _window_cells(figures: WindowFigures | None) -> list[Text | str]:
    if figures is None:
        return ["-"] * 8
    wrong = Text(str(figures.wrong), style="bold red" if figures.wrong else "dim")
    return [
        str(figures.requests),
        str(figures.failures),
        percent(figures.failures, figures.requests),
        str(figures.refused),
        wrong,
        str(figures.other),
        ms(figures.percentiles_ms.get("50")),
        ms(figures.percentiles_ms.get("95")),
    ]


def print_load_summary(console: Console, results: RunResults) -> None:
    perf = results.performance
    if perf is None:
        return
    for line in _headline(results, perf):
        console.print(line)
    console.print(step_table(perf))
    if perf.faults is not None:
        console.print(Text("fault windows (a request overlapping a window counts inside it):", style="bold"))
        console.print(fault_table(perf.faults))
        inside = perf.faults.inside
        if inside is not None and inside.wrong_by_step:
            said = ", ".join(f"{step} {count}" for step, count in inside.wrong_by_step.items())
            console.print(Text(f"  wrong answers inside fault windows, by step: {said}", style="bold red"))
        for window in perf.faults.windows:
            if window.error:
                console.print(Text(f"  fault {window.entry} ({window.given}) {window.error}", style="bold red"))
    if perf.failures:
        console.print(Text("failures:", style="bold red"))
        for failure in perf.failures:
            console.print(Text(f"  {failure.occurrences} x {failure.step}: {failure.message}"))
    if perf.thresholds:
        console.print(Text("thresholds:", style="bold"))
    for outcome in perf.thresholds:
        mark = Text("  ✓ ", "green") if outcome.passed else Text("  ✗ ", "bold red")
        console.print(Text.assemble(mark, (f"{outcome.scope}: {outcome.expression}", "bold"), f"  {outcome.detail}"))
