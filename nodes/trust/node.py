"""The trust node's state and operations: subjects and their DIDs, issued credentials, the
wallet per subject, and the trusted issuers. HTTP handling lives in app.py."""

from __future__ import annotations

import time
from datetime import datetime
from functools import lru_cache
from typing import Any

from joserfc.jwk import ECKey

from nodes.common.faults import fault_switch
from nodes.common.http import HttpError, client_ssl_context, outbound_client, outbound_transport
from nodes.common.storage import DocumentStore
from nodes.trust.credentials import verify_signature
from nodes.trust.did import Resolver, build_document, path_id_for
from nodes.trust.policy import default_policy
from nodes.trust.presentation import select
from nodes.trust.replay import ExpiringStore, OneUseMemory
from nodes.trust.statuslist import SignedList, StatusListReader, StatusLists
from protocols import vcjwt as vc
from protocols.didweb import did_for
from protocols.keys import derive_key, public_jwk
from protocols.nodeconfig import NodeConfig
from protocols.settings import TrustSettings

SUBJECTS = "subjects"
ISSUED = "issued_credentials"
WALLET = "wallet"  # key "<subject>|<credential id>"
TRUST = "trusted_issuers"  # key "<credential type>|<issuer DID>"


class TrustNode:
    def __init__(self, config: NodeConfig):
        self.config = config
        self.faulty = fault_switch(config)  # the one deliberate defect of a self-test variant, if any
        self.store = DocumentStore(config.data_dir / "trust.sqlite")
        context = client_ssl_context(config)  # one for both: each costs a millisecond, at every node
        self.client = outbound_client(config, context=context)
        self.resolver = Resolver(self.client, self.local_document)
        settings = config.role_settings(TrustSettings)
        self.policy: dict[str, dict[str, Any]] = settings.policy or default_policy()
        self.token_lifetime = settings.token_lifetime_seconds
        self._key = lru_cache(maxsize=1024)(self._derive_key)
        self.status_lists = StatusLists(self.store, config.public_url)
        # Status lists are revalidated for every verification: a transport of their own, below
        # the client layer, so that each request costs as little as it can.
        self.status_transport = outbound_transport(config, context=context)
        self.status_reader = StatusListReader(
            self.status_transport, self.resolver, fail_open=self.faulty("status-list-unreachable-taken-as-unrevoked")
        )
        # How long verifiers may cache this node's status lists (Cache-Control: max-age);
        # 0, the default, makes every verification see a revocation at once.
        self.status_list_max_age = settings.status_list_max_age_seconds
        self.one_use = OneUseMemory()  # presentation nonces and DPoP proof ids
        self._first_subject: str | None = None  # for the did-document-wrong-key defect only
        # Issued access tokens live in memory, as in the Nuts node: they last minutes. A restart
        # forgets them; a client that cached one finds it inactive and asks for a new one,
        # bypassing its cache with Cache-Control: no-cache.
        self.access_tokens = ExpiringStore()
        self.token_evidence = ExpiringStore()  # per token: what extended introspection shows
        # Tokens this node obtained for its subjects, reused while they last:
        # (subject, authorization server, scope, token type) -> (expires at, token response).
        self.client_tokens: dict[tuple[str, str, str, str], tuple[float, dict[str, Any]]] = {}
        # Failed token requests, same key -> (until, the failure): filled by a faulty node only
        # (token-failure-cached); a correct node remembers no failure.
        self.client_failures: dict[tuple[str, str, str, str], tuple[float, HttpError]] = {}

    def dpop_memory(self, where: str) -> OneUseMemory:
        """Where DPoP proof ids are remembered for a check at `where` ("token" or "validate"); a
        defect of the self-test forgets them there, so a proof can be used again."""
        forgets = {"token": "token-accepts-reused-dpop-proof", "validate": "dpop-validate-accepts-reused-proof"}
        return OneUseMemory() if self.faulty(forgets[where]) else self.one_use

    async def close(self) -> None:
        await self.client.aclose()
        await self.status_transport.aclose()
        self.store.close()

    # --- subjects and DIDs -------------------------------------------------------------
    def create_subject(self, subject: str) -> dict[str, Any]:
        did = did_for(self.config.public_url, path_id_for(self.config.seed, self.config.name, subject))
        record = {"subject": subject, "did": did, "services": [], "created": time.time(), "deactivated": False}
        if not self.store.insert_new(SUBJECTS, subject, record):
            raise HttpError(409, "Conflict", f"subject {subject!r} already exists")
        self.store.put("did_index", did, {"subject": subject})
        return record

    def subject(self, subject: str) -> dict[str, Any]:
        record = self.store.get(SUBJECTS, subject)
        if record is None:
            raise HttpError(404, "Not Found", f"subject {subject!r} does not exist on this node")
        return record

    def subject_of_did(self, did: str) -> dict[str, Any] | None:
        entry = self.store.get("did_index", did)
        return self.store.get(SUBJECTS, entry["subject"]) if entry else None

    def document(self, record: dict[str, Any]) -> dict[str, Any]:
        key_of = record["subject"]
        if self.faulty("did-document-wrong-key"):  # one node-wide key published for every subject
            key_of = self._first_subject or next(iter(self.store.iterate(SUBJECTS)))["subject"]
            self._first_subject = key_of
        if record.get("deactivated"):  # as the Nuts node: still resolvable, without keys and services
            return build_document(record["did"], None, [])
        extra = record.get("extra_keys", [])
        return build_document(record["did"], public_jwk(self._key(key_of)), record["services"], extra_keys=extra)

    def local_document(self, did: str) -> dict[str, Any] | None:
        record = self.subject_of_did(did)
        return self.document(record) if record else None

    def signing_key(self, did: str) -> ECKey:
        record = self.subject_of_did(did)
        if record is None or record.get("deactivated"):
            raise HttpError(400, "Bad Request", f"{did} is not a DID of an active subject on this node")
        return self._key(record["subject"])

    def _derive_key(self, subject: str) -> ECKey:
        return derive_key(self.config.seed, self.config.name, subject)

    # --- issuing -----------------------------------------------------------------------
    def issue(self, request: dict[str, Any]) -> str:
        types = request.get("type")
        types = [types] if isinstance(types, str) else types
        subject = request.get("credentialSubject")
        issuer = request.get("issuer")
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types) or not types:
            raise HttpError(400, "Bad Request", "'type' must be a string or a list of strings")
        if not isinstance(subject, dict) or not isinstance(subject.get("id"), str):
            raise HttpError(400, "Bad Request", "'credentialSubject' must be an object with an 'id'")
        if request.get("format", "jwt_vc") != "jwt_vc":
            raise HttpError(400, "Bad Request", "only format 'jwt_vc' is offered by this node")
        if not isinstance(issuer, str):
            raise HttpError(400, "Bad Request", "'issuer' must be a DID of this node")
        expires_at = _epoch(request.get("expirationDate"), "expirationDate")
        revocable = request.get("withStatusList2021Revocation", False) is True
        if expires_at is None and not revocable and not self.faulty("issue-unrevocable-without-expiry"):
            # As the Nuts node: a credential that never expires must at least be revocable.
            raise HttpError(
                400, "Bad Request", "a credential without expirationDate needs withStatusList2021Revocation"
            )
        key = self.signing_key(issuer)
        context = request.get("@context")
        context = [context] if isinstance(context, str) else context
        # The status index it takes and the credential it is in are written together, with one
        # wait for the disk: an issuer of a thousand organisations' credentials waits a thousand times.
        with self.store.transaction():
            status = self.status_lists.new_entry(issuer) if revocable else None
            credential_id, token = vc.issue_credential(
                issuer, key, types, subject=subject, expires_at=expires_at, context=context, status=status
            )
            record = {"id": credential_id, "issuer": issuer, "status": status, "jwt": token}
            self.store.put(ISSUED, credential_id, record)
        return token

    def revoke(self, credential_id: str) -> None:
        record = self.store.get(ISSUED, credential_id)
        if record is None:
            raise HttpError(404, "Not Found", f"no credential {credential_id} was issued by this node")
        if record.get("status") is None:
            raise HttpError(
                400, "Bad Request", "this credential was issued without a status list and cannot be revoked"
            )
        if self.faulty("revocation-not-recorded"):
            return
        if not self.status_lists.revoke(record["issuer"], int(record["status"]["statusListIndex"])):
            raise HttpError(409, "Conflict", f"credential {credential_id} is already revoked")

    def status_list(self, issuer: str) -> SignedList:
        if self.subject_of_did(issuer) is None:
            raise HttpError(404, "Not Found", f"{issuer} is not a DID of this node")
        return self.status_lists.credential(issuer, self.signing_key(issuer))

    def present(self, request: dict[str, Any]) -> str:
        """A JWT presentation as the Nuts API builds one: `domain` becomes the audience and
        `challenge` the nonce; the signer is `signerDID` or the credentials' one subject."""
        credentials = request.get("verifiableCredentials")
        if not isinstance(credentials, list) or not credentials or not all(isinstance(c, str) for c in credentials):
            raise HttpError(400, "Bad Request", "'verifiableCredentials' must be a non-empty list of JWT credentials")
        if request.get("format", "jwt_vp") != "jwt_vp":
            raise HttpError(400, "Bad Request", "only format 'jwt_vp' is offered by this node")
        try:
            subjects = {vc.credential_view(vc.Jwt.read(c))["credentialSubject"].get("id") for c in credentials}
        except vc.CredentialError as exc:
            raise HttpError(400, "Bad Request", f"a credential cannot be read: {exc}") from None
        signer = request.get("signerDID") or (subjects.pop() if len(subjects) == 1 else None)
        if not isinstance(signer, str):
            raise HttpError(400, "Bad Request", "give 'signerDID': the credentials have more than one subject")
        now = int(time.time())
        return vc.sign_presentation(
            signer,
            self.signing_key(signer),
            credentials,
            audience=request.get("domain"),
            nonce=request.get("challenge"),
            nbf=now,
            exp=_epoch(request.get("expires"), "expires"),
        )

    async def verify_presentation(
        self, token: str, verify_credentials: bool = True, **checks: bool
    ) -> list[dict[str, Any]]:
        """Signature and validity of a JWT presentation (and of its credentials); `checks` are
        verify_credential's flags, applied to the presentation's signature too."""
        now = time.time()
        presentation = vc.Jwt.read(token)
        if presentation.signer_did != presentation.claims.get("iss"):
            raise vc.CredentialError("the presentation is not signed by its holder")
        if checks.get("check_signature", True):
            await verify_signature(presentation, self.resolver)
        vc.check_validity_period(presentation, now, "the presentation")
        inner = vc.presented(presentation)
        if verify_credentials:
            return [await self.verify_credential(c, now, **checks) for c in inner]
        return [vc.credential_view(vc.Jwt.read(c)) for c in inner]

    # --- wallet and trust ----------------------------------------------------------------
    async def verify_credential(
        self,
        token: str | vc.Jwt,
        now: float | None = None,
        *,
        check_signature: bool = True,
        check_trust: bool = True,
        check_expiry: bool = True,
        check_revocation: bool = True,
    ) -> dict[str, Any]:
        """Signature, validity period, trusted issuer and revocation; returns the credential's
        W3C view. Every check is on by default; the flags exist for the self-test's defects.
        `token` may come read already (the token endpoint reads it for its own rules first)."""
        now = time.time() if now is None else now
        jwt = token if isinstance(token, vc.Jwt) else vc.Jwt.read(token)
        view = vc.credential_view(jwt)
        if jwt.signer_did != jwt.claims.get("iss"):
            raise vc.CredentialError("the credential is not signed by its issuer")
        if check_signature:
            await verify_signature(jwt, self.resolver, memoize=True)  # credentials recur, unchanged
        if check_expiry:
            vc.check_validity_period(jwt, now, f"credential {view['id']}")
        # Every type must be trusted for this issuer: otherwise an issuer trusted for one type
        # could add a type it is not trusted for and be believed on it.
        types = vc.types_of(view)
        untrusted = [t for t in types if not self.is_trusted(t, view["issuer"])]
        if check_trust and (not types or untrusted):
            named = ", ".join(untrusted) or "(no type besides VerifiableCredential)"
            raise vc.CredentialError(f"issuer {view['issuer']} is not trusted for {named}")
        if check_revocation:
            await self._check_not_revoked(view)
        return view

    async def _check_not_revoked(self, view: dict[str, Any]) -> None:
        """Every revocation entry of the credential (one, or a list of them) is checked."""
        entries = view.get("credentialStatus") or []
        for status in entries if isinstance(entries, list) else [entries]:
            if not isinstance(status, dict) or status.get("type") != "StatusList2021Entry":
                continue
            if status.get("statusPurpose", "revocation") != "revocation":
                continue  # suspension lists are not offered here
            url, index = status.get("statusListCredential"), str(status.get("statusListIndex", ""))
            if not isinstance(url, str) or not (index.isascii() and index.isdigit()):
                raise vc.CredentialError("the credentialStatus lacks statusListCredential or statusListIndex")
            if await self.status_reader.is_revoked(url, view["issuer"], int(index)):
                raise vc.CredentialError(f"credential {view['id']} is revoked")

    def search(self, query: dict[str, Any], allow_untrusted: bool) -> list[str]:
        """Credentials this node issued or holds whose W3C view contains `query` (every field
        of the query present with that value; a list in the query names members)."""
        known = {entry["jwt"] for entry in self.store.iterate(ISSUED)} | {e["jwt"] for e in self.store.iterate(WALLET)}
        found = []
        for token in sorted(known):
            view = vc.credential_view(vc.Jwt.read(token))
            trusted = all(self.is_trusted(t, view["issuer"]) for t in vc.types_of(view))
            allowed = allow_untrusted and not self.faulty("search-ignores-untrusted-option")
            if _contains(view, query) and (trusted or allowed):
                found.append(token)
        return found

    def trust(self, credential_type: str, issuer: str, trusted: bool) -> None:
        key = f"{credential_type}|{issuer}"
        if trusted:
            self.store.put(TRUST, key, {"credentialType": credential_type, "issuer": issuer})
        elif not self.faulty("trust-not-withdrawn"):
            self.store.delete(TRUST, key)

    def is_trusted(self, credential_type: str, issuer: str) -> bool:
        return self.store.get(TRUST, f"{credential_type}|{issuer}") is not None

    async def add_to_wallet(self, subject: str, token: str) -> None:
        record = self.subject(subject)
        view = await self.verify_credential(token)
        if view["credentialSubject"].get("id") != record["did"]:
            raise vc.CredentialError(
                f"the credential is about {view['credentialSubject'].get('id')}, not {record['did']}"
            )
        self.store.put(WALLET, f"{subject}|{view['id']}", {"subject": subject, "jwt": token})

    def credentials_for(
        self, subject: str, definition: dict[str, Any], purpose: str
    ) -> tuple[list[str], list[tuple[str, int]]]:
        """From the subject's wallet, the credentials a presentation definition asks for, and
        for each input descriptor the index of its credential in that list (for a submission).
        412 when the wallet cannot satisfy it; `purpose` says in the error what it was for."""
        # Newest first: where the wallet holds an older and a newer credential of one kind (a
        # re-issued one, or one from another network's issuer), the newer one is presented.
        read = [(token, vc.Jwt.read(token)) for token in self.wallet(subject)]
        read.sort(key=lambda item: -float(item[1].claims.get("nbf") or item[1].claims.get("iat") or 0))
        wallet = [token for token, _ in read]
        chosen = select(definition, [vc.credential_view(jwt) for _, jwt in read])
        if chosen is None:
            raise HttpError(
                412, "Precondition Failed", f"the wallet of {subject!r} lacks credentials that {purpose} asks for"
            )
        picked = sorted({index for _, index in chosen})
        position = {index: n for n, index in enumerate(picked)}
        return [wallet[i] for i in picked], [(descriptor, position[i]) for descriptor, i in chosen]

    def wallet(self, subject: str) -> list[str]:
        self.subject(subject)
        return [entry["jwt"] for entry in self.store.iterate(WALLET) if entry["subject"] == subject]


def _contains(value: Any, query: Any) -> bool:
    if isinstance(query, dict):
        return isinstance(value, dict) and all(k in value and _contains(value[k], q) for k, q in query.items())
    if isinstance(query, list):
        members = value if isinstance(value, list) else [value]
        return all(any(_contains(m, q) for m in members) for q in query)
    if isinstance(value, list):  # a single value asked of a list, such as one `type`
        return query in value
    return value == query


def _epoch(value: Any, field: str) -> int | None:
    """An RFC 3339 date-time from a request as epoch seconds; `field` names it in errors."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise HttpError(400, "Bad Request", f"'{field}' must be an RFC 3339 date-time string")
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    except ValueError:
        raise HttpError(400, "Bad Request", f"'{field}' is not a date-time: {value!r}") from None
