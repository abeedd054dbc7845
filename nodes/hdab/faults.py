"""The deliberate defects a hdab reference node can be started with (setting `fault: NAME`),
for the mutation self-test; see nodes/common/faults.py. Name -> what the node then does wrong."""

FAULTS: dict[str, str] = {
    # the catalogue
    "harvest-drops-last-station": "The harvest skips the last station it knows: that station's datasets are missing.",
    "harvest-invents-datasets": "The harvest takes every data service of a catalogue for a dataset too.",
    "individuals-added-on-reharvest": "A harvest adds a dataset's number of individuals to the one it had.",
    "catalogue-flat-records": "The catalogue lists the body's harvest records as plain JSON, not as DCAT-AP.",
    "catalogue-points-at-stations": "Each dataset's distribution points data users at the station's own analysis API.",
    # applications
    "purpose-not-required": "An application without a purpose is received.",
    "record-level-application-accepted": "An application for an analysis no station offers (record-level) is received.",
    "token-scope-not-checked": "The data-user API takes an access token of any scope.",
    "applications-readable-by-others": "Any data user can read any application.",
    "withdraw-by-others": "Any data user can withdraw any application.",
    "withdraw-after-decision": "An application can be withdrawn after it was decided.",
    "withdraw-only-when-received": "An application can be withdrawn only before its completeness check starts.",
    "withdrawal-not-stored": "A withdrawal is answered as done but the application stays as it was.",
    "transitions-any-order": "An open application may move to any state, a decision straight from received too.",
    "permit-without-assessment": "A permit can be granted straight from the completeness check, without assessment.",
    "completeness-not-checked": "An application naming datasets in no catalogue passes the completeness check.",
    "rejected-reopened": "A rejected application can be taken up again.",
    "permit-issued-on-rejection": "A rejected application gets a permit credential too.",
    "data-request-permitted": "A data request can be decided with a permit.",
    "data-request-credential-handed-out": "The user of an approved data request gets its credential.",
    "data-request-not-answered": "No central analysis runs under an approved data request.",
    "applications-in-memory-only": "Applications, permits and everything else the body records are kept in memory "
    "only: acknowledged, and lost when the process is killed.",
    # permits
    "permit-readable-by-others": "Any data user can fetch any permit credential.",
    "revoked-permit-handed-out": "The credential of a revoked permit is still handed out.",
    "application-read-carries-credential": "Reading an application hands out its permit credential in any state.",
    "permit-subject-is-body": "The permit credential names the body, not the data user, as its subject.",
    "revocation-not-done": "Revocation is recorded on the application but the credential is not revoked.",
    "revocation-not-stored": "Revocation revokes the credential but the application stays permitted.",
    # central analyses
    "analysis-before-decision": "Central analyses are sent to the stations before the application is decided.",
    "analysis-after-withdrawal": "Central analyses are sent to the stations under a withdrawn application.",
    "analysis-after-revocation": "Central analyses are sent to the stations under a revoked permit.",
    "analysis-for-others": "A data user can run central analyses under another user's permit.",
    "small-cells-not-suppressed": "The combined result is not checked again: a suppressed part counts as zero.",
    "station-results-exposed": "The answer to a central analysis carries each station's own result too.",
    # the audit
    "audit-other-permits": "The audit of a permit shows the stations' entries of every permit of the body.",
    "audit-served-from-cache": "The audit of a permit is read from the stations once and then served from a cache.",
}
