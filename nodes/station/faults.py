"""The deliberate defects a station reference node can be started with (setting `fault: NAME`),
for the mutation self-test; see nodes/common/faults.py. Name -> what the node then does wrong."""

FAULTS: dict[str, str] = {
    # --- who may call: tokens and DPoP proofs (BgZ, handover, analyses) ---
    "token-scope-not-checked": "a token of another scope than the endpoint serves is accepted",
    "notifications-from-anyone": "a consent notification is accepted from any caller, not only the consent service",
    "dpop-bound-token-as-bearer": "a DPoP-bound token presented with the Bearer scheme is accepted without a proof",
    "dpop-proof-not-checked": "the verdict on a DPoP proof is ignored: a reused proof or one for another URL passes",
    "notification-without-token": "the eOverdracht notification endpoint accepts a notification without a token",
    # --- consent, and what a search returns ---
    "consent-not-asked": "BgZ data is released without asking the consent service",
    "consent-answer-kept": "a Permit is remembered per patient and requester, so a withdrawal is not seen",
    "consent-asked-once-per-requester": "after one Permit for a requester, its reads of any patient are not asked",
    "consent-permit-misread": "the consent answer is compared case-sensitively with 'permit': nothing is released",
    "search-ignores-patient": "a search by patient returns a page of that type's resources of every patient",
    "serves-without-consent-answer": "while the consent service is unreachable or silent, data is released (fail open)",
    # --- the audit log ---
    "audit-skips-refusals": "refused FHIR requests are not written to the audit log",
    "audit-drops-newest": "the audit log listing leaves out its newest entry",
    "audit-verify-always-valid": "audit verification answers valid true, also against an anchor the log does not hold",
    "audit-shows-other-bodies": "the permit audit trail shows any caller with the audit scope every permit's entries",
    "audit-buffered": "audit entries are kept in memory and written to storage only at an orderly shut-down: "
    "entries acknowledged before a crash are lost",
    # --- the eOverdracht handover ---
    "handover-outsider-allowed": "an organisation that does not own the Task reads it and its Composition",
    "handover-access-not-ended": "the Task and Composition stay readable after the Task is completed",
    "task-any-transition": "the receiver may set any Task status, e.g. complete a Task it never accepted",
    "handover-update-not-stored": "a status update is answered 200 with the new status but not stored",
    "notification-not-stored": "a notification is answered 202 but not kept",
    # --- secondary use: tasks and permits ---
    "task-without-permit": "a task without a permit runs as if one were given",
    "tasks-visible-to-others": "any holder of a secondary-use token reads any task and its result",
    "permit-not-verified": "the permit is not verified: signature, issuer, expiry and revocation go unchecked",
    "permit-revocation-unchecked": "a revoked permit is accepted",
    "permit-expiry-unchecked": "an expired permit is accepted",
    "permit-holder-not-checked": "a permit issued to another data user is accepted",
    "permit-datasets-not-checked": "a permit that does not cover the task's dataset is accepted",
    "permit-analyses-not-checked": "a permit that does not allow the task's kind of analysis is accepted",
    "opt-outs-ignored": "people in the opt-out register are counted",
    "small-cells-not-suppressed": "counts below the threshold are published",
    "record-level-allowed": "a records analysis is run and answers rows of data",
    # --- what the station publishes ---
    "catalogue-wrong-endpoint": "the catalogue names another address as the analysis service's endpoint",
    # --- FHIR R4 shapes ---
    "capability-without-date": "the CapabilityStatement has no date, which R4 requires",
    "task-stu3-requester": "the eOverdracht Task names its requester as STU3 did (requester.agent)",
}
