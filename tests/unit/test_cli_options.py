"""The command line as a new user first meets it: -h, --version, durations with units."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

TESTBED = [sys.executable, "-m", "testbed.cli"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TESTBED, *args], capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)


def test_version_and_short_help() -> None:
    from testbed import __version__

    done = _run("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"testbed {__version__}"
    helped = _run("-h")
    assert helped.returncode == 0 and "conformance" in helped.stdout and "-h, --help" in helped.stdout
    assert "<bool>" not in helped.stdout


def test_subcommand_help_shows_flags_without_a_type_and_durations_with_units() -> None:
    done = _run("load", "-h")
    assert done.returncode == 0
    assert "<bool>" not in done.stdout and "--attach" in done.stdout
    assert "1h30m" in done.stdout
    assert "scenario folder's own files only" in " ".join(_run("conformance", "-h").stdout.split())


def test_a_duration_that_is_not_one_is_refused_before_anything_starts(tmp_path) -> None:
    done = _run("load", "scenarios/bgz-consent.yaml", "--duration", "5x", "--reports", str(tmp_path / "r"))
    assert done.returncode == 2
    assert "--duration" in done.stderr and "not a duration" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "r").exists()
