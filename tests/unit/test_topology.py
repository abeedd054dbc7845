import pytest

from testbed.errors import ConfigError
from testbed.runtime.plan import plan_network
from testbed.topology import Role, UrlImplementation, load_network
from tests.conftest import REFERENCE_NETWORK

VALID = """\
name: small
seed: s
credential_issuer: a
organisations:
  - id: a
    name: A
    ura: "10000001"
    nodes:
      - {name: a-trust, role: trust}
      - {name: a-station, role: station}
  - id: c
    name: C
    ura: "10000002"
    nodes:
      - {name: consent, role: consent}
"""


def test_reference_network_loads():
    loaded = load_network(REFERENCE_NETWORK)
    network = loaded.network
    assert {org.id for org in network.organisations} == {
        "authority",
        "hospital",
        "gp",
        "nursing",
        "mitz",
        "hdab",
        "institute",
        "welldata",
    }
    assert network.node_of("hospital", Role.STATION).name == "hospital-station"
    assert [node.name for _, node in network.nodes_with_role(Role.HDAB)] == ["hdab"]
    assert len(loaded.sha256) == 64


def test_small_network_loads(write_yaml):
    assert load_network(write_yaml(VALID)).network.name == "small"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("role: station", "role: stations"), r":10: organisations\[0\]\.nodes\[1\]\.role: Input should be"),
        (('ura: "10000001"', 'ura: "123"'), r":7: organisations\[0\]\.ura: String should match"),
        (
            ("credential_issuer: a", "credential_issuer: nobody"),
            r":3: credential_issuer 'nobody' is not an organisation",
        ),
        (("{name: consent, role: consent}", "{name: a-trust, role: consent}"), r":15: duplicate node name 'a-trust'"),
        (("- {name: a-trust, role: trust}", "- {name: a-x, role: consent}"), r"needs a trust node"),
        (
            ("{name: consent, role: consent}", "{name: consent, role: hdab}"),
            r":15: hdab node 'consent' needs a trust node in organisation 'c' to introspect",
        ),
        (
            (
                "{name: a-station, role: station}",
                "{name: a-station, role: station}\n      - {name: b, role: hdab}\n      - {name: b2, role: hdab}",
            ),
            r"more than one hdab node",
        ),
    ],
)
def test_inconsistent_networks_are_refused_with_line(write_yaml, change, expected):
    path = write_yaml(VALID.replace(*change))
    with pytest.raises(ConfigError, match=expected):
        load_network(path)


def test_url_implementation_is_planned_as_external(write_yaml):
    text = VALID.replace(
        "{name: a-trust, role: trust}",
        "{name: a-trust, role: trust, implementation: {url: 'https://127.0.0.1:9443', internal_url: 'https://127.0.0.1:9081'}}",
    )
    loaded = load_network(write_yaml(text))
    node = next(n for _, n in loaded.network.nodes() if n.name == "a-trust")
    assert isinstance(node.implementation, UrlImplementation)
    plan = plan_network(loaded)
    external = plan.node("a-trust")
    assert not external.managed and external.kind == "url"
    assert external.internal_url == "https://127.0.0.1:9081"
    managed = plan.managed()
    assert len(managed) == 2
    assert len({n.host for n in managed}) == 2  # each reference node has its own address
    assert all(n.host.startswith("127.0.") for n in managed)
