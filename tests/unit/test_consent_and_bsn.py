import random

import pytest

from nodes.common.bsn import is_valid_bsn, random_bsn
from nodes.consent.model import decide, question_of


@pytest.mark.parametrize(
    ("bsn", "valid"),
    [
        ("111222333", True),
        ("123456782", True),
        ("123456780", False),
        ("12345678", False),
        ("12345678a", False),
        ("000000000", False),
    ],
)
def test_eleven_test(bsn, valid):
    assert is_valid_bsn(bsn) is valid


def test_random_bsns_are_valid_and_reproducible():
    first = [random_bsn(random.Random("seed")) for _ in range(3)]
    assert first == [random_bsn(random.Random("seed")) for _ in range(3)]
    rng = random.Random(7)
    assert all(is_valid_bsn(random_bsn(rng)) for _ in range(500))


QUESTION = question_of(data_holder="H", requester="R", data_category="medical")


def choice(id_, decision, holder="*", requester="*", category="*", status="active"):
    return {
        "id": id_,
        "decision": decision,
        "data_holder": holder,
        "requester": requester,
        "data_category": category,
        "status": status,
    }


def test_opt_in_without_choices_is_deny():
    assert decide([], QUESTION).decision == "Deny"


def test_matching_permit_permits_and_names_the_choice():
    answer = decide([choice("p", "permit", holder="H", requester="R")], QUESTION)
    assert (answer.decision, answer.consent_id) == ("Permit", "p")


def test_non_matching_choice_does_not_count():
    assert decide([choice("p", "permit", requester="OTHER")], QUESTION).decision == "Deny"


def test_more_specific_choice_wins_either_way():
    general_deny, specific_permit = choice("d", "deny"), choice("p", "permit", holder="H", requester="R")
    assert decide([general_deny, specific_permit], QUESTION).decision == "Permit"
    general_permit, specific_deny = choice("p", "permit"), choice("d", "deny", category="medical")
    assert decide([general_permit, specific_deny], QUESTION).decision == "Deny"


def test_objection_wins_a_tie():
    answer = decide([choice("p", "permit", holder="H"), choice("d", "deny", requester="R")], QUESTION)
    assert (answer.decision, answer.consent_id) == ("Deny", "d")


def test_withdrawn_choices_do_not_count():
    assert decide([choice("p", "permit", status="withdrawn")], QUESTION).decision == "Deny"


def test_a_choice_may_name_a_category_instead_of_an_organisation():
    question = question_of(data_holder={"H", "Z3"}, requester={"R", "Z1"}, data_category="medical")
    assert decide([choice("p", "permit", holder="Z3", requester="Z1")], question).decision == "Permit"
    assert decide([choice("p", "permit", holder="Z3", requester="Z9")], question).decision == "Deny"
    # A substring of an identifier is no match.
    assert (
        decide(
            [choice("p", "permit", holder="H")], question_of(data_holder="HH", requester="R", data_category="medical")
        ).decision
        == "Deny"
    )


def test_choices_that_cannot_be_compared_count_as_a_tie():
    # A deny for this data category against a permit for this holder and requester: neither
    # names everything the other does, so the objection wins.
    question = question_of(data_holder="H", requester="R", data_category="GGC002")
    permit = choice("p", "permit", holder="H", requester="R")
    deny = choice("d", "deny", category="GGC002")
    assert decide([permit, deny], question).decision == "Deny"
    # A choice that names all three is more specific than both.
    assert decide([permit, deny, choice("x", "permit", "H", "R", "GGC002")], question).decision == "Permit"


# --- the deliberate defects of the decision rule (the mutation self-test's variants) ----------
def defect(name: str):
    return lambda asked: asked == name


CATEGORY_QUESTION = question_of(data_holder={"90000002", "Z3"}, requester={"90000003", "Z1"}, data_category="GGC002")


