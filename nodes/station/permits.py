"""Checking a data permit before an analysis runs (EHDS art. 68; Health-RI data station
specification, "Analyse"): the permit is a verifiable credential from a health data access
body this station's trust node trusts, not revoked and not expired; it names this dataset and
this kind of analysis; and the one asking is the permit's holder or the body that issued it,
acting for the holder as a central task server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nodes.common.resource import ResourceServer
from protocols.vcjwt import CredentialError, Jwt, credential_view, types_of

PERMIT_TYPE = "DataPermitCredential"


class PermitRefused(Exception):
    """The permit does not allow this task; the message says why and `rule` names the rule.
    `permit` and `issuer` are what the credential states when it could be read; `verified`
    says whether its signature, issuer and status held (a real permit used out of its scope) or
    not (a claim only)."""

    def __init__(
        self,
        reason: str,
        rule: str,
        *,
        permit: str | None = None,
        issuer: str | None = None,
        verified: bool = False,
    ):
        super().__init__(reason)
        self.rule = rule
        self.permit, self.issuer, self.verified = permit, issuer, verified


class Permit:
    def __init__(self, view: dict[str, Any]):
        self.id: str = view["id"]
        self.issuer: str = view["issuer"]
        subject = view.get("credentialSubject") or {}
        self.holder: str = str(subject.get("id", ""))
        self.datasets: list[str] = _strings(subject.get("datasets"))
        self.analyses: list[str] = _strings(subject.get("analyses"))
        self.purpose: str = str(subject.get("purpose", ""))
        self.kind: str = str(subject.get("kind", "permit"))


async def check_permit(
    resources: ResourceServer,
    token: str,
    *,
    requester: str,
    wanted: tuple[str, str],
    own_datasets: set[str],
    overlooks: Callable[[str], bool] = lambda _rule: False,
) -> Permit:
    """The permit, if it allows `requester` to run the `wanted` (dataset, analysis type) here.
    `overlooks(rule)`: a rule a deliberately faulty station lets pass (the self-test)."""
    try:
        view = credential_view(Jwt.read(token))
    except (CredentialError, ValueError, KeyError, TypeError) as exc:
        raise PermitRefused(f"the permit is not a readable JWT credential: {exc}", "permit-unreadable") from None
    claimed: dict[str, Any] = {"permit": view.get("id"), "issuer": view.get("issuer")}
    if PERMIT_TYPE not in types_of(view):
        raise PermitRefused(f"the credential is not a {PERMIT_TYPE}", "not-a-permit", **claimed)
    # Signature, validity period, trusted issuer and revocation: the trust node's job.
    verdict = await resources.ask_trust_node(
        "/internal/vcr/v2/verifier/vc", "permit verification", json={"verifiableCredential": token}
    )
    if verdict.get("validity") is not True:
        message = str(verdict.get("message", "no reason given"))
        rule = _verification_rule(message)
        if not overlooks(rule):
            raise PermitRefused(f"the permit does not verify: {message}", rule, **claimed)
    permit = Permit(view)
    refusal = next((r for r in _out_of_scope(permit, requester, wanted, own_datasets) if not overlooks(r[0])), None)
    if refusal:
        raise PermitRefused(refusal[1], refusal[0], **claimed, verified=True)
    return permit


# What the trust node's verifier says (its message) -> the rule the permit broke; any other
# failure (a signature that does not hold, a malformed credential) is `permit-invalid`.
VERIFICATION_RULES = (("revoked", "permit-revoked"), ("expired", "permit-expired"), ("not trusted", "permit-untrusted"))


def _verification_rule(message: str) -> str:
    return next((rule for says, rule in VERIFICATION_RULES if says in message), "permit-invalid")


def _out_of_scope(permit: Permit, requester: str, wanted: tuple[str, str], own: set[str]) -> list[tuple[str, str]]:
    """Every scope rule the task breaks: (rule, why), in the order they are checked."""
    dataset, analysis_type = wanted
    broken = []
    if requester not in (permit.holder, permit.issuer):
        broken.append(("permit-other-user", "the permit was issued to another data user"))
    if permit.kind == "data-request" and requester != permit.issuer:
        # EHDS art. 69: a data request is answered with statistics by the access body.
        why = "an approved data request is answered through the access body, not by the user directly"
        broken.append(("data-request-direct", why))
    if dataset not in own:
        broken.append(("dataset-not-here", f"dataset {dataset} is not held by this station"))
    if dataset not in permit.datasets:
        broken.append(("dataset-not-permitted", f"the permit does not cover dataset {dataset}"))
    if analysis_type not in permit.analyses:
        broken.append(("analysis-not-permitted", f"the permit does not allow a {analysis_type} analysis"))
    return broken


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
