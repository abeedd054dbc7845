"""The load report's charts, drawn in the page by plotly.js (MIT licensed, maintained by Plotly).

The library is the minified file the `plotly` package from PyPI ships; it is written into the
report itself, so report.html stays one file that opens offline. This module only builds each
chart's figure (data and layout, as plotly.js takes them) from the results model: axes with
units and gridlines, tooltips, the ramp-up, every stage boundary and every fault window
marked, and a distinct colour (then a distinct dash) for each node and step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from testbed.report.model import FaultWindow, Performance, SeriesPoint

# Twelve colours a reader tells apart (a qualitative palette); past twelve lines the dash changes.
COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a",
)  # fmt: skip
DASHES = ("solid", "dash", "dot", "dashdot")
FAULT_COLOUR = "#d62728"
TIME_AXIS = "seconds since the load began"


@dataclass(frozen=True)
class Chart:
    """One chart of the report: an element id, its title, and the figure plotly.js draws."""

    id: str
    title: str
    figure: dict[str, Any]

    @property
    def empty(self) -> bool:
        return not any(trace["x"] for trace in self.figure["data"])


@lru_cache(maxsize=1)
def plotly_js() -> str:
    """The library's minified source, with its licence banner, as the `plotly` package ships it."""
    return resources.files("plotly").joinpath("package_data/plotly.min.js").read_text(encoding="utf-8")


