import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from testbed.conformance.catalogue import Catalogue
from testbed.conformance.runner import collect_scenario_files, finalise
from testbed.errors import ConfigError
from testbed.report.model import (
    CheckResult,
    InputFile,
    Level,
    MachineInfo,
    Outcome,
    RunResults,
    ScenarioResult,
    Verdict,
)
from testbed.schemas import SCHEMA_DIR, all_schemas
from testbed.yamlsource import read_yaml
from tests.conftest import ROOT

NOW = datetime.now(UTC)


def results_with(*checks: tuple[Outcome, list[str]]) -> RunResults:
    scenario = ScenarioResult(
        name="s",
        file="s.yaml",
        sha256="0" * 64,
        checks=[
            CheckResult(id=f"c{i}", title="t", requirements=reqs, outcome=outcome, started=NOW, duration_ms=1)
            for i, (outcome, reqs) in enumerate(checks)
        ],
    )
    return RunResults(
        run_id="r",
        harness_version="0",
        started=NOW,
        runtime="process",
        seed="s",
        network=InputFile(path="n.yaml", sha256="0" * 64),
        machine=MachineInfo(platform="p", python="3.11", cpus=2),
        scenarios=[scenario],
    )



def test_all_passed_exits_zero_and_coverage_is_counted(catalogue):
    results = results_with((Outcome.PASSED, ["TRUST-DID-01"]), (Outcome.PASSED, ["TRUST-DID-01", "TRUST-AS-01"]))
    finalise(results, catalogue)
    assert results.exit_code == 0
    assert results.summary.requirements_covered == 2
    did = next(r for r in results.requirements if r.id == "TRUST-DID-01")
    assert did.outcome == Outcome.PASSED and did.checks == ["s/c0", "s/c1"]
    untested = next(r for r in results.requirements if r.id == "TRUST-INTRO-02")
    assert untested.outcome is None


def test_a_failed_must_exits_one(catalogue):
    results = results_with((Outcome.PASSED, ["TRUST-DID-01"]), (Outcome.FAILED, ["TRUST-DID-01"]))
    finalise(results, catalogue)
    assert results.exit_code == 1 and results.summary.must_failed == 1
    assert next(r for r in results.requirements if r.id == "TRUST-DID-01").outcome == Outcome.FAILED


def test_a_failed_should_only_check_does_not_fail_the_run(catalogue):
    results = results_with((Outcome.FAILED, ["STATION-META-01"]))
    finalise(results, catalogue)
    assert results.exit_code == 0 and results.summary.failed == 1 and results.summary.must_failed == 0


def test_errors_and_empty_runs_exit_two(catalogue):
    errored = results_with((Outcome.ERROR, ["TRUST-DID-01"]))
    finalise(errored, catalogue)
    assert errored.exit_code == 2
    empty = results_with()
    empty.error = "node x did not start"
    finalise(empty, catalogue)
    assert empty.exit_code == 2


def test_committed_schemas_match_the_models():
    for name, schema in all_schemas().items():
        committed = json.loads((SCHEMA_DIR / name).read_text())
        assert committed == schema, f"{name} is stale: run `make schemas`"


def test_shipped_files_validate_against_the_published_schemas():
    schemas = all_schemas()
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        jsonschema.validate(read_yaml(path).data, schemas["scenario.schema.json"])
    for path in sorted((ROOT / "scenarios" / "networks").glob("*.yaml")):
        jsonschema.validate(read_yaml(path).data, schemas["network.schema.json"])


def test_the_catalogue_covers_every_role(catalogue):
    assert {role for role, _ in catalogue.all()} >= {"trust", "consent", "station"}
    assert all(r.source and r.statement for _, r in catalogue.all())


def test_a_requirement_id_defined_twice_is_refused(tmp_path: Path):
    entry = "  - {id: X-ONE-01, level: MUST, statement: A statement of ten letters., source: spec 1}\n"
    (tmp_path / "a.yaml").write_text("role: a\nrequirements:\n" + entry)
    (tmp_path / "b.yaml").write_text("role: b\nrequirements:\n" + entry)
    with pytest.raises(ConfigError, match=r"X-ONE-01 is defined in .*a\.yaml too"):
        Catalogue.load(tmp_path)


def test_collect_scenario_files(tmp_path: Path):
    (tmp_path / "b.yaml").write_text("x")
    (tmp_path / "a.yaml").write_text("x")
    assert [p.name for p in collect_scenario_files([tmp_path])] == ["a.yaml", "b.yaml"]
    with pytest.raises(ConfigError, match="no such scenario"):
        collect_scenario_files([tmp_path / "absent.yaml"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no scenario files"):
        collect_scenario_files([tmp_path / "empty"])


def test_a_must_check_blocked_by_a_failed_should_check_fails_the_run(catalogue):
    results = results_with((Outcome.FAILED, ["STATION-META-01"]), (Outcome.SKIPPED, ["TRUST-DID-01"]))
    results.scenarios[0].checks[1].blocked_by = "c0"
    finalise(results, catalogue)
    assert results.summary.must_blocked == 1 and results.exit_code == 1
    # Skipped checks do not count as coverage.
    assert results.summary.requirements_covered == 1


def test_a_run_level_error_wins_over_failures(catalogue):
    results = results_with((Outcome.FAILED, ["TRUST-DID-01"]))
    results.error = "node x went away"
    finalise(results, catalogue)
    assert results.exit_code == 2


def test_a_profile_run_reports_its_own_role_and_is_incomplete_while_a_must_is_untested(catalogue):
    results = results_with((Outcome.PASSED, ["TRUST-DID-01"]), (Outcome.PASSED, ["CONSENT-REG-01"]))
    results.profiles = ["trust"]
    finalise(results, catalogue, roles={"trust"})
    assert {r.role for r in results.requirements} == {"trust"}
    assert results.verdict == Verdict.INCOMPLETE and results.exit_code == 3
    assert "TRUST-DID-01" not in results.summary.must_untested
    assert "TRUST-INTRO-02" in results.summary.must_untested
    # A MUST whose only checks were skipped is untested too.
    assert all(catalogue.get(r)[1].level == Level.MUST for r in results.summary.must_untested)


def test_a_profile_run_conforms_when_every_must_of_its_role_passed(catalogue):
    musts = [r.id for role, r in catalogue.all() if role == "vault" and r.level == Level.MUST]
    results = results_with(*[(Outcome.PASSED, [r]) for r in musts])
    results.profiles = ["vault"]
    finalise(results, catalogue, roles={"vault"})
    assert results.verdict == Verdict.CONFORMS and results.exit_code == 0
    # A failure still wins over incompleteness, and an error over both.
    failing = results_with((Outcome.FAILED, [musts[0]]))
    failing.profiles = ["vault"]
    finalise(failing, catalogue, roles={"vault"})
    assert failing.verdict == Verdict.FAILS and failing.exit_code == 1
    errored = results_with((Outcome.PASSED, [musts[0]]))
    errored.profiles, errored.error = ["vault"], "node x went away"
    finalise(errored, catalogue, roles={"vault"})
    assert errored.verdict == Verdict.ERROR and errored.exit_code == 2


def test_a_run_without_a_profile_passes_without_claiming_completeness(catalogue):
    results = results_with((Outcome.PASSED, ["TRUST-DID-01"]))
    finalise(results, catalogue)
    assert results.verdict == Verdict.PASSES and results.exit_code == 0 and not results.summary.must_untested
