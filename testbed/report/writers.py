"""Write every report file of a run into one folder, under fixed names the CLI and CI expect."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from testbed.report.earl import write_earl
from testbed.report.html import write_html
from testbed.report.json_report import write_results_json
from testbed.report.junit import write_junit
from testbed.report.model import RunResults
from testbed.report.summary import write_summary

# File name -> writer. results.json comes first: it is the record of the run, and should be
# on disk even if a presentation format fails afterwards.
REPORT_WRITERS: dict[str, Callable[[RunResults, Path], None]] = {
    "results.json": write_results_json,
    "junit.xml": write_junit,
    "report.html": write_html,
    "earl.jsonld": write_earl,
    "summary.md": write_summary,
}


def report_paths(report_dir: Path) -> dict[str, Path]:
    """Where write_all puts each file, keyed by file name."""
    return {name: report_dir / name for name in REPORT_WRITERS}


def write_all(results: RunResults, report_dir: Path) -> dict[str, Path]:
    """Write every report (results.json, junit.xml, report.html, earl.jsonld, summary.md) into
    report_dir; return name -> path."""
    report_dir.mkdir(parents=True, exist_ok=True)
    paths = report_paths(report_dir)
    for name, write in REPORT_WRITERS.items():
        write(results, paths[name])
    return paths
