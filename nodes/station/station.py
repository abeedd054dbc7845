"""The data station's state and what its routes share: the synthetic BgZ data, the audit log,
the resource server that checks tokens, the consent question, and the FHIR form of refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from nodes.common.app import render_problem
from nodes.common.audit import COLLECTION as AUDIT
from nodes.common.audit import AuditLog
from nodes.common.faults import fault_switch
from nodes.common.http import HttpError, outbound_client
from nodes.common.resource import ResourceServer
from nodes.common.storage import DocumentStore
from nodes.station import catalogue, synthetic
from nodes.station.fhir import operation_outcome
from protocols.nodeconfig import NodeConfig
from protocols.settings import StationSettings

FHIR_JSON = "application/fhir+json"
DEFAULT_SCOPES = ["bgz", "bgz-sender", "bgz-receiver"]
DATA_CATEGORY = "medical"  # the consent data category this station's FHIR API serves
# A token rule of the resource server (its refusal code) -> the defect that overlooks it.
OVERLOOKING_FAULTS = {
    "token-scope": "token-scope-not-checked",
    "token-dpop-bound": "dpop-bound-token-as-bearer",
    "dpop-proof-invalid": "dpop-proof-not-checked",
}


class Station:
    def __init__(self, config: NodeConfig):
        self.config = config
        self.faulty = fault_switch(config)  # a deliberate defect, for the mutation self-test; none normally
        self.store = DocumentStore(config.data_dir / "station.sqlite")
        # The faulty variant writes its audit entries to memory and to storage only when it shuts
        # down in order: what a crash interrupts is lost, though every entry was acknowledged.
        self._audit_buffer = _audit_in_memory(self.store) if self.faulty("audit-buffered") else None
        self.audit = AuditLog(self._audit_buffer or self.store)
        self.client = outbound_client(config)
        self.resources = ResourceServer(config, self.client, self._overlooks)
        settings = config.role_settings(StationSettings)
        self.scopes = set(settings.scopes or DEFAULT_SCOPES)
        self.threshold = settings.min_cell_size
        self.dataset = catalogue.dataset_id(config.public_url, settings.dataset)
        self.consent_timeout = settings.consent_timeout
        self._consent_remembered: dict[tuple[str, str], dict[str, Any]] = {}  # only the faulty variant that caches
        self._requesters_permitted: set[str] = set()  # only the faulty variant that asks once per requester
        self._load_data(settings.patients)

    def _overlooks(self, rule: str) -> bool:
        """The token rules of the shared resource server a faulty variant lets pass."""
        fault = OVERLOOKING_FAULTS.get(rule)
        return fault is not None and self.faulty(fault)

    def _load_data(self, count: int) -> None:
        if self.store.count("Patient"):
            return  # generated on first start; kept across restarts
        data = synthetic.generate(self.config.seed, self.config.name, count)
        batches: dict[str, list[tuple[str, Any]]] = {
            "Patient": [(p["id"], p) for p in data.patients],
            "bsn_index": [(synthetic.bsn_of(p), {"id": p["id"]}) for p in data.patients],
            "features": [(row["patient"], row) for row in data.features],
        }
        for kind, resources in data.resources.items():
            batches[kind] = [(r["id"], r) for r in resources]
            of_patient: dict[str, list[str]] = {}
            for r in resources:
                subject = (r.get("subject") or r["patient"])["reference"].removeprefix("Patient/")
                of_patient.setdefault(subject, []).append(r["id"])
            batches[f"{kind}_of"] = list(of_patient.items())
        self.store.put_collections(batches)  # all or nothing: a crash mid-way leaves no half data set

    def catalogue(self) -> dict[str, Any]:
        # The faulty variant publishes the address it knows itself by internally (a deployment slip).
        analysis_url = f"{self.config.internal_url}/analysis/v1" if self.faulty("catalogue-wrong-endpoint") else None
        return catalogue.catalogue(
            public_url=self.config.public_url,
            organisation={"name": self.config.organisation.name, "ura": self.config.organisation.ura},
            slug=self.dataset.rsplit("/", 1)[-1],
            individuals=self.store.count("Patient"),
            authorization_server=self.config.peers.get("authorization_server"),
            hdab=self.config.peers.get("hdab"),
            hdab_name=self.config.peers.get("hdab_name"),
            analysis_url=analysis_url,
        )

    def patient(self, patient_id: str) -> dict[str, Any]:
        patient = self.store.get("Patient", patient_id)
        if patient is None:
            raise HttpError(404, "Not Found", f"Patient/{patient_id} is not known here", code="patient-unknown")
        return patient

    async def consent(self, bsn: str, requester_ura: str) -> dict[str, Any]:
        """The consent service's answer: may this requester see this citizen's data here."""
        if self.faulty("consent-not-asked"):
            return {"decision": "Permit"}
        remembered = self._consent_remembered.get((bsn, requester_ura))
        if remembered is not None:  # only the faulty variant that keeps answers gets here
            return remembered
        if requester_ura in self._requesters_permitted:  # only the faulty variant that asks once per requester
            return {"decision": "Permit"}
        try:
            answer = await self._ask_consent(bsn, requester_ura)
        except HttpError as exc:  # the faulty variant takes no answer for a yes
            if exc.code == "consent-unavailable" and self.faulty("serves-without-consent-answer"):
                return {"decision": "Permit"}
            raise
        if answer.get("decision") == "Permit":
            if self.faulty("consent-answer-kept"):
                self._consent_remembered[(bsn, requester_ura)] = answer
            if self.faulty("consent-asked-once-per-requester"):
                self._requesters_permitted.add(requester_ura)
            if self.faulty("consent-permit-misread"):  # what a case-sensitive comparison with "permit" sees
                return {**answer, "decision": "permit"}
        return answer

    async def _ask_consent(self, bsn: str, requester_ura: str) -> dict[str, Any]:
        url = f"{self.config.peers['consent']}/consent/v1/decision"
        question = {
            "bsn": bsn,
            "requester": requester_ura,
            "data_holder": self.config.organisation.ura,
            "data_category": DATA_CATEGORY,
        }
        try:
            response = await self.client.post(url, json=question, timeout=self.consent_timeout)
        except httpx.HTTPError as exc:
            raise _no_decision(exc, self.consent_timeout) from None
        if 400 <= response.status_code < 500:  # the question itself was wrong, e.g. a malformed BSN
            detail = f"the consent service refused the question: {_detail_of(response)}"
            raise HttpError(400, "Bad Request", detail, code="consent-question-refused")
        try:
            response.raise_for_status()
            answer: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            detail = f"the consent service failed: {exc.__class__.__name__}"
            raise HttpError(503, "Service Unavailable", detail, code="consent-unavailable") from None
        return answer

    async def close(self) -> None:
        await self.client.aclose()
        if self._audit_buffer is not None:  # the faulty variant's only write of its audit log
            self.store.put_many(AUDIT, [(_audit_key(e["seq"]), e) for e in self._audit_buffer.iterate(AUDIT)])
        self.store.close()


def _audit_key(seq: int) -> str:
    return f"{seq:012d}"  # the key AuditLog stores an entry under


def _audit_in_memory(store: DocumentStore) -> DocumentStore:
    """An in-memory copy of the audit log on disk, for the audit-buffered defect."""
    buffer = DocumentStore(Path(":memory:"))
    buffer.put_many(AUDIT, [(_audit_key(e["seq"]), e) for e in store.iterate(AUDIT)])
    return buffer


def fhir_error(request: Request, error: HttpError) -> Response:
    """Refusals on the FHIR API are OperationOutcomes; elsewhere problem documents."""
    if not request.url.path.startswith("/fhir"):
        return render_problem(request, error)
    return JSONResponse(
        operation_outcome(error.status, error.detail or error.title, error.code),
        status_code=error.status,
        headers=error.headers,
        media_type=FHIR_JSON,
    )


def _no_decision(exc: httpx.HTTPError, timeout: float) -> HttpError:
    """Without the consent service's answer nothing is released (fail closed), and the refusal
    says why: the service could not be reached, or did not answer in time."""
    if isinstance(exc, httpx.TimeoutException):
        cause = f"did not answer within {timeout:g} s"
    else:
        cause = "could not be reached"
    detail = f"no consent decision: the consent service {cause} ({exc.__class__.__name__}); nothing is released"
    return HttpError(503, "Service Unavailable", detail, code="consent-unavailable")


def _detail_of(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    return str(body.get("detail") or body.get("title") or response.status_code) if isinstance(body, dict) else ""