def style(index: int) -> dict[str, Any]:
    """The line style of the index-th series: its own colour, and a new dash once colours repeat."""
    return {"color": COLOURS[index % len(COLOURS)], "dash": DASHES[(index // len(COLOURS)) % len(DASHES)], "width": 2}


def trace(name: str, points: list[tuple[float, float]], index: int, *, unit: str, axis: str = "y") -> dict[str, Any]:
    return {
        "type": "scatter",
        "mode": "lines",
        "name": name,
        "x": [x for x, _ in points],
        "y": [y for _, y in points],
        "yaxis": axis,
        "line": style(index),
        # Our own unit only: the trace's name (a step or node, from input files) is shown as text.
        "hovertemplate": f"%{{y:.4~g}} {unit}",
    }


def marks(perf: Performance) -> list[dict[str, Any]]:
    """Shapes behind every chart: the ramp-up shaded, each stage's end a dashed line, each
    fault window a red band named after its fault."""
    shapes: list[dict[str, Any]] = []
    if perf.ramp_up_s > 0:
        shapes.append(
            {"type": "rect", "xref": "x", "yref": "paper", "x0": 0, "x1": perf.ramp_up_s, "y0": 0, "y1": 1,
             "fillcolor": "#999", "opacity": 0.15, "line": {"width": 0}, "layer": "below",
             "label": {"text": "ramp-up", "textposition": "top center", "font": {"size": 11}}}
        )  # fmt: skip
    for end, users in perf.stages[:-1]:
        shapes.append(
            {"type": "line", "xref": "x", "yref": "paper", "x0": end, "x1": end, "y0": 0, "y1": 1,
             "line": {"dash": "dot", "width": 1, "color": "#555"},
             "label": {"text": f"{users} users", "textposition": "end", "font": {"size": 10}}}
        )  # fmt: skip
    if perf.faults is not None:
        end_of_run = max([perf.duration_s, *(p.t for p in perf.series[-1:])])
        shapes.extend(fault_band(w, end_of_run) for w in perf.faults.windows if w.start_s is not None)
    return shapes


def fault_band(window: FaultWindow, end_of_run: float) -> dict[str, Any]:
    """A fault window from the moment its fault was done to the moment it was undone (a fault
    never undone, or undone after the load, to the end of the run)."""
    start = window.start_s or 0.0
    end = min(window.end_s if window.end_s is not None else end_of_run, end_of_run)
    return {
        "type": "rect", "xref": "x", "yref": "paper", "x0": start, "x1": max(end, start), "y0": 0, "y1": 1,
        "fillcolor": FAULT_COLOUR, "opacity": 0.12, "line": {"color": FAULT_COLOUR, "width": 1}, "layer": "below",
        "name": f"fault {window.entry}",
        "label": {"text": f"fault {window.entry}: {window.fault}", "textposition": "top left",
                  "font": {"size": 10, "color": FAULT_COLOUR}},
    }  # fmt: skip


def layout(title: str, unit: str, perf: Performance, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "x": 0, "xanchor": "left"},
        "height": 340,
        "margin": {"l": 70, "r": 70, "t": 50, "b": 60},
        "hovermode": "x unified",
        "legend": {"orientation": "h", "y": -0.28},
        "xaxis": {"title": {"text": TIME_AXIS}, "ticksuffix": " s", "showgrid": True, "zeroline": False},
        "yaxis": {"title": {"text": unit}, "showgrid": True, "rangemode": "tozero"},
        "shapes": marks(perf),
        **extra,
    }


def _series(points: list[SeriesPoint], pick: str) -> list[tuple[float, float]]:
    return [(p.t, value) for p in points if (value := getattr(p, pick)) is not None]


def latency_chart(perf: Performance) -> Chart:
    data = [
        trace(label, _series(perf.series, f"{label}_ms"), index, unit="ms")
        for index, label in enumerate(("p50", "p95", "p99"))
    ]
    return Chart("chart-latency", "Latency percentiles, every request", {"data": data, "layout": layout(
        "Latency percentiles, every request", "milliseconds", perf)})  # fmt: skip


def step_latency_chart(perf: Performance) -> Chart:
    """p95 of each step over time, in the scenario's order."""
    order = [figures.name for figures in perf.steps if figures.name in perf.step_series]
    data = [trace(name, _series(perf.step_series[name], "p95_ms"), i, unit="ms") for i, name in enumerate(order)]
    title = "p95 latency per step"
    # Many steps: the legend goes beside the plot, one step a line, so it never squeezes the plot.
    beside = {"orientation": "v", "x": 1.02, "y": 1, "font": {"size": 10}}
    extra = {"legend": beside, "height": max(340, 18 * len(data) + 80)} if len(data) > 6 else {}
    return Chart("chart-step-latency", title, {"data": data, "layout": layout(title, "milliseconds", perf, **extra)})


def throughput_chart(perf: Performance) -> Chart:
    users = [(p.t, float(p.users)) for p in perf.series]
    data = [
        trace("requests/s", _series(perf.series, "rps"), 0, unit="req/s"),
        trace("failures/s", _series(perf.series, "failures_per_s"), 3, unit="failures/s"),
        {**trace("users", users, 7, unit="users", axis="y2"), "line": {"color": "#7f7f7f", "dash": "dot", "width": 1}},
    ]
    right = {"title": {"text": "users"}, "overlaying": "y", "side": "right", "showgrid": False, "rangemode": "tozero"}
    title = "Throughput, failures and users"
    return Chart("chart-throughput", title, {"data": data, "layout": layout(title, "per second", perf, yaxis2=right)})


def node_chart(perf: Performance, *, memory: bool) -> Chart:
    memory_view = ("rss_mb", "MB", "Memory per node (resident)")
    pick, unit, title = memory_view if memory else ("cpu_percent", "%", "CPU per node")
    data = [
        trace(node, [(s.t, getattr(s, pick)) for s in samples], index, unit=unit)
        for index, (node, samples) in enumerate(sorted(perf.nodes.items()))
    ]
    axis = "MB resident" if memory else "% of one core"
    chart_id = "chart-memory" if memory else "chart-cpu"
    return Chart(chart_id, title, {"data": data, "layout": layout(title, axis, perf)})


def performance_charts(perf: Performance | None) -> list[Chart]:
    if perf is None:
        return []
    return [
        latency_chart(perf),
        step_latency_chart(perf),
        throughput_chart(perf),
        node_chart(perf, memory=False),
        node_chart(perf, memory=True),
    ]


def charts_json(charts: list[Chart]) -> str:
    """The figures as JSON safe inside a <script type="application/json"> element: no "<", ">"
    or "&" survives unescaped, so no step name can close the element."""
    text = json.dumps({c.id: c.figure for c in charts if not c.empty}, ensure_ascii=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
