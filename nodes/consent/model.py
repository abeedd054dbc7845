"""Consent choices and the decision rule (shared/REFERENCE.md, section 2).

A choice is about one citizen and three dimensions: who holds the data, who asks for it,
and which data category. Each dimension is a specific value (a URA number or a care-provider
category code) or "*" (any). Opt-in: without a
matching permit the answer is Deny. The most specific matching choice wins; when equally
specific choices disagree, the objection (deny) wins."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

ANY = "*"
DIMENSIONS = ("data_holder", "requester", "data_category")
Decision = Literal["Permit", "Deny"]


@dataclass(frozen=True)
class Answer:
    decision: Decision
    reason: str
    consent_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"decision": self.decision, "reason": self.reason}
        if self.consent_id:
            body["consent_id"] = self.consent_id
        return body


Question = dict[str, set[str]]  # dimension -> what the party is known as (URA, category code)
Faulty = Callable[[str], bool]  # the node's fault switch (nodes/common/faults.py)


def _correct(_: str) -> bool:
    return False


def question_of(**dimensions: str | set[str | None] | set[str] | None) -> Question:
    """Each dimension as the set of identifiers its party goes by; None values are dropped."""
    question: Question = {}
    for name, value in dimensions.items():
        values = {value} if isinstance(value, str) else set(value or ())
        question[name] = {v for v in values if v}
    return question


def matches(choice: dict[str, Any], question: Question, faulty: Faulty = _correct) -> bool:
    return all(choice[d] == ANY or choice[d] in question[d] or _faulty_match(choice, d, faulty) for d in DIMENSIONS)


def _is_category(value: str) -> bool:
    """A care-provider category code (Z3), not an organisation's URA number (digits only)."""
    return value != ANY and not value.isdigit()


def _faulty_match(choice: dict[str, Any], dimension: str, faulty: Faulty) -> bool:
    """The deliberate defects of the matching rule, for the mutation self-test."""
    value = choice[dimension]
    if dimension == "requester" and faulty("requester-category-ignored"):
        return _is_category(value)
    if dimension == "data_category":
        return faulty("data-category-ignored")
    if dimension == "data_holder":
        return faulty("data-holder-ignored")
    return False


def more_specific(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """`a` is more specific than `b` when it names everything `b` names, and more. Choices
    that each name something the other leaves open cannot be compared: neither wins."""
    named_a = {d for d in DIMENSIONS if a[d] != ANY}
    named_b = {d for d in DIMENSIONS if b[d] != ANY}
    return named_b < named_a


def decide(choices: list[dict[str, Any]], question: Question, faulty: Faulty = _correct) -> Answer:
    """`choices` are the citizen's choices (withdrawn ones are passed over); `question` names,
    per dimension, every identifier the party goes by. `faulty`: a deliberately faulty node's
    switch (the mutation self-test); a correct node leaves it out."""
    relevant = [c for c in choices if c["status"] == "active" and matches(c, question, faulty)]
    if faulty("category-choices-never-match"):
        relevant = [c for c in relevant if not any(_is_category(c[d]) for d in ("data_holder", "requester"))]
    if not relevant:
        return Answer("Deny", "no consent registered for this question")
    # The winners are the matching choices no other matching choice is more specific than;
    # among them, equally specific or not comparable, an objection wins.
    winners = [c for c in relevant if not any(more_specific(other, c) for other in relevant)]
    if faulty("specificity-ignored"):
        winners = relevant
    if faulty("objection-loses-tie"):
        winners = [c for c in winners if c["decision"] == "permit"] or winners
    objection = next((c for c in winners if c["decision"] == "deny"), None)
    if objection:
        return Answer("Deny", "the citizen objected", objection["id"])
    return Answer("Permit", "the citizen consented", winners[0]["id"])
