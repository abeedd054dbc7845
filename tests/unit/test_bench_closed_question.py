"""The closed-question benchmark's parts that run without a network: reading oha's report,
telling Permits from other answers, the verdict against the target, the query it sends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from starlette.requests import Request

from nodes.consent import xacml
from protocols import xmldsig
from testbed.bench import BenchError
from testbed.bench.closed_question import (
    PROFILE,
    _answers,
    profile_requests,
    profile_variables,
    signed_query,
    verdict,
)
from testbed.bench.driver import NAME as PYTHON_DRIVER
from testbed.bench.drivers import parse_oha
from testbed.bench.raw_server import SOAP_ANSWER, soap
from testbed.pki import NetworkCA
from testbed.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parents[2]


def _oha_report(statuses: dict[str, int], errors: dict[str, int] | None = None) -> str:
    """The part of `oha --output-format json` the bench reads (oha 1.16)."""
    return json.dumps(
        {
            "summary": {"total": 2.0, "totalData": 700 * sum(statuses.values()), "requestsPerSec": 1.0},
            "latencyPercentiles": {"p50": 0.0051, "p99": 0.00764, "p99.9": 0.01},
            "statusCodeDistribution": statuses,
            "errorDistribution": errors or {},
        }
    )


def _measured(per_second: float, p99: float, other: int = 0, all_permit: bool = True) -> dict:
    return {
        "driver": "oha 1.16.0",
        "per_second": per_second,
        "p99_ms": p99,
        "statuses": {"2xx": 100, "other": other, "socket errors": 0},
        "answers": {"all_permit": all_permit},
    }


def test_oha_report_is_read():
    result = parse_oha(_oha_report({"200": 1000, "400": 10}, {"connection reset": 2}))
    # Throughput counts answered 2xx only; refusals and socket errors are counted apart.
    assert result["per_second"] == 500.0
    assert result["statuses"] == {"2xx": 1000, "other": 10, "socket errors": 2}
    assert result["requests"] == 1012
    assert (result["p50_ms"], result["p99_ms"]) == (5.1, 7.64)
    assert result["bytes"] == 700 * 1010


@pytest.mark.parametrize("output", ["", "not json", _oha_report({})])
def test_oha_report_without_answers_is_an_error(output):
    with pytest.raises(BenchError):
        parse_oha(output)


def test_answers_count_as_permits_only_when_every_body_has_the_permit_length():
    measured = {"statuses": {"2xx": 3, "other": 0}, "bytes": 3 * 694}
    assert _answers(measured, 694)["all_permit"]
    # One Deny among them is two bytes shorter ("Deny" against "Permit").
    assert not _answers({**measured, "bytes": 3 * 694 - 2}, 694)["all_permit"]


def test_verdict_against_the_target():
    raw = _measured(5000, 7.0)
    assert verdict(raw, _measured(2500, 9.0), 32)["target_met"]
    assert verdict(raw, _measured(2500, 9.0), 32)["ratio_to_raw"] == 0.5
    assert not verdict(raw, _measured(1500, 9.0), 32)["target_met"]  # under 40 % of raw
    assert not verdict(raw, _measured(2500, 12.0), 32)["target_met"]  # p99 too high
    assert not verdict(raw, _measured(2500, 9.0, other=1), 32)["target_met"]  # a refusal
    assert not verdict(raw, _measured(2500, 9.0, all_permit=False), 32)["target_met"]
    # The Python driver's own ceiling sets the raw figure: the ratio says nothing then.
    assert verdict({**raw, "driver": PYTHON_DRIVER}, _measured(2500, 9.0), 32)["target_met"] is None


def test_the_bench_sends_the_profiles_query_signed_so_that_the_service_accepts_it(tmp_path):
    scenario = load_scenario(ROOT / PROFILE).scenario
    _, question = profile_requests(scenario)
    orgs = {
        "gp": {"ura": "90000003", "category": "Z1"},
        "hospital": {"ura": "90000002", "category": "Z3"},
        "mitz": {"ura": "90000001", "category": ""},
        "nursing": {"ura": "90000006", "category": "Z4"},
    }
    variables = profile_variables(scenario, {"orgs": orgs}, "bench-test")
    ca = NetworkCA.open(tmp_path / "pki", "bench-test")
    harness = ca.issue(tmp_path / "harness", "testbed harness", ["localhost"])
    body = signed_query(question, variables, xmldsig.SigningIdentity.from_files(harness.cert, harness.key))
    verifier = xmldsig.SignatureVerifier(ca.cert_path)
    client = x509.load_pem_x509_certificate(harness.cert.read_bytes())
    asked = xacml.parse_query(body, lambda query: verifier.verified(query, client))
    assert (asked.requester_ura, asked.holder_ura, asked.purpose) == ("90000003", "90000002", xacml.TREATMENT)


def test_raw_endpoint_reads_the_body_and_answers_soap() -> None:
    received: list[dict] = [
        {"type": "http.request", "body": b"<soap:Envelope/>", "more_body": False},
    ]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict:
        return received.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    async def serve() -> None:
        scope = {"type": "http", "method": "POST", "path": "/soap", "headers": [], "query_string": b""}
        response = await soap(Request(scope, receive))
        await response(scope, receive, send)

    asyncio.run(serve())
    assert not received  # the body was read in full
    assert sent[0]["status"] == 200 and sent[1]["body"] == SOAP_ANSWER
