"""Selecting checks (`-k`, `--last-failed`) and stopping early (`-x`): what runs as a check,
what runs only as setup, and that a narrowed run never claims to conform."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from testbed.conformance.catalogue import Catalogue
from testbed.conformance.runner import finalise
from testbed.conformance.selection import choose, last_run, matches
from testbed.errors import ConfigError
from testbed.report.model import CheckResult, Level, Outcome, Selection, Verdict
from testbed.scenario.engine import Engine, StepChoice
from testbed.scenario.loader import LoadedScenario, load_scenario
from testbed.scenario.transport import Outgoing, Reply
from testbed.topology import load_network
from tests.conftest import FIXTURES, REFERENCE_NETWORK
from tests.unit.test_runner_and_schemas import results_with

SCENARIO = """
name: chain
network: {network}
steps:
  - id: make-thing
    title: Makes the thing (captures its id)
    requirements: [STATION-META-01]
    request: {{node: hospital-station, method: POST, path: /things}}
    expect: {{status: 201}}
    capture: {{thing: $.id}}
  - id: unrelated-probe
    title: Something else entirely
    requirements: [STATION-META-01]
    request: {{node: hospital-station, path: /probe}}
    expect: {{status: 200}}
  - id: read-thing
    title: Reads the Thing back
    requirements: [STATION-META-01]
    request: {{node: hospital-station, path: "/things/{{{{ thing }}}}"}}
    expect: {{status: 200}}
  - id: after-everything
    title: Runs last
    requirements: [STATION-META-01]
    request: {{node: hospital-station, path: /last}}
    expect: {{status: 200}}
