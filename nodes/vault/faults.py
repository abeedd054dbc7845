"""The deliberate defects a vault reference node can be started with (setting `fault: NAME`),
for the mutation self-test; see nodes/common/faults.py. Name -> what the node then does wrong."""

FAULTS: dict[str, str] = {
    # --- who may call: tokens and DPoP proofs ---
    "grant-unauthenticated": "the grant endpoint hands out the grant credential without any access token",
    "bearer-accepted": "a token that is not bound to a key (a Bearer token) opens the vault like a DPoP-bound one",
    "dpop-token-as-bearer": "a DPoP-bound token presented with the Bearer scheme is accepted without a proof",
    "dpop-proof-optional": "a DPoP-bound token presented with the DPoP scheme but no proof is accepted",
    "dpop-replay-accepted": "the vault ignores that a DPoP proof was used before",
    "dpop-request-unchecked": "the vault ignores the method and URL a DPoP proof was made for",
    "dpop-binding-unchecked": "the vault ignores whose key signed a DPoP proof and which token it was made for",
    "any-scope-accepted": "tokens of every scope the trust node knows open the vault, not only welldata",
    # --- access requests and the citizen's decisions ---
    "purpose-not-required": "an access request without a purpose is accepted",
    "requests-visible-to-other-apps": "any app that knows an access request's id reads it, not only the app that asked",
    "grant-visible-to-other-apps": "any app that knows an access request's id fetches its grant credential",
    "citizen-list-drops-newest": "the citizen's list of access requests for a pod leaves out the newest one",
    "decision-changeable": "a request that was decided can be decided again, turning a denial into a grant",
    "decision-other-pod": "a decision or revocation addressed under another citizen's pod acts on the request",
    # --- what a grant opens ---
    "read-before-approval": "a request the citizen has not decided yet already opens the pod",
    "denial-ignored": "the access check asks whether the citizen decided, not what: a denied request opens the pod",
    "revocation-keeps-access": "revocation is acknowledged and the credential revoked, but the app keeps reading",
    "revocation-not-published": "revocation ends access at the vault but the credential's status is never revoked",
    "revocation-ends-every-grant": "revoking one app's grant also ends every other app's grant for the same pod",
    "expired-grant-accepted": "a grant past its expiry still opens the pod",
    "grant-opens-any-pod": "an app with a grant for one pod reads every citizen's pod",
    "grant-names-pod-root": "the grant credential names the whole pod as its container, not the lifestyle container",
    "grant-names-citizen": "the grant credential's subject is the citizen who owns the pod, not the app",
    "resource-reads-refused": "a grant opens the container itself but none of the resources in it",
    # --- what the pod and its log show ---
    "container-drops-newest": "the container listing leaves out the most recently recorded resource",
    "container-lists-internal-urls": "the container lists its resources under the vault's internal address",
    "audit-drops-newest": "the audit log leaves out its newest entry",
    # --- what the vault serves as FHIR ---
    "observation-passed-through": "a recorded measurement is kept with whatever else the app sent, unchecked",
}
