"""EARL (W3C Evaluation and Report Language 1.0) in JSON-LD: one assertion per check, about the
node the check talked to, so that results of many implementations can be merged and compared.
The implementations are described with DOAP, the testbed as the assertor."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from testbed.report.model import Outcome, RunResults
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


def earl_document(results: RunResults) -> dict[str, Any]:
    subjects = {
        i.node: f"urn:health-network-testbed:run:{results.run_id}:node:{i.node}" for i in results.implementations
    }
    graph: list[dict[str, Any]] = [
        {
            "@id": ASSERTOR,
            "@type": ["earl:Assertor", "earl:Software", "doap:Project"],
            "doap:name": "health-network-testbed",
            "doap:release": {"doap:revision": results.harness_version},
        }
    ]
    for info in results.implementations:
        graph.append(
            {
                "@id": subjects[info.node],
                "@type": ["earl:TestSubject", "doap:Project"],
                "doap:name": info.node,
                "dct:description": f"{info.role} node of {info.organisation} ({info.kind})",
                **({"doap:homepage": {"@id": info.public_url}} if info.public_url else {}),
                **({"doap:release": {"doap:revision": info.version}} if info.version else {}),
            }
        )
    for scenario, check in results.all_checks():
        node = check.evidence.node
        graph.append(
            {
                "@type": "earl:Assertion",
                "earl:assertedBy": {"@id": ASSERTOR},
                "earl:subject": {"@id": subjects.get(node or "", f"urn:health-network-testbed:run:{results.run_id}")},
                "earl:test": {
                    "@id": f"urn:health-network-testbed:check:{scenario.name}/{check.id}",
                    "dct:title": check.title,
                    "dct:requires": [f"urn:health-network-testbed:requirement:{r}" for r in check.requirements],
                },
                "earl:result": {
                    "@type": "earl:TestResult",
                    "earl:outcome": {"@id": OUTCOMES[check.outcome]},
                    "dct:date": {"@value": check.started.isoformat(), "@type": "xsd:dateTime"},
                    **({"dct:description": check.message} if check.message else {}),
                },
                "earl:mode": {"@id": "earl:automatic"},
            }
        )
    graph.extend(_untested_assertions(results))
    # The run's verdict first, as in every report: EARL has no term for it, so Dublin Core says it.
    return {
        "@context": CONTEXT,
        "dct:title": f"{results.kind} run {results.run_id}",
        **_verdict(results),
        "@graph": graph,
    }


def _verdict(results: RunResults) -> dict[str, Any]:
    return {"dct:description": f"verdict: {results.verdict.value}. {verdict_line(results)}"}


def _untested_assertions(results: RunResults) -> list[dict[str, Any]]:
    """A MUST of a profile's role that no check tested is stated as untested about the run,
    so that merged EARL files show the gap and not just the checks that ran."""
    run = f"urn:health-network-testbed:run:{results.run_id}"
    return [
        {
            "@type": "earl:Assertion",
            "earl:assertedBy": {"@id": ASSERTOR},
            "earl:subject": {"@id": run},
            "earl:test": {"@id": f"urn:health-network-testbed:requirement:{requirement}"},
            "earl:result": {
                "@type": "earl:TestResult",
                "earl:outcome": {"@id": "earl:untested"},
                "dct:description": "no check of this run tested this MUST requirement of the profile's role",
            },
            "earl:mode": {"@id": "earl:automatic"},
        }
        for requirement in results.summary.must_untested
    ]


def write_earl(results: RunResults, path: Path) -> None:
    path.write_text(json.dumps(earl_document(results), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