@pytest.mark.parametrize(
    ("fault", "choices", "right", "wrong"),
    [
        (
            "objection-loses-tie",
            [choice("d", "deny", "90000002", "Z1", "GGC002"), choice("p", "permit", "90000002", "90000003", "GGC002")],
            "Deny",
            "Permit",
        ),
        (
            "specificity-ignored",
            [choice("d", "deny"), choice("p", "permit", "90000002", "90000003", "GGC002")],
            "Permit",
            "Deny",
        ),
        ("requester-category-ignored", [choice("p", "permit", "90000002", "Z4", "GGC002")], "Deny", "Permit"),
        ("category-choices-never-match", [choice("p", "permit", "90000002", "Z1", "GGC002")], "Permit", "Deny"),
        ("data-category-ignored", [choice("p", "permit", "90000002", "90000003", "GGC003")], "Deny", "Permit"),
        ("data-holder-ignored", [choice("p", "permit", "90000009", "90000003", "GGC002")], "Deny", "Permit"),
    ],
)
def test_each_decision_defect_changes_the_answer_it_is_about(fault, choices, right, wrong):
    """A correct service gives the right answer; the variant with the defect the wrong one."""
    assert decide(choices, CATEGORY_QUESTION).decision == right
    assert decide(choices, CATEGORY_QUESTION, defect(fault)).decision == wrong


def test_a_requester_ura_is_not_a_category_for_the_category_defect():
    """The defect ignores the category a choice names, not an organisation it names."""
    choices = [choice("p", "permit", "90000002", "90000009", "GGC002")]
    assert decide(choices, CATEGORY_QUESTION, defect("requester-category-ignored")).decision == "Deny"


# --- subscriptions: refusals as OperationOutcomes naming the rule -----------------------------
SUBSCRIPTION = {
    "resourceType": "Subscription",
    "reason": "OTV",
    "criteria": "Consent?_query=otv&patientid=111222333&providerid=90000003",
    "channel": {"type": "rest-hook", "endpoint": "https://gp.example/notify"},
}


@pytest.mark.parametrize(
    ("change", "status", "rule"),
    [
        ({"resourceType": "Patient"}, 400, "not-a-subscription"),
        ({"reason": "other"}, 422, "subscription-reason"),
        ({"channel": {"type": "rest-hook", "endpoint": "http://gp.example"}}, 422, "subscription-channel"),
        ({"criteria": "Patient?x=1"}, 422, "subscription-criteria"),
        ({"criteria": "Consent?_query=otv&patientid=123456780&providerid=1"}, 422, "bsn-invalid"),
        ({"criteria": "Consent?_query=otv&patientid=111222333"}, 422, "subscription-criteria"),
    ],
)
def test_a_refused_subscription_names_its_rule(tmp_path, change, status, rule):
    from nodes.common.http import HttpError
    from nodes.common.storage import DocumentStore
    from nodes.consent import subscriptions

    with pytest.raises(HttpError) as refused:
        subscriptions.create(DocumentStore(tmp_path / "s.sqlite"), {**SUBSCRIPTION, **change})
    assert (refused.value.status, refused.value.code) == (status, rule)
    outcome = subscriptions.operation_outcome(refused.value)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["details"]["coding"] == [{"system": subscriptions.REFUSAL_SYSTEM, "code": rule}]
    assert outcome["issue"][0]["code"] == ("structure" if status == 400 else "business-rule")


def test_a_change_notifies_only_the_subscribers_it_concerns(tmp_path):
    from nodes.common.storage import DocumentStore
    from nodes.consent import subscriptions

    store = DocumentStore(tmp_path / "s.sqlite")
    gp = subscriptions.create(store, SUBSCRIPTION)
    nursing = subscriptions.create(
        store, {**SUBSCRIPTION, "criteria": "Consent?_query=otv&patientid=111222333&providerid=90000006"}
    )
    change = {**choice("c", "permit", "90000002", "90000006", "GGC002"), "bsn": "111222333"}
    assert [s["id"] for s in subscriptions.concerned(store, change)] == [nursing["id"]]
    assert {s["id"] for s in subscriptions.concerned(store, change, everyone=True)} == {gp["id"], nursing["id"]}
