"""Which checks a conformance run replays when it is told to run fewer (`-k PATTERN`,
`--last-failed`): the chosen checks, the earlier steps they need as setup, and the failures
of the last run to choose again.

A chosen check's setup is every earlier step of its scenario, not only the steps whose
captures it uses: steps also leave state behind that later ones rely on without capturing
anything (a service added, then listed; a consent registered, then read with). A scenario is
replayed up to its last chosen check; scenarios with no chosen check are not replayed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from testbed.errors import ConfigError
from testbed.scenario.engine import StepChoice
from testbed.scenario.loader import LoadedScenario

RESULTS_FILE = "results.json"
# What the last run's verdict holds against the implementation: re-running these can change
# it. A check skipped because an earlier step failed (`blocked_by`) counts as well.
RERUN_OUTCOMES = ("failed", "error")


def check_key(scenario: str, step_id: str) -> str:
    """How reports name a check, and what `-k` and `--last-failed` choose by."""
    return f"{scenario}/{step_id}"


def matches(patterns: list[str], *, key: str, title: str) -> bool:
    """`-k`: any pattern is a case-insensitive substring of the check's key or its title."""
    return any(p.casefold() in key.casefold() or p.casefold() in title.casefold() for p in patterns)


def choose(scenarios: list[LoadedScenario], *, patterns: list[str], only: set[str] | None = None) -> list[StepChoice]:
    """Per scenario, in order, the checks chosen (matching any `-k` pattern given, and in
    `only` when given) with their setup; an empty choice leaves the scenario out. Raises a
    ConfigError when nothing is chosen, before any node starts."""
    choices = []
    for loaded in scenarios:
        name, steps = loaded.scenario.name, loaded.scenario.steps
        chosen = {
            step.id
            for step in steps
            if (not patterns or matches(patterns, key=check_key(name, step.id), title=step.title))
            and (only is None or check_key(name, step.id) in only)
        }
        # Up to the last chosen step (none: no setup either; steps[:-1] would be nearly all).
        last = max((i for i, step in enumerate(steps) if step.id in chosen), default=0)
        setup = {step.id for step in steps[:last] if step.id not in chosen}
        choices.append(StepChoice(checks=frozenset(chosen), setup=frozenset(setup)))
    if not any(choice.checks for choice in choices):
        raise ConfigError(f"no check of these scenarios is {_what_was_asked(patterns, only)}")
    return choices


def _what_was_asked(patterns: list[str], only: set[str] | None) -> str:
    asked = []
    if patterns:
        asked.append("matched by -k " + " or ".join(repr(p) for p in patterns))
    if only is not None:
        asked.append(f"among the {len(only)} that failed last time ({', '.join(sorted(only)[:5])})")
    return " and ".join(asked)


@dataclass(frozen=True)
class LastRun:
    """The run `--last-failed` re-runs the failures of."""

    results: Path  # its results.json
    run_id: str
    verdict: str
    failed: set[str]  # "<scenario>/<check id>" of its failed and errored checks
    scenario_files: list[Path]  # the scenario files it replayed, as it recorded them


def last_run(reports: Path, from_dir: Path | None = None) -> LastRun:
    """The newest conformance run's results under `reports`, or the run in `from_dir`."""
    if from_dir is not None:
        path = from_dir / RESULTS_FILE if from_dir.is_dir() else from_dir
        if not path.is_file():
            raise ConfigError(f"--from {from_dir}: no {RESULTS_FILE} there")
        found = _read(path)
        if found is None:
            raise ConfigError(f"--from {from_dir}: not the results of a conformance run")
        return found
    candidates = sorted(reports.glob(f"*/{RESULTS_FILE}"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in candidates:
        found = _read(path)
        if found is not None:  # load runs and others have no checks to re-run
            return found
    raise ConfigError(f"--last-failed: there was no last run: no conformance {RESULTS_FILE} under {reports}")


def _read(path: Path) -> LastRun | None:
    """A conformance run's results; None for any other run's."""
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot be read as results ({exc})") from None
    if not isinstance(results, dict) or results.get("kind") != "conformance":
        return None
    failed = {
        check_key(scenario.get("name", ""), check.get("id", ""))
        for scenario in results.get("scenarios", [])
        for check in scenario.get("checks", [])
        if check.get("outcome") in RERUN_OUTCOMES or (check.get("outcome") == "skipped" and check.get("blocked_by"))
    }
    return LastRun(
        results=path,
        run_id=str(results.get("run_id", "")),
        verdict=str(results.get("verdict", "")),
        failed=failed,
        scenario_files=[Path(f["path"]) for f in results.get("scenario_files", []) if "path" in f],
    )
