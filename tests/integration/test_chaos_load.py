"""Chaos during load (issue 18) on the process runtime: a short load on the reference network
while the schedule stops the hospital's station for a few seconds. The report has the window,
failures inside it and none outside, every failure a clean refusal; the HTML marks the window
on its charts; and afterwards no fault is in force."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from testbed.load.runner import LoadOptions, Overrides, run_load
from testbed.network import RunningNetwork
from testbed.report.html import render_html
from testbed.runtime.state import RunFolder, new_run_id
from testbed.schemas import all_schemas
from tests.conftest import ROOT
from tests.integration.conftest import reference_network_up
from tests.integration.test_resilience_run import assert_whole

pytestmark = pytest.mark.integration
SCENARIO = ROOT / "scenarios" / "bgz-consent.yaml"


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    """A reference network of this module's own: faults must not disturb the session's."""
    with reference_network_up(tmp_path_factory, "chaos") as running:
        yield running
        running.state = running.folder.load()  # a node started again has a new pid: stop that one


def test_a_station_stopped_under_load_fails_cleanly_inside_its_window_only(
    network: RunningNetwork, tmp_path: Path
) -> None:
    folder = RunFolder(tmp_path / "state", tmp_path / "reports", new_run_id("chaos"))
    overrides = Overrides(
        users=4,
        spawn_rate=4,
        duration=18,
        faults=["6s+4s:holder.station:stop"],
        thresholds=["inside_faults:wrong==0", "inside_faults:refused>0", "outside_faults:rate<2%"],
    )
    options = LoadOptions(
        scenario_path=SCENARIO,
        network_path=None,
        runtime="process",
        folder=folder,
        attach=network.folder,  # left running afterwards, so that what the run left can be looked at
        overrides=overrides,
    )
    results = run_load(options)
    assert results.error is None, results.error
    perf = results.performance
    assert perf is not None and perf.faults is not None
    [window] = perf.faults.windows
    assert window.error is None and window.fault == "stop hospital-station"
    assert window.start_s is not None and window.end_s is not None and 5.9 <= window.start_s < window.end_s < 18
    assert window.done.startswith("stop hospital-station at ") and window.undone.startswith("start hospital-station")

    inside, outside = perf.faults.inside, perf.faults.outside
    assert inside is not None and outside is not None
    assert inside.failures > 0 and inside.refused == inside.failures and inside.wrong == 0  # clean refusals only
    assert outside.requests > 100 and outside.failure_rate < 0.02  # the station served before and after
    assert inside.failure_rate > 5 * outside.failure_rate
    assert window.figures is not None and window.figures.requests == inside.requests
    held = {f"{t.scope}: {t.expression}": t.passed for t in perf.thresholds if t.scope.endswith("_faults")}
    assert held == {"inside_faults: wrong==0": True, "inside_faults: refused>0": True, "outside_faults: rate<2%": True}

    data = results.model_dump(mode="json")
    jsonschema.validate(data, all_schemas()["results.schema.json"])
    assert data["performance"]["faults"]["windows"][0]["targets"] == ["hospital-station"]
    html = render_html(results)
    figures = json.loads(re.search(r'id="chart-figures">(.*?)</script>', html, re.S).group(1))  # type: ignore[union-attr]
    for chart_id, figure in figures.items():
        bands = [s for s in figure["layout"]["shapes"] if s.get("name") == "fault 1"]
        assert [b["label"]["text"] for b in bands] == ["fault 1: stop hospital-station"], chart_id
        assert bands[0]["x0"] == window.start_s
    assert "inside fault windows" in html and "outside fault windows" in html

    assert_whole(network)  # the station runs again, and nothing is stopped or paused
