"""`testbed conformance` with -k, -x and --last-failed as a person runs it: what is run as a
check, what only as setup, what is left out, and the verdict and exit code of each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES
from tests.integration.test_cli import roots, run

pytestmark = pytest.mark.integration
WRONG = str(FIXTURES / "wrong-expectation.yaml")


def newest_results(tmp_path: Path, seen: set[Path]) -> tuple[Path, dict[str, Any]]:
    """The one run folder made since `seen`, and its results."""
    [folder] = set((tmp_path / "reports").iterdir()) - seen
    seen.add(folder)
    return folder, json.loads((folder / "results.json").read_text())


def checks_of(results: dict[str, Any]) -> dict[str, str]:
    return {f"{s['name']}/{c['id']}": c["outcome"] for s in results["scenarios"] for c in s["checks"]}


def test_last_failed_k_and_x_choose_what_runs_and_never_pass_what_did_not(tmp_path: Path) -> None:
    seen: set[Path] = set()
    full = run(tmp_path, "conformance", WRONG, *roots(tmp_path))
    assert full.returncode == 1, full.stdout + full.stderr
    first, _ = newest_results(tmp_path, seen)

    # --last-failed: the failed check and the one it blocked; the passing first step only as setup.
    again = run(tmp_path, "conformance", "--lf", *roots(tmp_path))
    assert again.returncode == 1, again.stdout + again.stderr
    _, results = newest_results(tmp_path, seen)
    assert checks_of(results) == {
        "wrong-expectation/read-without-token-expecting-200": "failed",
        "wrong-expectation/uses-capture-of-failed-step": "skipped",
    }
    selection = results["selection"]
    assert selection["setup"] == ["wrong-expectation/metadata-right"] and not selection["setup_not_passed"]
    assert selection["last_failed_from"].endswith(f"{first.name}/results.json")
    assert results["summary"]["total"] == 2 and results["verdict"] == "fails"
    assert "ran as setup only" in again.stdout and "setup wrong-expectation/metadata-right: passed" in again.stdout

    # -k: the one passing check alone; a run without a profile may pass, over what it ran.
    chosen = run(tmp_path, "conformance", WRONG, "-k", "METADATA", *roots(tmp_path))
    assert chosen.returncode == 0, chosen.stdout + chosen.stderr
    passing, results = newest_results(tmp_path, seen)
    assert checks_of(results) == {"wrong-expectation/metadata-right": "passed"}
    assert results["selection"]["patterns"] == ["METADATA"] and results["selection"]["setup"] == []
    assert results["verdict"] == "passes"

    # -x: stops at the failure; the check after it is not reported at all, and the reports are written.
    stopped = run(tmp_path, "conformance", WRONG, "-x", *roots(tmp_path))
    assert stopped.returncode == 1, stopped.stdout + stopped.stderr
    folder, results = newest_results(tmp_path, seen)
    assert checks_of(results) == {
        "wrong-expectation/metadata-right": "passed",
        "wrong-expectation/read-without-token-expecting-200": "failed",
    }
    assert results["selection"]["stopped_at"] == "wrong-expectation/read-without-token-expecting-200"
    assert (folder / "report.html").is_file() and (folder / "junit.xml").is_file()
    assert "stopped after wrong-expectation/read-without-token-expecting-200 (-x)" in stopped.stdout

    # Refusals, before any node starts: a run with no failures to re-run, a pattern matching nothing.
    nothing = run(tmp_path, "conformance", "--lf", "--from", str(passing), *roots(tmp_path))
    assert nothing.returncode == 0 and "nothing to re-run" in nothing.stdout, nothing.stdout + nothing.stderr
    unmatched = run(tmp_path, "conformance", WRONG, "-k", "no-such-check", *roots(tmp_path))
    assert unmatched.returncode == 2 and "matched by -k 'no-such-check'" in unmatched.stderr
    assert set((tmp_path / "reports").iterdir()) == seen  # neither of them ran anything


def test_last_failed_without_a_last_run_says_so(tmp_path):
    done = run(tmp_path, "conformance", "--lf", *roots(tmp_path))
    assert done.returncode == 2 and "there was no last run" in done.stderr, done.stdout + done.stderr
