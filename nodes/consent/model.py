"""Consent choices and the decision rule (shared/REFERENCE.md, section 2).

A choice is about one citizen and three dimensions: who holds the data, who asks for it,
and which data category. Each dimension is a specific value (a URA number or a care-provider
category code) or "*" (any). Opt-in: without a
matching permit the answer is Deny. The most specific matching choice wins; when equally
specific choices disagree, the objection (deny) wins."""

from __future__ import annotations

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


def question_of(**dimensions: str | set[str] | None) -> Question:
    """Each dimension as the set of identifiers its party goes by; None values are dropped."""
    question: Question = {}
    for name, value in dimensions.items():
        values = {value} if isinstance(value, str) else set(value or ())
        question[name] = {v for v in values if v}
    return question


def matches(choice: dict[str, Any], question: Question) -> bool:
    return all(choice[d] == ANY or choice[d] in question[d] for d in DIMENSIONS)


def more_specific(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """`a` is more specific than `b` when it names everything `b` names, and more. Choices
    that each name something the other leaves open cannot be compared: neither wins."""
    named_a = {d for d in DIMENSIONS if a[d] != ANY}
    named_b = {d for d in DIMENSIONS if b[d] != ANY}
    return named_b < named_a


def decide(choices: list[dict[str, Any]], question: Question) -> Answer:
    """`choices` are the citizen's choices (withdrawn ones are passed over); `question` names,
    per dimension, every identifier the party goes by."""
    relevant = [c for c in choices if c["status"] == "active" and matches(c, question)]
    if not relevant:
        return Answer("Deny", "no consent registered for this question")
    # The winners are the matching choices no other matching choice is more specific than;
    # among them, equally specific or not comparable, an objection wins.
    winners = [c for c in relevant if not any(more_specific(other, c) for other in relevant)]
    objection = next((c for c in winners if c["decision"] == "deny"), None)
    if objection:
        return Answer("Deny", "the citizen objected", objection["id"])
    return Answer("Permit", "the citizen consented", winners[0]["id"])
