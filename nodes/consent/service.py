"""The consent service's state and the operations its routes share: citizens' choices (kept
in memory once read), the BSN rules, the signature check of closed questions, and the
notifications of subscribers."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from cryptography import x509
from lxml import etree

from nodes.common.bsn import is_valid_bsn
from nodes.common.faults import fault_switch
from nodes.common.http import HttpError, outbound_client
from nodes.common.storage import DocumentStore
from nodes.consent import subscriptions, xacml
from nodes.consent.model import Answer, Question, decide, question_of
from protocols import xmldsig
from protocols.nodeconfig import NodeConfig
from protocols.settings import ConsentSettings

CONSENTS = "consents"
CHOICES_BY_BSN = "choices_by_bsn"  # bsn|choice id -> the choice's id: the index questions use
LOCATIONS = "locations"  # bsn|data holder -> which holder holds data about which citizen
OPT_OUTS = "opt_outs"  # bsn -> an objection to secondary use
REMEMBERED_CITIZENS = 10_000
# A signature refusal (its rule) -> the defect that lets such a query through anyway.
ACCEPTED_BY_FAULT = {
    "signature-missing": "accepts-unsigned-query",
    "signature-invalid": "accepts-changed-query",
    "signer-untrusted": "accepts-untrusted-signer",
}


class ConsentService:
    def __init__(self, config: NodeConfig):
        self.faulty = fault_switch(config)  # a deliberate defect, for the mutation self-test; none normally
        # The faulty variant keeps its records in memory only: acknowledged, and gone with the process.
        memory_only = self.faulty("consents-in-memory-only")
        self.store = DocumentStore(Path(":memory:") if memory_only else config.data_dir / "consent.sqlite")
        self.client = outbound_client(config)
        self.signatures = xmldsig.SignatureVerifier(config.tls.ca)
        # Whether a closed question without a signature is answered (over mutual TLS alone), as
        # nuts-knooppunt sends it; refused unless the network file says so in the node's settings.
        self.accept_unsigned = config.role_settings(ConsentSettings).accept_unsigned_queries
        # Notifications wait in an outbox in storage until their subscriber takes them; its
        # sender runs from start() to close(). (`deliveries`: the faulty in-memory way only.)
        self.outbox = subscriptions.Outbox(self.store, subscriptions.http_sender(self.client))
        self.sender: asyncio.Task[None] | None = None
        self.deliveries: set[asyncio.Task[bool]] = set()  # notifications under way (kept from the collector)
        # A citizen's choices are read for every question and change seldom: kept in memory once
        # read, and forgotten when one of them changes (storage stays the record; a restart reads it).
        self.remembered: dict[str, list[dict[str, Any]]] = {}

    def start(self) -> None:
        """Start sending what the outbox holds, also what an earlier run of the node left there."""
        self.sender = asyncio.create_task(self.outbox.run())

    async def close(self) -> None:
        if self.sender is not None:
            self.sender.cancel()
            await asyncio.gather(self.sender, return_exceptions=True)
        await self.outbox.close()
        for task in self.deliveries:
            task.cancel()
        await self.client.aclose()

    # --- citizens --------------------------------------------------------------------------
    def bsn_ok(self, bsn: str) -> bool:
        if self.faulty("eleven-test-skipped"):
            return len(bsn) == 9 and bsn.isdigit()
        return is_valid_bsn(bsn)

    def valid(self, bsn: str) -> str:
        if not self.bsn_ok(bsn):
            raise HttpError(
                422, "Unprocessable Entity", f"{bsn!r} is not a valid BSN (eleven-test)", code="bsn-invalid"
            )
        return bsn

    def bsn_of(self, body: dict[str, Any]) -> str:
        value = body.get("bsn")
        if not isinstance(value, str):
            raise HttpError(
                422, "Unprocessable Entity", "'bsn' is required (a string of nine digits)", code="bsn-invalid"
            )
        return self.valid(value)

    # --- choices -----------------------------------------------------------------------------
    def keep(self, choice: dict[str, Any]) -> None:
        self.store.put(CONSENTS, choice["id"], choice)
        self.store.put(CHOICES_BY_BSN, f"{choice['bsn']}|{choice['id']}", {"id": choice["id"]})
        self.remembered.pop(choice["bsn"], None)

    def forget(self, choice: dict[str, Any]) -> None:
        self.store.delete(CONSENTS, choice["id"])
        self.store.delete(CHOICES_BY_BSN, f"{choice['bsn']}|{choice['id']}")
        self.remembered.pop(choice["bsn"], None)

    def choices_of(self, bsn: str) -> list[dict[str, Any]]:
        """Every choice of one citizen, found through the index rather than by reading all."""
        found = self.remembered.get(bsn)
        if found is None:
            entries = self.store.iterate(CHOICES_BY_BSN, key_prefix=f"{bsn}|")
            found = [choice for entry in entries if (choice := self.store.get(CONSENTS, entry["id"])) is not None]
            if len(self.remembered) >= REMEMBERED_CITIZENS:
                self.remembered.clear()  # a bound on memory; refilled as questions come
            self.remembered[bsn] = found
        return found

    def decision_of(self, choices: list[dict[str, Any]], question: Question) -> Answer:
        return decide(choices, question, self.faulty)

    def notify(self, choice: dict[str, Any]) -> None:
        """Tell every subscriber the change concerns: each notification is written to the
        outbox before the change is acknowledged, and sent from there in the background."""
        everyone = self.faulty("notifies-every-subscriber")
        for subscription in subscriptions.concerned(self.store, choice, everyone=everyone):
            bundle = subscriptions.notification(subscription, choice)
            if self.faulty("notifications-dropped-after-outage"):
                self._deliver_in_memory(subscription["channel"]["endpoint"], bundle)
            else:
                self.outbox.add(subscription, bundle)

    def _deliver_in_memory(self, endpoint: str, bundle: dict[str, Any]) -> None:
        """The faulty way: a few quick retries in memory, then the notification is gone."""
        sender = subscriptions.http_sender(self.client)
        task = asyncio.create_task(subscriptions.deliver(sender, endpoint=endpoint, bundle=bundle))
        self.deliveries.add(task)
        task.add_done_callback(self.deliveries.discard)

    # --- the closed question -------------------------------------------------------------------
    def verified(self, tls_client: x509.Certificate | None) -> xacml.Verifier:
        """The signature check of one connection's queries."""

        def check(query: etree._Element) -> etree._Element:
            try:
                return self.signatures.verified(query, tls_client)
            except xmldsig.SignatureRefused as refusal:
                if refusal.rule == "signature-missing" and self.accept_unsigned:
                    return query  # mutual TLS alone vouches for the sender
                fault = ACCEPTED_BY_FAULT.get(refusal.rule)
                if fault is None or not self.faulty(fault):
                    raise
                for signature in query.findall("ds:Signature", xmldsig.NS):
                    query.remove(signature)
                return query

        return check

    def closed_answer(self, query: xacml.Question) -> str:
        if query.purpose != xacml.TREATMENT:
            return "NotApplicable"  # this service answers for treatment only
        if self.faulty("closed-question-always-permit"):
            return "Permit"
        question = question_of(
            data_holder={query.holder_ura, query.holder_category},
            requester=query.requester_names
            if not self.faulty("professional-ignored")
            else {query.requester_ura, query.requester_category},
            data_category=query.data_category,
        )
        try:
            return self.decision_of(self.choices_of(query.bsn), question).decision
        except Exception:  # the service could not decide: XACML's answer for that
            logging.getLogger("consent").exception("closed question could not be decided")
            return "Indeterminate"
