"""The deliberate defects a trust reference node can be started with (setting `fault: NAME`),
for the mutation self-test; see nodes/common/faults.py. Name -> what the node then does wrong.

Each is one rule broken the way a vendor could ship it, everything else left correct; the trust
profile must catch every one (testbed/conformance/variants/trust.yaml names the check)."""

FAULTS: dict[str, str] = {
    # --- the token endpoint skips one of its rules ------------------------------------------
    "token-skips-validity-window": "the token endpoint accepts presentations valid for longer than 5 s",
    "token-skips-signer-check": "the token endpoint accepts credentials about another subject than the signer",
    "token-skips-audience-check": "the token endpoint accepts presentations for another authorization server",
    "token-skips-presentation-definition": "the token endpoint does not check the submission against the definition",
    "token-skips-nonce-check": "the token endpoint accepts a presentation whose nonce was used before",
    "token-skips-issuer-trust": "the token endpoint accepts credentials of issuers it does not trust",
    "token-skips-credential-expiry": "the token endpoint accepts expired credentials",
    "token-skips-revocation": "the token endpoint does not look at the issuer's status list",
    "token-accepts-reused-dpop-proof": "the token endpoint accepts a DPoP proof that was used before",
    "token-ignores-dpop-proof": "the token endpoint issues a Bearer token when the request carries a DPoP proof",
    "unknown-scope-accepted": "a scope outside the policy gets the organisation definition instead of invalid_scope",
    "nonce-remembered-per-signer": "the nonce memory keys on the signer, so a second fresh presentation is refused",
    # --- introspection ---------------------------------------------------------------------
    "introspection-always-active": "introspection answers active true for a token the node never issued",
    "introspection-wrong-client": "introspection names the credential's issuer as client_id instead of the signer",
    "introspection-omits-policy-claims": "introspection leaves out the claims the definition's field ids name",
    # --- DPoP validation -------------------------------------------------------------------
    "dpop-validate-always-valid": "DPoP validation answers valid for any proof",
    "dpop-validate-accepts-reused-proof": "DPoP validation accepts a proof whose jti was used before",
    # --- credentials, presentations, documents ---------------------------------------------
    "verifier-ignores-signature": "the verifier API does not check the signatures of credentials and presentations",
    "verifier-ignores-expiry": "the verifier API reports expired credentials valid",
    "verifier-ignores-revocation": "the verifier API does not look at the issuer's status list",
    "verifier-ignores-trust": "the verifier API reports credentials of untrusted issuers valid",
    "issue-unrevocable-without-expiry": "the issuer API issues a credential that neither expires nor can be revoked",
    "did-document-wrong-key": "DID documents publish the node's first subject's key for every subject",
    "revocation-not-recorded": "revocation is acknowledged but the status list bit is not set",
    "trust-not-withdrawn": "withdrawing trust in an issuer is acknowledged but the issuer stays trusted",
    "search-ignores-untrusted-option": "search never returns credentials of untrusted issuers, even when asked to",
    "service-not-removed": "removing a service from a DID document is acknowledged but the service stays",
    "as-metadata-wrong-issuer": "the authorization server metadata names the node's base URL as issuer",
    # --- discovery ---------------------------------------------------------------------------
    "discovery-drops-newest": "the discovery server's list leaves out its newest entry",
    "discovery-accepts-wrong-audience": "the discovery server accepts a registration for another service",
    "discovery-accepts-long-validity": "the discovery server accepts registrations valid longer than allowed",
    "discovery-accepts-replayed-registration": "the discovery server accepts a presentation it accepted before",
    "discovery-accepts-untrusted-credentials": "the discovery server accepts credentials of issuers it does not trust",
    "discovery-search-case-sensitive": "discovery search compares letter case, so a name in other case is not found",
    "discovery-ignores-retraction": "a node's copy of the list keeps registrations that were retracted",
    "discovery-search-substring": "discovery search matches any part of a value, also without a wildcard",
    # --- outages -----------------------------------------------------------------------------
    "status-list-unreachable-taken-as-unrevoked": "a status list that cannot be fetched is taken to revoke nothing",
    "token-failure-cached": "after a token request fails for a server that is down, requests that may use the "
    "cache get that failure again for a minute, also once a fresh request has got a token again",
}