"""


@pytest.fixture
def chain(tmp_path: Path) -> LoadedScenario:
    path = tmp_path / "chain.yaml"
    path.write_text(SCENARIO.format(network=REFERENCE_NETWORK), encoding="utf-8")
    return load_scenario(path)


class Recorder:
    """A node that answers every request, and remembers the paths it was asked for."""

    def __init__(self, statuses: dict[str, int] | None = None) -> None:
        self.paths: list[str] = []
        self.statuses = statuses or {}

    def send(self, outgoing: Outgoing) -> Reply:
        path = outgoing.url.removeprefix("https://station")
        self.paths.append(path)
        status = self.statuses.get(path, 201 if outgoing.method == "POST" else 200)
        return Reply(status, {"content-type": "application/json"}, json.dumps({"id": "t1"}).encode(), 1.0)


def engine_with(transport: Recorder) -> Engine:
    context: dict[str, Any] = {"nodes": {"hospital-station": {"url": "https://station", "internal_url": "x"}}}
    return Engine(load_network(REFERENCE_NETWORK).network, {**context, "orgs": {}}, transport, lambda _n: [])


def test_patterns_match_key_or_title_as_case_insensitive_substrings():
    assert matches(["READ-THING"], key="chain/read-thing", title="t")
    assert matches(["chain/read"], key="chain/read-thing", title="t")
    assert matches(["the thing back"], key="chain/x", title="Reads the Thing back")
    assert matches(["nope", "x"], key="chain/x", title="t")  # any pattern may match
    assert not matches(["nope"], key="chain/read-thing", title="Reads the Thing back")
    assert not matches(["chain/probe"], key="chain/unrelated-probe", title="t")  # a substring, not a glob


def test_a_chosen_check_pulls_in_every_earlier_step_as_setup_and_nothing_after(chain):
    [choice] = choose([chain], patterns=["read-thing"])
    assert choice.checks == {"read-thing"}
    # make-thing captures what read-thing needs; unrelated-probe may leave state it relies on.
    assert choice.setup == {"make-thing", "unrelated-probe"}
    assert not choice.runs("after-everything")


def test_a_chosen_first_step_needs_no_setup_and_a_chosen_step_is_never_setup(chain):
    [choice] = choose([chain], patterns=["make-thing", "read-thing"])
    assert choice.checks == {"make-thing", "read-thing"} and choice.setup == {"unrelated-probe"}
    [first] = choose([chain], patterns=["make-thing"])
    assert first.checks == {"make-thing"} and first.setup == frozenset()


def test_scenarios_without_a_chosen_check_are_left_out_and_nothing_chosen_is_refused(chain):
    other = load_scenario(FIXTURES / "wrong-expectation.yaml")
    choices = choose([chain, other], patterns=["metadata-right"])
    assert choices[0].checks == frozenset() and choices[0].setup == frozenset()
    assert choices[1].checks == {"metadata-right"}
    with pytest.raises(ConfigError, match="no check of these scenarios is matched by -k 'absent'"):
        choose([chain, other], patterns=["absent"])


def test_last_failed_and_a_pattern_together_choose_what_both_allow(chain):
    only = {"chain/read-thing", "chain/after-everything"}
    [both] = choose([chain], patterns=["after"], only=only)
    assert both.checks == {"after-everything"}
    [failed] = choose([chain], patterns=[], only=only)
    assert failed.checks == only_ids(only)
    with pytest.raises(ConfigError, match="among the 2 that failed last time"):
        choose([chain], patterns=[], only={"elsewhere/x", "chain/gone"})


def only_ids(keys: set[str]) -> set[str]:
    return {key.split("/", 1)[1] for key in keys}


def test_the_engine_runs_setup_steps_apart_and_stops_after_the_last_chosen_one(chain: LoadedScenario) -> None:
    transport = Recorder()
    setup: list[tuple[str, Outcome]] = []
    choice = StepChoice(checks=frozenset({"read-thing"}), setup=frozenset({"make-thing", "unrelated-probe"}))
    result = engine_with(transport).run(
        chain, choice=choice, on_setup=lambda step, verdict: setup.append((step.id, verdict.outcome))
    )
    assert [c.id for c in result.checks] == ["read-thing"] and result.checks[0].outcome == Outcome.PASSED
    assert setup == [("make-thing", Outcome.PASSED), ("unrelated-probe", Outcome.PASSED)]
    assert transport.paths == ["/things", "/probe", "/things/t1"]  # the capture of a setup step was used


def test_a_failed_setup_step_blocks_the_chosen_check_instead_of_passing_it(chain):
    transport = Recorder({"/things": 500})
    choice = StepChoice(checks=frozenset({"read-thing"}), setup=frozenset({"make-thing", "unrelated-probe"}))
    [check] = engine_with(transport).run(chain, choice=choice).checks
    assert check.outcome == Outcome.SKIPPED and check.blocked_by == "make-thing"


def test_stop_after_ends_the_replay_at_the_first_failure(chain):
    transport = Recorder({"/probe": 404})
    result = engine_with(transport).run(chain, stop_after=lambda c: c.outcome in (Outcome.FAILED, Outcome.ERROR))
    assert [(c.id, c.outcome) for c in result.checks] == [
        ("make-thing", Outcome.PASSED),
        ("unrelated-probe", Outcome.FAILED),
    ]
    assert transport.paths == ["/things", "/probe"]



def conforming(catalogue: Catalogue, selection: Selection | None):
    """A vault profile run in which every MUST of the role was checked and passed."""
    musts = [r.id for role, r in catalogue.all() if role == "vault" and r.level == Level.MUST]
    results = results_with(*[(Outcome.PASSED, [r]) for r in musts])
    results.profiles, results.selection = ["vault"], selection
    finalise(results, catalogue, roles={"vault"})
    return results


@pytest.mark.parametrize(
    "selection",
    [
        Selection(patterns=["vault"]),
        Selection(last_failed_from="reports/x/results.json"),
        Selection(exitfirst=True, stopped_at="s/c0"),
    ],
    ids=["k", "last-failed", "stopped"],
)
def test_a_narrowed_profile_run_never_conforms_even_when_every_must_passed(catalogue, selection):
    results = conforming(catalogue, selection)
    assert results.verdict == Verdict.INCOMPLETE and results.exit_code == 3


def test_exitfirst_that_never_stopped_leaves_the_verdict_alone(catalogue):
    assert conforming(catalogue, None).verdict == Verdict.CONFORMS
    assert conforming(catalogue, Selection(exitfirst=True)).verdict == Verdict.CONFORMS


def write_results(folder: Path, *, kind: str = "conformance", checks: list[dict[str, Any]], age: float = 0) -> Path:
    folder.mkdir(parents=True)
    path = folder / "results.json"
    document = {
        "kind": kind,
        "run_id": folder.name,
        "verdict": "fails",
        "scenario_files": [{"path": "tests/fixtures/wrong-expectation.yaml", "sha256": "0"}],
        "scenarios": [{"name": "s", "checks": checks}],
    }
    path.write_text(json.dumps(document), encoding="utf-8")
    os.utime(path, (1_000_000 - age, 1_000_000 - age))
    return path


def check(check_id: str, outcome: str, blocked_by: str | None = None) -> dict[str, Any]:
    return {"id": check_id, "outcome": outcome, "blocked_by": blocked_by}


def test_last_failed_reads_the_newest_conformance_run(tmp_path):
    write_results(tmp_path / "old", checks=[check("a", "failed")], age=100)
    write_results(tmp_path / "newer", checks=[check("b", "error"), check("c", "passed"), check("d", "skipped")], age=50)
    write_results(tmp_path / "newest-load", kind="load", checks=[check("x", "failed")], age=0)
    last = last_run(tmp_path)
    assert last.run_id == "newer" and last.failed == {"s/b"}
    assert last.scenario_files == [Path("tests/fixtures/wrong-expectation.yaml")]
    assert last_run(tmp_path, tmp_path / "old").failed == {"s/a"}  # --from a run folder


def test_last_failed_counts_checks_blocked_by_a_failure(tmp_path):
    write_results(tmp_path / "r", checks=[check("a", "failed"), check("b", "skipped", blocked_by="a")])
    assert last_run(tmp_path).failed == {"s/a", "s/b"}


def test_no_last_run_is_said_so(tmp_path):
    with pytest.raises(ConfigError, match="there was no last run"):
        last_run(tmp_path)
    write_results(tmp_path / "load", kind="load", checks=[])
    with pytest.raises(ConfigError, match="there was no last run"):
        last_run(tmp_path)
    with pytest.raises(ConfigError, match="not the results of a conformance run"):
        last_run(tmp_path, tmp_path / "load")
    with pytest.raises(ConfigError, match=r"no results\.json there"):
        last_run(tmp_path, tmp_path / "absent")


def test_check_result_of_a_setup_step_never_reaches_the_results(chain: LoadedScenario) -> None:
    """Setup steps are named in the selection, never counted as checks of the run."""
    checks: list[CheckResult] = []
    choice = StepChoice(checks=frozenset({"read-thing"}), setup=frozenset({"make-thing", "unrelated-probe"}))
    engine_with(Recorder()).run(chain, checks.append, choice=choice)
    assert [c.id for c in checks] == ["read-thing"]
