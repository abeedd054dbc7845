"""The access body's state and rules: applications and their permits, the catalogue it
harvests, and the central analyses and audit trails it runs over the stations a permit covers.
Each rule sits where a faulty variant of the self-test can break it."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
from pydantic import Field, ValidationError

from nodes.common.faults import fault_switch
from nodes.common.http import HttpError, call_json, outbound_client
from nodes.common.issuer import OrganisationIssuer
from nodes.common.resource import ResourceServer
from nodes.common.storage import DocumentStore
from nodes.hdab import aggregate
from nodes.hdab.applications import (
    DECIDED_STATES,
    OPEN_STATES,
    TRANSITIONS,
    ApplicationForm,
    form_refusal,
    permit_subject,
)
from nodes.hdab.catalogue import datasets_of
from nodes.station.permits import PERMIT_TYPE
from nodes.station.secondary import AUDIT_SCOPE, SECONDARY_SCOPE
from protocols.nodeconfig import NodeConfig
from protocols.settings import HdabSettings

APPLICANT_SCOPE = "data-access"
APPLICATIONS, DATASETS, CENTRAL_TASKS = "applications", "datasets", "central_tasks"
STATION_PEER_PREFIX = "station:"
HARVEST_CONCURRENCY = 16  # catalogues fetched at once while harvesting
CLOSED_STATES = ("rejected", "withdrawn")  # ended before a decision: never a permit


class PurposeOptionalForm(ApplicationForm):
    """The form as a faulty variant reads it: the purpose may be left out."""

    purpose: str = ""


class AnyAnalysisForm(ApplicationForm):
    """The form as a faulty variant reads it: any analysis name, record-level ones too."""

    analyses: list[str] = Field(min_length=1)  # type: ignore[assignment]


class AccessBody:
    def __init__(self, config: NodeConfig):
        self.config = config
        self.faulty = fault_switch(config)
        # The faulty variant keeps its records in memory only: acknowledged, and gone with the process.
        memory_only = self.faulty("applications-in-memory-only")
        self.store = DocumentStore(Path(":memory:") if memory_only else config.data_dir / "hdab.sqlite")
        self.client = outbound_client(config, timeout=30.0)
        self.resources = ResourceServer(config, self.client)
        self.issuer = OrganisationIssuer(config, self.client)
        self.subject = config.organisation.id  # bootstrap names the subject after the organisation
        self.threshold = config.role_settings(HdabSettings).min_cell_size
        self._audit_cache: dict[tuple[str, str], dict[str, Any]] = {}  # only the faulty variant that caches

    # --- the rules, each where a faulty variant can break it ------------------------------
    def transitions(self) -> dict[str, tuple[str, ...]]:
        """Which decision may follow which state."""
        table = dict(TRANSITIONS)
        if self.faulty("transitions-any-order"):
            every = ("completeness-check", "assessment", "permitted", "approved", "rejected")
            table = {state: every for state in table}
        if self.faulty("permit-without-assessment"):
            table["completeness-check"] += ("permitted", "approved")
        if self.faulty("rejected-reopened"):
            table["rejected"] = ("completeness-check",)
        return table

    def analysable(self, application: dict[str, Any]) -> bool:
        """May a central analysis run under this application: only while it holds a valid permit."""
        allowed = set(DECIDED_STATES)
        if self.faulty("data-request-not-answered"):
            allowed.discard("approved")
        if self.faulty("analysis-before-decision"):
            allowed.update(OPEN_STATES)
        if self.faulty("analysis-after-withdrawal"):
            allowed.add("withdrawn")
        if self.faulty("analysis-after-revocation"):
            allowed.add("revoked")
        return application["status"] in allowed

    def withdrawable(self, application: dict[str, Any]) -> bool:
        """The applicant may withdraw until the body decides."""
        if self.faulty("withdraw-after-decision"):
            return application["status"] in OPEN_STATES + DECIDED_STATES
        if self.faulty("withdraw-only-when-received"):
            return application["status"] == "received"
        return application["status"] in OPEN_STATES

    def hands_out_permit(self, application: dict[str, Any]) -> bool:
        """The applicant gets the credential of a granted permit; a data request is answered
        with statistics only (EHDS art. 69), so its credential stays with the body."""
        if self.faulty("revoked-permit-handed-out"):
            return "permit" in application
        if self.faulty("data-request-credential-handed-out"):
            return application["status"] in DECIDED_STATES
        return application["status"] == "permitted"

    def form(self, payload: dict[str, Any]) -> ApplicationForm:
        model: type[ApplicationForm] = ApplicationForm
        if self.faulty("purpose-not-required"):
            model = PurposeOptionalForm
        elif self.faulty("record-level-application-accepted"):
            model = AnyAnalysisForm
        try:
            return model.model_validate(payload)
        except ValidationError as exc:
            raise form_refusal(exc) from None

    @property
    def stations(self) -> dict[str, str]:
        peers = self.config.peers.items()
        return {k.removeprefix(STATION_PEER_PREFIX): v for k, v in peers if k.startswith(STATION_PEER_PREFIX)}

    # --- catalogue ---------------------------------------------------------------------
    async def harvest(self) -> dict[str, Any]:
        """Read every station's HealthDCAT-AP catalogue; a station that fails is reported."""
        report: dict[str, Any] = {"harvested": [], "failed": []}
        stations = list(self.stations.items())
        if self.faulty("harvest-drops-last-station"):
            stations = stations[:-1]
        # Fetched a few at a time (a national network has a thousand stations), kept in order.
        limit = asyncio.Semaphore(HARVEST_CONCURRENCY)

        async def fetch(url: str) -> Any:
            async with limit:
                return await call_json(self.client, "GET", f"{url}/catalogue", what="the catalogue")

        fetched = await asyncio.gather(*(fetch(url) for _, url in stations), return_exceptions=True)
        for (name, _), catalogue in zip(stations, fetched, strict=True):
            try:
                if isinstance(catalogue, BaseException):
                    raise catalogue
                datasets = datasets_of(catalogue, name, services_too=self.faulty("harvest-invents-datasets"))
            except (HttpError, LookupError, TypeError, AttributeError, ValueError) as exc:
                report["failed"].append({"station": name, "reason": str(exc)})
                continue
            if self.faulty("individuals-added-on-reharvest"):
                for dataset in datasets:
                    known = self.store.get(DATASETS, dataset["id"])
                    dataset["individuals"] += known["individuals"] if known else 0
            self.store.put_many(DATASETS, [(d["id"], d) for d in datasets])
            report["harvested"].append({"station": name, "datasets": [d["id"] for d in datasets]})
        report["datasets"] = self.store.count(DATASETS)
        return report

    # --- permits -----------------------------------------------------------------------
    async def issue_permit(self, application: dict[str, Any]) -> dict[str, Any]:
        subject = permit_subject(application)
        if self.faulty("permit-subject-is-body"):
            subject["id"] = await self.issuer.did()
        return await self.issuer.issue(PERMIT_TYPE, subject, application["validity_days"])

    # --- calling stations ----------------------------------------------------------------
    async def token_for(self, authorization_server: str, scope: str) -> str:
        url = f"{self.config.peers['trust_internal']}/internal/auth/v2/{self.subject}/request-service-access-token"
        body = {"authorization_server": authorization_server, "scope": scope, "token_type": "Bearer"}
        answer = await call_json(self.client, "POST", url, what="an access token", failure_status=503, json=body)
        return str(answer.get("access_token", ""))

    async def station_call(
        self, dataset: dict[str, Any], *, scope: str, method: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        token = await self.token_for(dataset["authorization_server"], scope)
        headers = {"Authorization": f"Bearer {token}"}
        return await self.client.request(method, f"{dataset['analysis_endpoint']}{path}", headers=headers, **kwargs)

    async def close(self) -> None:
        await self.client.aclose()
        self.store.close()

    # --- central analyses and audit trails over the stations a permit covers --------------
    def covered(self, application: dict[str, Any]) -> list[dict[str, Any]]:
        datasets = [self.store.get(DATASETS, d) for d in application["datasets"]]
        return [d for d in datasets if d is not None]

    async def run_central(self, application: dict[str, Any], analysis: dict[str, Any]) -> dict[str, Any]:
        """Send the task to every covered station at once; combine what comes back completed."""
        covered = self.covered(application)
        runs = await asyncio.gather(*[self._station_run(application, d, analysis) for d in covered])
        completed = [r for r in runs if r["status"] == "completed"]
        # Each station's own result stays here: only the combined, checked result leaves.
        kept = ("result",) if not self.faulty("station-results-exposed") else ()
        task: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "application": application["id"],
            "analysis": analysis,
            "runs": [{k: v for k, v in r.items() if k not in kept} for r in runs],
            "status": "completed" if completed and len(completed) == len(runs) else "failed",
        }
        if completed:
            results = [r["result"] for r in completed]
            recheck = not self.faulty("small-cells-not-suppressed")
            task["result"] = aggregate.combine(analysis["type"], results, threshold=self.threshold, recheck=recheck)
        return task

    async def _station_run(
        self, application: dict[str, Any], dataset: dict[str, Any], analysis: dict[str, Any]
    ) -> dict[str, Any]:
        run = {"station": dataset["station"], "dataset": dataset["id"]}
        # No permit (only a faulty variant gets here without one): the station is asked without it.
        credential = (application.get("permit") or {}).get("credential")
        request = {"permit": credential, "analysis": {**analysis, "dataset": dataset["id"]}}
        try:
            response = await self.station_call(
                dataset, scope=SECONDARY_SCOPE, method="POST", path="/task", json=request
            )
            answer = response.json()
        except (HttpError, httpx.HTTPError, ValueError) as exc:
            return {**run, "status": "failed", "reason": f"the station could not be reached: {exc}"}
        if not isinstance(answer, dict):
            return {**run, "status": "failed", "reason": f"the station answered {response.status_code} without a task"}
        return {
            **run,
            "task": answer.get("id"),
            "status": answer.get("status", "failed"),
            "reason": answer.get("reason") or answer.get("detail"),
            "result": answer.get("result"),
        }

    async def station_audit(self, dataset: dict[str, Any], permit_id: str) -> dict[str, Any]:
        cached = self._audit_cache.get((dataset["id"], permit_id))
        if cached is not None:  # only a faulty variant keeps trails
            return cached
        # The station shows the body the trail of every permit it issued: ask for this one's.
        params = {} if self.faulty("audit-other-permits") else {"permit": permit_id}
        try:
            response = await self.station_call(dataset, scope=AUDIT_SCOPE, method="GET", path="/audit", params=params)
            answer = response.json()
            entries = answer["entries"]
        except (HttpError, httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            return {"station": dataset["station"], "error": f"the audit trail could not be read: {exc}"}
        trail = {"station": dataset["station"], "entries": entries}
        if self.faulty("audit-served-from-cache"):
            self._audit_cache[(dataset["id"], permit_id)] = trail
        return trail
