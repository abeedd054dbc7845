from nodes.common.audit import AuditLog
from nodes.common.bsn import is_valid_bsn
from nodes.common.storage import DocumentStore
from nodes.station.synthetic import bsn_of, generate


def test_synthetic_data_is_deterministic_and_plausible():
    patients, conditions = generate("seed", "station", 1000)
    again, _ = generate("seed", "station", 1000)
    other, _ = generate("other-seed", "station", 1000)
    assert patients == again
    assert patients != other
    assert len(patients) == 1000
    bsns = [bsn_of(p) for p in patients]
    assert all(is_valid_bsn(b) for b in bsns)
    assert len(set(bsns)) > 995  # collisions are possible but rare
    assert {p["gender"] for p in patients} == {"female", "male"}
    # Hypertension is the most common condition, as among Dutch adults.
    codes = [c["code"]["coding"][0]["code"] for c in conditions]
    assert codes.count("38341003") == max(codes.count(c) for c in set(codes))
    ids = {p["id"] for p in patients}
    assert all(c["subject"]["reference"].removeprefix("Patient/") in ids for c in conditions)


def test_store_is_durable_and_ordered(tmp_path):
    store = DocumentStore(tmp_path / "db.sqlite")
    store.put("c", "b", {"n": 1})
    store.put("c", "a", {"n": 2})
    assert not store.insert_new("c", "a", {"n": 3})
    store.close()
    reopened = DocumentStore(tmp_path / "db.sqlite")
    assert reopened.list("c") == [{"n": 1}, {"n": 2}]
    assert reopened.get("c", "a") == {"n": 2}
    assert reopened.delete("c", "a") and reopened.get("c", "a") is None


def test_audit_chain_detects_tampering(tmp_path):
    store = DocumentStore(tmp_path / "audit.sqlite")
    log = AuditLog(store)
    for outcome in (200, 403, 401):
        log.append(action="read", outcome=outcome)
    assert log.verify() == {"valid": True, "entries": 3}
    # The chain continues after a restart.
    log = AuditLog(store)
    log.append(action="read", outcome=200)
    assert log.verify() == {"valid": True, "entries": 4}
    tampered = store.get("audit", f"{2:012d}")
    tampered["outcome"] = 200
    store.put("audit", f"{2:012d}", tampered)
    assert log.verify() == {"valid": False, "entries": 2, "broken_at": 2}


def test_removing_an_audit_entry_is_detected(tmp_path):
    store = DocumentStore(tmp_path / "audit.sqlite")
    log = AuditLog(store)
    for n in range(3):
        log.append(n=n)
    store.delete("audit", f"{2:012d}")
    assert log.verify()["valid"] is False


def test_iterate_by_key_prefix(tmp_path):
    store = DocumentStore(tmp_path / "db.sqlite")
    for key in ("111|a", "111|b", "1112|c", "222|d"):
        store.put("c", key, {"key": key})
    assert [d["key"] for d in store.iterate("c", key_prefix="111|")] == ["111|a", "111|b"]
    assert len(store.list("c")) == 4
