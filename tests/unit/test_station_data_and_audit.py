from nodes.common.audit import AuditLog
from nodes.common.bsn import is_valid_bsn
from nodes.common.storage import DocumentStore
from nodes.station.synthetic import bsn_of, generate


def test_synthetic_data_is_deterministic_and_plausible():
    data = generate("seed", "station", 1000)
    patients, conditions = data.patients, data.resources["Condition"]
    again = generate("seed", "station", 1000)
    other = generate("other-seed", "station", 1000)
    assert patients == again.patients and data.resources == again.resources and data.features == again.features
    assert patients != other.patients
    assert len(patients) == 1000
    bsns = [bsn_of(p) for p in patients]
    assert all(is_valid_bsn(b) for b in bsns)
    assert len(set(bsns)) == 1000  # a BSN names one person
    assert {p["gender"] for p in patients} == {"female", "male"}
    # Hypertension is the most common condition, as among Dutch adults.
    codes = [c["code"]["coding"][0]["code"] for c in conditions]
    assert codes.count("38341003") == max(codes.count(c) for c in set(codes))
    ids = {p["id"] for p in patients}
    assert all(c["subject"]["reference"].removeprefix("Patient/") in ids for c in conditions)
    # Every BgZ type is there, each resource points at a patient of this station.
    assert set(data.resources) == {"Condition", "MedicationStatement", "AllergyIntolerance", "Observation"}
    for resource in data.resources["AllergyIntolerance"] + data.resources["Observation"]:
        subject = resource.get("subject") or resource["patient"]
        assert subject["reference"].removeprefix("Patient/") in ids
    # Each condition comes with its medication; adults have measurements, children none.
    assert len(data.resources["MedicationStatement"]) == len(conditions)
    rows = {row["patient"]: row for row in data.features}
    assert all(("bmi" in row) == (row["age"] >= 18) for row in rows.values())
    diabetic = [r["bmi"] for r in rows.values() if "44054006" in r["conditions"] and "bmi" in r]
    others = [r["bmi"] for r in rows.values() if "44054006" not in r["conditions"] and "bmi" in r]
    assert sum(diabetic) / len(diabetic) > sum(others) / len(others)


def test_patients_do_not_change_when_clinical_detail_is_added():
    """Patients draw from their own random stream, so the same seed keeps the same people."""
    first = generate("seed", "station", 50).patients
    assert first == generate("seed", "station", 60).patients[:50]


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


def test_keep_newest_drops_the_oldest_of_one_collection_only(tmp_path):
    store = DocumentStore(tmp_path / "db.sqlite")
    for n in range(5):
        store.put("notes", f"k{n}", {"n": n})
    store.put("other", "x", {"n": -1})
    store.keep_newest("notes", 2)
    assert [d["n"] for d in store.iterate("notes")] == [3, 4]
    assert store.count("other") == 1


def test_a_transaction_keeps_its_writes_together_or_not_at_all(tmp_path):
    store = DocumentStore(tmp_path / "s.sqlite")
    with store.transaction():
        store.put("counters", "issuer", {"next": 1})
        store.put("issued", "vc-1", {"index": 0})
    try:
        with store.transaction():
            store.put("counters", "issuer", {"next": 2})
            raise ValueError("signing failed")
    except ValueError:
        pass
    reopened = DocumentStore(tmp_path / "s.sqlite")
    assert reopened.get("counters", "issuer") == {"next": 1}  # the failed one left nothing
    assert reopened.get("issued", "vc-1") == {"index": 0}
    with store.transaction():
        try:
            with store.transaction():
                pass
        except RuntimeError as exc:
            assert "already open" in str(exc)
        else:
            raise AssertionError("a nested transaction was allowed")


def test_the_synthetic_data_ids_are_name_based_uuids():
    import uuid

    data = generate("seed", "st", 3)
    patient = data.patients[0]
    assert patient["id"] == str(uuid.uuid5(uuid.NAMESPACE_URL, "seed|st|patient|0"))
