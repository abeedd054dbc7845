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
