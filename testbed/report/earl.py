"""EARL (W3C Evaluation and Report Language 1.0) in JSON-LD: one assertion per check, about the
implementation the check talked to, so that results of many implementations can be merged and
compared. A subject is named for the implementation, not the run: its role, product and version
as the node states them, or else its URL, so two runs of one implementation speak of one
subject. Tests are typed (earl:TestCase for a check, earl:TestRequirement for a requirement);
the implementations are described with DOAP, the testbed as the assertor."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from testbed.report.model import CheckResult, ImplementationInfo, Outcome, RegisteredImplementation, RunResults
from testbed.report.summary import verdict_line

CONTEXT = {
    "earl": "http://www.w3.org/ns/earl#",
    "doap": "http://usefulinc.com/ns/doap#",
    "dct": "http://purl.org/dc/terms/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}
OUTCOMES = {
    Outcome.PASSED: "earl:passed",
    Outcome.FAILED: "earl:failed",
    Outcome.SKIPPED: "earl:untested",  # not run (blocked or not applicable), shown apart from failures
    Outcome.ERROR: "earl:cantTell",  # the harness or the environment failed, not the implementation
}
ASSERTOR = "urn:health-network-testbed:assertor"


PREFIX = "urn:health-network-testbed"


def subject_iri(info: ImplementationInfo, run_id: str) -> str:
    """The implementation's stable name: role, product and version when the node states them;
    else the URL it is reached at; a node known by neither is named within its run only."""
    if info.product and info.version:
        return f"{PREFIX}:implementation:{info.role}:{_slug(info.product)}:{_slug(info.version)}"
    if info.public_url:
        return info.public_url
    return f"{PREFIX}:run:{run_id}:node:{info.node}"


def registered_iri(registered: RegisteredImplementation) -> str:
    """An implementation an implementations registry names is the subject the registry
    declares (vendor, product, version): two vendors of one product stay two subjects."""
    parts = (registered.role, registered.vendor, registered.product, registered.version)
    return f"{PREFIX}:implementation:" + ":".join(_slug(part) for part in parts)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-") or "unnamed"


def _requirement_iri(requirement_id: str) -> str:
    return f"{PREFIX}:requirement:{requirement_id}"


def earl_document(results: RunResults) -> dict[str, Any]:
    subjects = {info.node: subject_iri(info, results.run_id) for info in results.implementations}
    subjects |= {r.node: registered_iri(r) for r in results.registered if r.node in subjects}
    graph: list[dict[str, Any]] = [
        {
            "@id": ASSERTOR,
            "@type": ["earl:Assertor", "earl:Software", "doap:Project"],
            "doap:name": "health-network-testbed",
            "doap:release": {"doap:revision": results.harness_version},
        },
        *_subjects(results, subjects),
        *_requirements(results),
    ]
    for scenario, check in results.all_checks():
        node = check.evidence.node
        graph.append(
            {
                "@type": "earl:Assertion",
                "earl:assertedBy": {"@id": ASSERTOR},
                "earl:subject": {"@id": subjects.get(node or "", f"{PREFIX}:run:{results.run_id}")},
                "earl:test": {
                    "@id": f"{PREFIX}:check:{scenario.name}/{check.id}",
                    "@type": "earl:TestCase",
                    "dct:title": check.title,
                    "dct:isPartOf": {"@id": f"{PREFIX}:scenario:{scenario.name}"},
                    "dct:requires": [{"@id": _requirement_iri(r)} for r in check.requirements],
                },
                "earl:result": {
                    "@type": "earl:TestResult",
                    "earl:outcome": {"@id": OUTCOMES[check.outcome]},
                    "dct:date": {"@value": check.started.isoformat(), "@type": "xsd:dateTime"},
                    **_description(check),
                    **({"earl:info": f"node {node} of run {results.run_id}"} if node else {}),
                },
                "earl:mode": {"@id": "earl:automatic"},
            }
        )
    graph.extend(_untested_assertions(results, subjects))
    run = f"{PREFIX}:run:{results.run_id}"
    if any(item.get("earl:subject", {}).get("@id") == run for item in graph):
        # Checks that talked to no one node (or the run's gaps) are about the network as a whole.
        graph.append(
            {"@id": run, "@type": "earl:TestSubject", "dct:description": f"the network of run {results.run_id}"}
        )
    # The run's verdict first, as in every report: EARL has no term for it, so Dublin Core says it.
    return {
        "@context": CONTEXT,
        "dct:title": f"{results.kind} run {results.run_id}",
        **_verdict(results),
        "@graph": graph,
    }


def _subjects(results: RunResults, subjects: dict[str, str]) -> list[dict[str, Any]]:
    """One description per implementation (several nodes of one product and version are one
    subject), naming the nodes of this run that ran it."""
    described: dict[str, dict[str, Any]] = {}
    registered = {r.node: r for r in results.registered}
    for info in results.implementations:
        iri = subjects[info.node]
        declared = registered.get(info.node)
        version = declared.version if declared else info.version
        entry = described.setdefault(
            iri,
            {
                "@id": iri,
                "@type": ["earl:TestSubject", "doap:Project"],
                "doap:name": declared.product if declared else info.product or info.node,
                "dct:description": f"{info.role} implementation ({info.kind})",
                **({"doap:release": {"doap:revision": version}} if version else {}),
                **({"doap:homepage": {"@id": info.public_url}} if info.public_url and info.kind == "url" else {}),
                **(_declared(declared) if declared else {}),
                "earl:info": [],
            },
        )
        entry["earl:info"].append(f"node {info.node} of {info.organisation} in run {results.run_id}")
    return list(described.values())


def _declared(registered: RegisteredImplementation) -> dict[str, Any]:
    """What the implementations registry says of a subject: its maker, its name there, and the
    requirements it is expected to fail, each with the reason."""
    expected = [f"expected to fail (xfail) {req}: {reason}" for req, reason in registered.xfail.items()]
    return {
        "dct:creator": registered.vendor,
        "dct:identifier": registered.name,
        **({"dct:abstract": "; ".join(expected)} if expected else {}),
    }


def _requirements(results: RunResults) -> list[dict[str, Any]]:
    return [
        {
            "@id": _requirement_iri(requirement.id),
            "@type": "earl:TestRequirement",
            "dct:title": requirement.id,
            "dct:description": requirement.statement,
            "dct:source": requirement.source,
        }
        for requirement in results.requirements
    ]


def _verdict(results: RunResults) -> dict[str, Any]:
    suite = {"dct:hasVersion": results.suite_version} if results.suite_version else {}
    return {"dct:description": f"verdict: {results.verdict.value}. {verdict_line(results)}", **suite}


def _description(check: CheckResult) -> dict[str, Any]:
    """The check's message, and what the implementations registry expects of it: the outcome
    stays what happened (an expected failure is still earl:failed), the expectation is said."""
    texts = [check.message] if check.message else []
    texts += [f"expected to fail (xfail) {requirement}: {reason}" for requirement, reason in check.xfail.items()]
    return {"dct:description": "; ".join(texts)} if texts else {}


def _untested_assertions(results: RunResults, subjects: dict[str, str]) -> list[dict[str, Any]]:
    """A MUST of a profile's role that no check tested is stated as untested about each
    implementation of that role in the run (about the run, when none is known), so that merged
    EARL files show the gap and not just the checks that ran."""
    role_subjects = sorted({subjects[i.node] for i in results.implementations if i.role in results.profiles})
    return [
        {
            "@type": "earl:Assertion",
            "earl:assertedBy": {"@id": ASSERTOR},
            "earl:subject": {"@id": subject},
            "earl:test": {"@id": _requirement_iri(requirement), "@type": "earl:TestRequirement"},
            "earl:result": {
                "@type": "earl:TestResult",
                "earl:outcome": {"@id": "earl:untested"},
                "dct:description": "no check of this run tested this MUST requirement of the profile's role",
            },
            "earl:mode": {"@id": "earl:automatic"},
        }
        for requirement in results.summary.must_untested
        for subject in role_subjects or [f"{PREFIX}:run:{results.run_id}"]
    ]


def write_earl(results: RunResults, path: Path) -> None:
    path.write_text(json.dumps(earl_document(results), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
