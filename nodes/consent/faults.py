"""The deliberate defects a consent reference node can be started with (setting `fault: NAME`),
for the mutation self-test; see nodes/common/faults.py. Name -> what the node then does wrong."""

FAULTS: dict[str, str] = {
    # the closed question and its signature
    "closed-question-always-permit": "The closed question answers Permit for treatment whatever the citizen chose.",
    "accepts-unsigned-query": "A closed question without an XML Signature is answered as if it were signed.",
    "accepts-changed-query": "The signature's digest and value are not verified: a query changed after signing "
    "is answered.",
    "accepts-untrusted-signer": "The signer's certificate is not checked against the network CA.",
    "missing-bsn-answered": "A closed question without the patient's BSN gets a Deny instead of a Sender fault.",
    "signature-wrapping-accepted": "The question is read from the first XACML Request of the message, whether the "
    "signature covers it or not; a second Request is not refused.",
    "echo-dropped": "The answer leaves out the attributes the query marked IncludeInResult.",
    "role-not-required": "A closed question without the professional's role (subject:role) is answered.",
    "professional-ignored": "The role and the professional (UZI number) a closed question names are not taken into "
    "account: a choice naming them never matches.",
    "mtls-optional": "The public API asks for a client certificate but also answers clients without one.",
    # the decision rule
    "withdrawal-not-applied": "A withdrawal is acknowledged (200, status withdrawn) but not recorded: the choice "
    "still counts.",
    "objection-loses-tie": "Between equally specific choices the permit wins instead of the objection.",
    "specificity-ignored": "Any matching objection wins, also over a more specific permit.",
    "requester-category-ignored": "A choice naming a requester category counts for requesters of any category.",
    "category-choices-never-match": "A choice naming a care-provider category instead of an organisation never "
    "matches.",
    "data-category-ignored": "A choice for one data category counts for every data category.",
    "data-holder-ignored": "A choice for one data holder counts for every data holder.",
    "json-decision-ignores-objections": "The JSON form answers Permit whenever a matching active permit exists, "
    "objections or not (the XACML form is right).",
    "eleven-test-skipped": "Any nine digits are taken as a BSN: the eleven-test is not applied.",
    # the record of choices
    "withdraw-twice-accepted": "Withdrawing a choice that is already withdrawn answers 200 again.",
    "history-drops-withdrawn": "A withdrawn choice is deleted from the citizen's record instead of kept as withdrawn.",
    "consent-list-drops-newest": "The list of a citizen's choices leaves out the most recent one.",
    "consents-in-memory-only": "Choices (and everything else the service records) are kept in memory only: "
    "acknowledged, then lost when the process is killed.",
    # the open question and the opt-out register
    "open-question-lists-every-holder": "The open question names every holder with data on the citizen, "
    "consent or not.",
    "opt-out-not-recorded": "An opt-out is acknowledged (201) but not recorded.",
    "opt-out-check-always-empty": "The opt-out check never lists anyone.",
    "opt-out-check-lists-others": "The opt-out check lists every citizen who opted out, also those not asked about.",
    "opt-back-in-not-applied": "Withdrawing an opt-out is acknowledged (200) but the citizen stays opted out.",
    # subscriptions
    "no-notification-on-withdrawal": "Subscribers hear of new choices but not of withdrawals.",
    "notifies-every-subscriber": "Every subscriber for the citizen is notified, also one the change does not concern.",
    "subscription-reason-unchecked": "A subscription with another reason than OTV is accepted.",
    "notifications-dropped-after-outage": "A notification the subscriber does not take is retried in memory for a "
    "few seconds and then dropped: one missed during a longer outage of the subscriber never arrives.",
}
