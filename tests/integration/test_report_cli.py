"""The wrong-expectation fixture through the real command: its failing check is named first in
report.html and last in the terminal, and every format gives the same coverage figure."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import FIXTURES
from tests.integration.test_cli import only_run_folder, roots, run

pytestmark = pytest.mark.integration
FAILING = "wrong-expectation/read-without-token-expecting-200"


def test_the_failure_comes_first_and_last_and_coverage_agrees(tmp_path):
    done = run(tmp_path, "conformance", str(FIXTURES / "wrong-expectation.yaml"), *roots(tmp_path))
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.rstrip("\n").splitlines()
    assert lines[-1].startswith("fails: Does not conform")
    assert any(FAILING in line and "expected 200, got 401" in line for line in lines[-3:])
    assert all(len(line) < 400 for line in lines) and not any(line.endswith("got") for line in lines)  # unwrapped

    folder = only_run_folder(tmp_path)
    html = (folder / "report.html").read_text()
    assert html.index(FAILING) < html.index('id="requirements"')
    results = json.loads((folder / "results.json").read_text())
    figure = f"{results['summary']['requirements_covered']} of {results['summary']['requirements_total']}"
    assert f"covered {figure} requirements" in done.stdout
    assert f"{figure} requirements tested" in (folder / "summary.md").read_text()
    covered, total = re.search(r'<div class="n">(\d+) / (\d+)</div>requirements tested', html).groups()
    assert f"{covered} of {total}" == figure
    phases = set(results["phases"]) - {"start (other)"}
    assert phases == {"plan", "nodes up", "identity", "bootstrap", "replay", "teardown"}
    assert all(v >= 0 for v in results["phases"].values())
    assert any(line.startswith("time: plan ") for line in lines)
