import pytest

from testbed.conformance.catalogue import Catalogue
from testbed.errors import ConfigError
from testbed.scenario.loader import check_scenario, load_scenario, resolve_node
from testbed.topology import load_network
from tests.conftest import REFERENCE_NETWORK, ROOT

HEADER = f"""\
name: sample
network: {REFERENCE_NETWORK}
actors:
  requester: gp
  holder: hospital
steps:
"""
GOOD_STEP = """\
  - id: one
    title: metadata
    requirements: [STATION-META-01]
    request:
      node: holder.station
      path: /fhir/metadata
    capture:
      kind: $.resourceType
"""


@pytest.fixture(scope="module")
def catalogue():
    return Catalogue.load()


@pytest.fixture(scope="module")
def network():
    return load_network(REFERENCE_NETWORK).network


def load_and_check(write_yaml, steps, catalogue, network, header=HEADER):
    loaded = load_scenario(write_yaml(header + steps))
    check_scenario(loaded, network, catalogue)
    return loaded


def test_the_shipped_scenarios_fit_the_reference_network(catalogue, network):
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        check_scenario(load_scenario(path), network, catalogue)


def test_a_good_scenario_loads(write_yaml, catalogue, network):
    loaded = load_and_check(write_yaml, GOOD_STEP, catalogue, network)
    assert loaded.scenario.steps[0].capture == {"kind": "$.resourceType"}
    assert loaded.network_path == REFERENCE_NETWORK


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (GOOD_STEP.replace("STATION-META-01", "NO-SUCH-01"), r":9: unknown requirement id 'NO-SUCH-01'"),
        (
            GOOD_STEP.replace("holder.station", "holder.consent"),
            r"'hospital' \(actor 'holder'\) has no consent node",
        ),
        (GOOD_STEP.replace("holder.station", "nowhere"), r"node 'nowhere' is neither a node"),
        (GOOD_STEP + GOOD_STEP, r":15: duplicate step id 'one'"),
        (GOOD_STEP.replace("/fhir/metadata", "/fhir/{{ later }}"), r"uses \{\{ later \}\} before any step captures it"),
    ],
)
def test_scenario_problems_name_the_line(write_yaml, catalogue, network, steps, message):
    with pytest.raises(ConfigError, match=message):
        load_and_check(write_yaml, steps, catalogue, network)


def test_capture_is_usable_by_later_steps_only(write_yaml, catalogue, network):
    second = GOOD_STEP.replace("id: one", "id: two").replace("/fhir/metadata", "/fhir/{{ kind }}")
    load_and_check(write_yaml, GOOD_STEP + second, catalogue, network)
    with pytest.raises(ConfigError, match="before any step captures it"):
        load_and_check(write_yaml, second + GOOD_STEP, catalogue, network)


def test_unknown_actor_in_scenario(write_yaml, catalogue, network):
    header = HEADER.replace("holder: hospital", "holder: nobody")
    with pytest.raises(ConfigError, match=r":5: actor 'holder' names organisation 'nobody'"):
        load_and_check(write_yaml, GOOD_STEP, catalogue, network, header=header)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("    action: {name: wait, seconds: 1}\n", "exactly one of 'request' and 'action'"),
        ("    bogus: 1\n", r"bogus: unknown field"),
    ],
)
def test_step_shape_errors(write_yaml, catalogue, network, text, message):
    with pytest.raises(ConfigError, match=message):
        load_and_check(write_yaml, GOOD_STEP + text, catalogue, network)


def test_action_needs_its_parameters(write_yaml, catalogue, network):
    step = """\
  - id: token
    title: token
    requirements: [TRUST-CLIENT-01]
    action: {name: request-access-token, requester: requester}
"""
    with pytest.raises(ConfigError, match="needs holder, scope"):
        load_and_check(write_yaml, step, catalogue, network)


def test_resolve_node(network):
    actors = {"requester": "gp"}
    assert resolve_node("requester.trust", actors, network) == "gp-trust"
    assert resolve_node("consent", actors, network) == "consent"
    with pytest.raises(LookupError):
        resolve_node("requester.nothing", actors, network)


def test_malformed_fixture_reports_file_and_line():
    with pytest.raises(ConfigError) as caught:
        load_scenario(ROOT / "tests" / "fixtures" / "malformed.yaml")
    assert "malformed.yaml:11: steps[0].expect.status:" in str(caught.value)


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        (
            '    expect:\n      json:\n        - {path: $.a, matches: "("}\n',
            r"regular expression '\(' does not compile",
        ),
        ("    expect:\n      headers: {x: '['}\n", r"regular expression '\[' does not compile"),
        ("    expect:\n      json:\n        - {path: '$.a[*]', exists: true}\n", r"cannot read JSON path"),
    ],
)
def test_expressions_are_checked_before_the_run(write_yaml, catalogue, network, expect, message):
    with pytest.raises(ConfigError, match=message):
        load_and_check(write_yaml, GOOD_STEP + expect, catalogue, network)


def test_constants_are_reached_through_vars_only(write_yaml, catalogue, network):
    header = HEADER.replace("steps:\n", "variables: {scope: bgz}\nsteps:\n")
    with pytest.raises(ConfigError, match=r"uses \{\{ scope \}\} before any step captures it"):
        load_and_check(write_yaml, GOOD_STEP.replace("/fhir/metadata", "/{{ scope }}"), catalogue, network, header)
    load_and_check(write_yaml, GOOD_STEP.replace("/fhir/metadata", "/{{ vars.scope }}"), catalogue, network, header)


def test_unknown_filters_and_actors_without_trust_node(write_yaml, catalogue, network):
    with pytest.raises(ConfigError, match="unknown filter 'shout'"):
        load_and_check(
            write_yaml, GOOD_STEP.replace("/fhir/metadata", "/{{ orgs.gp.did | shout }}"), catalogue, network
        )
    header = HEADER.replace("holder: hospital", "holder: mitz")
    step = """\
  - id: token
    title: token
    requirements: [TRUST-CLIENT-01]
    action: {name: request-access-token, requester: requester, holder: holder, scope: bgz}
"""
    with pytest.raises(ConfigError, match="organisation 'mitz', which has no trust node"):
        load_and_check(write_yaml, step, catalogue, network, header=header)
