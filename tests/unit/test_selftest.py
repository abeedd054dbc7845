"""The mutation self-test's parts that need no network: the variant catalogues agree with the
faults the reference nodes know, a network is made faulty for one role only, scores are kept
only for the current variants, and a node refuses to start with a defect it does not know."""

import json
import re
from pathlib import Path

import httpx
import pytest

from nodes.__main__ import main as node_main
from nodes.common.faults import FaultSwitch, UnknownFault
from protocols.nodeconfig import NodeConfig, OrganisationInfo, TlsConfig
from testbed.conformance import mutants
from testbed.conformance.selftest import IDENTITY, RoleScore, SelftestResults, VariantOutcome, _faulty_network
from testbed.report.model import Outcome
from testbed.scenario.transport import tls_refusal
from tests.conftest import ROOT

ROLES = ["trust", "consent", "station", "hdab", "vault"]


def config(settings: dict, role: str = "trust") -> NodeConfig:
    tls = TlsConfig(cert=Path("c"), key=Path("k"), ca=Path("a"))
    organisation = OrganisationInfo(id="o", name="O", ura="00000001")
    return NodeConfig(
        name="n", role=role, organisation=organisation, seed="s", host="127.0.0.1", public_port=1,
        internal_port=2, public_url="https://x", internal_url="https://x", tls=tls, data_dir=Path("."),
        settings=settings,
    )  # fmt: skip


@pytest.mark.parametrize("role", ROLES)
def test_every_variant_names_a_fault_its_node_knows_and_every_fault_has_a_variant(role):
    from importlib import import_module

    known = import_module(f"nodes.{role}.faults").FAULTS
    listed = [v.fault for v in mutants.load_variants(role)]
    assert sorted(listed) == sorted(known), f"testbed/conformance/variants/{role}.yaml and nodes/{role}/faults.py"


@pytest.mark.parametrize("role", ROLES)
def test_every_fault_a_node_lists_is_switched_somewhere_in_its_code(role):
    """A defect the node lists but never switches on would be a variant nothing can catch."""
    from importlib import import_module

    known = import_module(f"nodes.{role}.faults").FAULTS
    code = ROOT / "nodes" / role
    text = "\n".join(p.read_text(encoding="utf-8") for p in code.rglob("*.py") if p.name != "faults.py")
    assert sorted(set(known) - set(re.findall(r'"([a-z0-9-]+)"', text))) == []


def test_a_fault_switch_is_on_for_its_own_defect_only():
    known = {"always-yes": "says yes", "never-no": "never says no"}
    switch = FaultSwitch(config({"fault": "always-yes"}), known)
    assert switch("always-yes") and not switch("never-no")
    assert not FaultSwitch(config({}), known)("always-yes")
    with pytest.raises(UnknownFault, match="unknown fault 'typo'"):
        FaultSwitch(config({"fault": "typo"}), known)
    with pytest.raises(UnknownFault, match="not listed"):
        switch("unlisted")


def test_a_node_with_an_unknown_fault_does_not_start(tmp_path, capsys):
    path = tmp_path / "node.json"
    config({"fault": "no-such-defect"}).write(path)
    assert node_main(["--config", str(path)]) == 2
    assert "unknown fault 'no-such-defect' for a trust node" in capsys.readouterr().err


def test_a_faulty_network_gives_the_defect_to_the_role_s_reference_nodes_only():
    network = {
        "name": "n",
        "organisations": [
            {"id": "a", "nodes": [{"name": "a-trust", "role": "trust"}, {"name": "a-station", "role": "station"}]},
            {"id": "b", "nodes": [{"name": "b-trust", "role": "trust", "implementation": {"url": "https://b"}}]},
        ],
    }
    faulty = _faulty_network(network, "trust", "always-yes")
    nodes = {n["name"]: n for o in faulty["organisations"] for n in o["nodes"]}
    assert nodes["a-trust"]["settings"] == {"fault": "always-yes"}
    assert "settings" not in nodes["a-station"] and "settings" not in nodes["b-trust"]
    assert "settings" not in network["organisations"][0]["nodes"][0]  # the original is left alone
    assert _faulty_network(network, "trust", None) == network


def outcome(role: str, variant: str, caught: bool) -> VariantOutcome:
    return VariantOutcome(
        role=role, variant=variant, description="d" * 10, exit_code=1, caught=caught, report="r", duration_s=1
    )


def test_scores_are_read_only_for_the_current_variants(tmp_path):
    scores = tmp_path / "scores.json"
    variants = [v.fault for v in mutants.load_variants("vault")]
    score = {"caught": 1, "total": 1, "variants": sorted(variants), "measured": "2026-12-03"}
    mutants.write_score("vault", score, scores)
    assert mutants.recorded_score("vault", scores) is not None
    mutants.write_score("vault", {"caught": 1, "total": 1, "variants": ["gone"], "measured": "2026-12-03"}, scores)
    assert mutants.recorded_score("vault", scores) is None  # measured on another list of variants
    assert json.loads(scores.read_text())["vault"]["variants"] == ["gone"]


def test_a_selftest_passes_only_when_every_variant_is_caught_and_identity_conforms():
    results = SelftestResults(run_id="r", started="2026-12-03T00:00:00Z", runtime="process")
    results.variants = [outcome("vault", IDENTITY, True), outcome("vault", "x", True)]
    results.scores = [RoleScore(role="vault", caught=1, total=1, identity_conforms=True)]
    assert results.exit_code == 0
    results.scores = [RoleScore(role="vault", caught=0, total=1, identity_conforms=True)]
    assert results.exit_code == 1
    results.scores = [RoleScore(role="vault", caught=1, total=1, identity_conforms=False)]
    assert results.exit_code == 1


def test_tls_refusals_are_told_from_nothing_listening():
    request = httpx.Request("GET", "https://127.0.0.1:9/")
    assert tls_refusal(httpx.ConnectError("[Errno 111] Connection refused", request=request)) is None
    alert = httpx.ReadError("[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required")
    assert tls_refusal(alert) == "TLSV13_ALERT_CERTIFICATE_REQUIRED"
    closed = httpx.RemoteProtocolError("Server disconnected without sending a response.")
    assert tls_refusal(closed) == "closed the connection without an HTTP answer"


def test_every_role_with_a_profile_has_a_variant_catalogue():
    profiles = sorted(p.name for p in (ROOT / "scenarios" / "profiles").iterdir() if p.is_dir())
    for role in profiles:
        mutants.load_variants(role)


def test_only_a_failing_check_catches_a_faulty_variant():
    """A run that ends in a harness error, or only in errored checks, did not catch anything."""
    from testbed.conformance.selftest import judged
    from tests.unit.test_runner_and_schemas import results_with

    failed = results_with((Outcome.FAILED, ["TRUST-DID-01"]))
    failed.exit_code = 1
    assert judged(failed, faulty=True) == (True, ["s/c0"])
    errored = results_with((Outcome.ERROR, ["TRUST-DID-01"]))
    errored.exit_code = 2
    assert judged(errored, faulty=True) == (False, [])
    broken = results_with((Outcome.FAILED, ["TRUST-DID-01"]))
    broken.exit_code, broken.error = 2, "node x went away"
    assert judged(broken, faulty=True)[0] is False
    clean = results_with((Outcome.PASSED, ["TRUST-DID-01"]))
    assert judged(clean, faulty=True)[0] is False and judged(clean, faulty=False)[0] is True
