import pytest

from testbed.errors import ConfigError
from testbed.report.model import Level
from testbed.scenario.loader import check_scenario, load_scenario, resolve_node
from tests.conftest import REFERENCE_NETWORK, ROOT, checked_scenario

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


def load_and_check(write_yaml, steps, catalogue, network, header=HEADER):
    return checked_scenario(write_yaml(header + steps), catalogue, network)


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


def test_a_refusal_check_must_assert_what_identifies_the_rule(write_yaml, catalogue, network):
    status_only = GOOD_STEP.replace("    capture:\n      kind: $.resourceType\n", "    expect: {status: [401, 403]}\n")
    with pytest.raises(ConfigError, match=r":7: step 'one': expects a refusal but checks only its status"):
        load_and_check(write_yaml, status_only, catalogue, network)
    identified = status_only.replace(
        "{status: [401, 403]}", "{status: 403, json: [{path: '$.issue[0].code', equals: forbidden}]}"
    )
    load_and_check(write_yaml, identified, catalogue, network)
    # A success, or a status that may be either, needs nothing more.
    load_and_check(write_yaml, status_only.replace("[401, 403]", "[200, 404]"), catalogue, network)


def test_a_tls_refusal_expects_no_http_answer(write_yaml, catalogue, network):
    anonymous = GOOD_STEP.replace("      path: /fhir/metadata\n", "      path: /x\n      client_certificate: none\n")
    load_and_check(write_yaml, anonymous + "    expect: {tls: refused}\n", catalogue, network)
    with pytest.raises(ConfigError, match="'tls: refused' expects no HTTP answer"):
        load_and_check(write_yaml, anonymous + "    expect: {tls: refused, status: 400}\n", catalogue, network)


@pytest.mark.parametrize("role", ["trust", "consent", "station", "hdab", "vault"])
def test_a_profile_is_its_role_s_contract(role, catalogue, network):
    """Every scenario of a role's profile says so and fits the network, and together they
    verify every MUST and SHOULD requirement of the role (use-case scenarios do not count)."""
    scenarios = [load_scenario(p) for p in sorted((ROOT / "scenarios" / "profiles" / role).glob("*.yaml"))]
    assert scenarios, f"no profile for role {role}"
    for loaded in scenarios:
        assert loaded.scenario.profile == role, f"{loaded.path} does not say `profile: {role}`"
        check_scenario(loaded, network, catalogue)
    verified = {r for loaded in scenarios for step in loaded.scenario.steps for r in step.requirements}
    contract = {r.id for owner, r in catalogue.all() if owner == role and r.level in (Level.MUST, Level.SHOULD)}
    assert sorted(contract - verified) == []
