"""Station rules that need no network: which rule a permit breaks (the `refusal` a refused task
names), and the audit log checked against an anchor kept outside it."""

from nodes.common.audit import AuditLog
from nodes.common.storage import DocumentStore
from nodes.station.permits import Permit, _out_of_scope, _verification_rule
from nodes.station.routes.records import audit_verdict

BODY, USER, OTHER = "did:web:body", "did:web:user", "did:web:other"
HERE, ELSEWHERE = "https://station/catalogue/datasets/care", "https://other/catalogue/datasets/care"


def permit(**subject):
    fields = {"id": USER, "datasets": [HERE], "analyses": ["count"], "kind": "permit", **subject}
    return Permit({"id": "urn:uuid:permit", "issuer": BODY, "credentialSubject": fields})


def test_the_verifiers_message_names_the_rule_a_permit_broke():
    assert _verification_rule("credential urn:uuid:1 is revoked") == "permit-revoked"
    assert _verification_rule("credential urn:uuid:1 has expired") == "permit-expired"
    assert _verification_rule("issuer did:web:x is not trusted for DataPermitCredential") == "permit-untrusted"
    assert _verification_rule("signature of did:web:x#0 does not verify: BadSignatureError") == "permit-invalid"


def test_a_permit_in_scope_breaks_no_rule_and_the_issuer_may_act_for_the_holder():
    assert _out_of_scope(permit(), USER, (HERE, "count"), {HERE}) == []
    assert _out_of_scope(permit(), BODY, (HERE, "count"), {HERE}) == []


def test_each_scope_rule_is_named_on_its_own():
    def rules(p, requester=USER, dataset=HERE, kind="count"):
        return [rule for rule, _ in _out_of_scope(p, requester, (dataset, kind), {HERE})]

    assert rules(permit(), requester=OTHER) == ["permit-other-user"]
    assert rules(permit(kind="data-request")) == ["data-request-direct"]
    assert rules(permit(kind="data-request"), requester=BODY) == []  # the body answers a data request
    assert rules(permit(datasets=[ELSEWHERE])) == ["dataset-not-permitted"]
    assert rules(permit(datasets=[ELSEWHERE]), dataset=ELSEWHERE) == ["dataset-not-here"]
    assert rules(permit(), kind="mean") == ["analysis-not-permitted"]


def log_of(tmp_path, entries: int) -> tuple[DocumentStore, AuditLog]:
    store = DocumentStore(tmp_path / "audit.sqlite")
    log = AuditLog(store)
    for n in range(entries):
        log.append(action="read", outcome=200 + n)
    return store, log


def test_the_log_verifies_against_an_anchor_it_holds(tmp_path):
    _, log = log_of(tmp_path, 3)
    newest = log.entries(1)[0]
    assert audit_verdict(log, None) == {"valid": True, "entries": 3}
    assert audit_verdict(log, (newest["seq"], newest["hash"])) == {"valid": True, "entries": 3}


def test_an_anchor_with_another_hash_does_not_verify(tmp_path):
    _, log = log_of(tmp_path, 3)
    second, third = log.entries(2)
    verdict = audit_verdict(log, (third["seq"], second["hash"]))
    assert verdict == {"valid": False, "entries": 3, "broken_at": 3, "reason": "anchor-mismatch"}


def test_cutting_off_the_newest_entries_verifies_on_its_own_but_not_against_an_anchor(tmp_path):
    store, log = log_of(tmp_path, 3)
    newest = log.entries(1)[0]
    store.delete("audit", f"{3:012d}")
    assert audit_verdict(log, None)["valid"] is True  # what the chain alone cannot see
    verdict = audit_verdict(log, (newest["seq"], newest["hash"]))
    assert verdict["valid"] is False and verdict["reason"] == "anchor-missing"


def test_a_broken_chain_says_so_whatever_the_anchor(tmp_path):
    store, log = log_of(tmp_path, 3)
    newest = log.entries(1)[0]
    changed = store.get("audit", f"{2:012d}")
    store.put("audit", f"{2:012d}", {**changed, "outcome": 403})
    verdict = audit_verdict(log, (newest["seq"], newest["hash"]))
    assert verdict["valid"] is False and verdict["reason"] == "chain-broken" and verdict["broken_at"] == 2
