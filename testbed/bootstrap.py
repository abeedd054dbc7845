"""Make a fresh network usable, through the nodes' own APIs only (so an implementation
under test is bootstrapped exactly like a reference node):

1. every organisation with a trust node gets a subject and a did:web DID, on its own trust
   node or on the one that hosts it (a vendor's node serves each customer as a subject);
2. every trust node trusts the credential issuer for NutsOrganizationCredential;
3. the issuer issues each organisation a NutsOrganizationCredential (JWT), which goes
   into the organisation's own wallet on that node;
4. with an access body (hdab) in the network: every trust node trusts it for data permits,
   and it harvests the stations' catalogues.

The result is the context scenarios template against: organisations, DIDs, node URLs."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import httpx

from protocols.didweb import document_url
from testbed.concurrency import each
from testbed.errors import TestbedError
from testbed.runtime.plan import NetworkPlan, NodePlan
from testbed.topology import Network, Organisation, Role, organisation_subject

ORGANISATION_CREDENTIAL = "NutsOrganizationCredential"
PERMIT_CREDENTIAL = "DataPermitCredential"
# The access body reads every station's catalogue in one call: a thousand stations take a while.
HARVEST_TIMEOUT_SECONDS = 300.0


class BootstrapError(TestbedError):
    """A node refused or failed a bootstrap call; the message names node, call and answer."""


def bootstrap(
    network: Network, plan: NetworkPlan, client: httpx.Client, *, progress: Callable[[str], None]
) -> dict[str, Any]:
    """Make a fresh network usable: a subject and DID per organisation, the credential issuer
    trusted everywhere and an organisation credential in every wallet, the access body set up.
    Returns what scenarios template from (`orgs`, `nodes`, `network`)."""
    trust_nodes = [plan.node(node.name) for _, node in network.nodes_with_role(Role.TRUST)]  # vendors' too
    trust_of = {
        org.id: plan.node(node.name)
        for org in network.organisations
        if (node := network.node_of(org.id, Role.TRUST)) is not None
    }
    # Organisations are set up side by side (testbed.concurrency): a national network has a
    # thousand of them, and each call mostly waits on a node.
    entries = each(
        lambda org: _organisation(client, org, network=network, trust=trust_of.get(org.id), progress=progress),
        network.organisations,
    )
    orgs = {org.id: entry for org, entry in zip(network.organisations, entries, strict=True)}
    issuer_org = network.credential_issuer
    issuer_did = orgs[issuer_org]["did"]
    _trust_everywhere(client, trust_nodes, issuer_did, ORGANISATION_CREDENTIAL)

    def give_credential(org_id: str) -> None:
        _give_organisation_credential(client, trust_of[issuer_org], issuer_did, trust_of[org_id], orgs[org_id])
        progress(f"{org_id}: {ORGANISATION_CREDENTIAL} issued by {issuer_org} and stored in its wallet")

    each(give_credential, trust_of)
    for hdab_org, hdab_node in network.nodes_with_role(Role.HDAB):
        _set_up_access_body(client, plan.node(hdab_node.name), orgs[hdab_org.id]["did"], trust_nodes, progress)
    nodes = {
        p.name: {
            "name": p.name,
            "role": p.role.value,
            "organisation": p.organisation,
            "url": p.public_url,
            "internal_url": p.internal_url,
        }
        for p in plan.nodes
    }
    return {
        "network": {"name": network.name, "seed": network.seed, "credential_issuer": issuer_did},
        "orgs": orgs,
        "nodes": nodes,
    }


def _organisation(
    client: httpx.Client,
    org: Organisation,
    *,
    network: Network,
    trust: NodePlan | None,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """What scenarios know of an organisation; with a trust node (its own or its host's), its
    subject and DID too, the same keys either way, and which node holds them."""
    entry: dict[str, Any] = {"id": org.id, "name": org.name, "ura": org.ura, "city": org.city, "category": org.category}
    if trust is not None:
        subject = organisation_subject(org.id)
        entry["subject"] = subject
        entry["did"] = _subject_did(client, trust.name, trust.internal_url, subject)
        entry["did_document_path"] = urlsplit(document_url(entry["did"])).path
        entry["authorization_server"] = f"{trust.public_url}/oauth2/{subject}"
        entry["trust_node"] = trust.name
        entry["hosted_by"] = network.host_of(org.id, Role.TRUST) or ""
        on = f" on {trust.name} (hosted by {entry['hosted_by']})" if entry["hosted_by"] else ""
        progress(f"{org.id}: subject {subject} with DID {entry['did']}{on}")
    return entry


def _give_organisation_credential(
    client: httpx.Client, issuer: NodePlan, issuer_did: str, trust: NodePlan, entry: dict[str, Any]
) -> None:
    """The issuer's trust node issues the organisation its credential; its own wallet keeps it."""
    issued = _call(
        client,
        issuer.name,
        "POST",
        f"{issuer.internal_url}/internal/vcr/v2/issuer/vc",
        json={
            "type": ORGANISATION_CREDENTIAL,
            "issuer": issuer_did,
            "credentialSubject": {
                "id": entry["did"],
                "organization": {"name": entry["name"], "city": entry["city"], "ura": entry["ura"]},
            },
            "format": "jwt_vc",
            "withStatusList2021Revocation": True,
        },
        expect=(200,),
    )
    credential = _read(issued, issuer.name, lambda body: body, "a JWT credential (a JSON string)")
    holder = f"{trust.internal_url}/internal/vcr/v2/holder/{entry['subject']}/vc"
    _call(client, trust.name, "POST", holder, json=credential, expect=(204,))


def _set_up_access_body(
    client: httpx.Client, hdab: NodePlan, hdab_did: str, trust_nodes: list[NodePlan], progress: Callable[[str], None]
) -> None:
    _trust_everywhere(client, trust_nodes, hdab_did, PERMIT_CREDENTIAL)
    harvest = _call(
        client,
        hdab.name,
        "POST",
        f"{hdab.internal_url}/internal/hdab/v1/harvest",
        expect=(200,),
        timeout=HARVEST_TIMEOUT_SECONDS,
    )
    failed = harvest.json().get("failed") or []
    if failed:
        raise BootstrapError(f"bootstrap: {hdab.name} could not harvest every catalogue: {failed}")
    progress(f"{hdab.name}: trusted for {PERMIT_CREDENTIAL}; harvested {harvest.json().get('datasets')} datasets")


def _trust_everywhere(client: httpx.Client, trust_nodes: Iterable[NodePlan], issuer: str, credential_type: str) -> None:
    """Every trust node trusts `issuer` for `credential_type` (the Nuts VCR trust API)."""
    each(
        lambda trust: _call(
            client,
            trust.name,
            "POST",
            f"{trust.internal_url}/internal/vcr/v2/verifier/trust",
            json={"issuer": issuer, "credentialType": credential_type},
            expect=(204,),
        ),
        trust_nodes,
    )


def _subject_did(client: httpx.Client, node: str, internal_url: str, subject: str) -> str:
    """Create the subject; when it exists already (a long-running implementation under
    test), use the DID it has."""
    url = f"{internal_url}/internal/vdr/v2/subject"
    response = _call(client, node, "POST", url, json={"subject": subject}, expect=(200, 409))
    if response.status_code == 200:
        return str(_read(response, node, lambda body: body["documents"][0]["id"], "{documents: [{id}]}"))
    existing = _call(client, node, "GET", f"{url}/{subject}", expect=(200,))
    return str(_read(existing, node, lambda body: body[0], "a list of DIDs"))


def _read(response: httpx.Response, node: str, pick: Callable[[Any], Any], shape: str) -> Any:
    """A value out of a node's answer; an answer of another shape is a clear error."""
    try:
        value = pick(response.json())
    except (ValueError, LookupError, TypeError):
        raise BootstrapError(
            f"bootstrap: {node} answered {response.request.method} {response.request.url} with "
            f"something other than {shape}: {response.text[:300]}"
        ) from None
    if not isinstance(value, str) or not value:
        raise BootstrapError(f"bootstrap: {node} answered {response.request.url} without the expected string")
    return value


def _call(
    client: httpx.Client, node: str, method: str, url: str, expect: tuple[int, ...], **kwargs: Any
) -> httpx.Response:
    try:
        response = client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise BootstrapError(f"bootstrap: {node} unreachable at {method} {url}: {exc}") from None
    if response.status_code not in expect:
        raise BootstrapError(
            f"bootstrap: {node} answered {response.status_code} to {method} {url} "
            f"(expected {', '.join(map(str, expect))}): {response.text[:500]}"
        )
    return response
