"""Every node role's API fuzzed from its own OpenAPI document (schemathesis, with hypothesis):
requests generated from the document, some valid, many not, sent to a live reference node.
No answer may be a server error, and every answer must be one the document describes (its
status code, media type and body schema). Bounded: a few examples per operation.

The fuzzed network is booted for this module alone: fuzzing changes state (subjects, choices,
applications) that other tests must not see."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks as conformance
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err

from protocols.openapi import document_names, load_document
from testbed.network import RunningNetwork
from tests.integration.conftest import reference_network_up

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = int(os.environ.get("FUZZ_EXAMPLES", "8"))
# The node of each role whose API is fuzzed.
FUZZED_NODE = {"trust": "hospital-trust", "consent": "consent", "station": "hospital-station", "hdab": "hdab"}
CHECKS = [
    conformance.not_a_server_error,
    conformance.status_code_conformance,
    conformance.content_type_conformance,
    conformance.response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzzed_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNetwork]:
    with reference_network_up(tmp_path_factory, "fuzz") as running:
        yield running


def _node_of(running: RunningNetwork, role: str) -> str:
    if role in FUZZED_NODE:
        return FUZZED_NODE[role]
    return next(node.plan.name for node in running.state.nodes if node.plan.role.value == role)


def _known_values(running: RunningNetwork) -> dict[str, str]:
    """Path parameter values that name something the network has, by parameter name."""
    context = running.state.context
    hospital = context["orgs"]["hospital"]
    return {
        "subjectID": "hospital",
        "subject": "hospital",
        "id": "hospital",
        "did": str(hospital.get("did", "")),
        "serviceID": "testbed-care",
        "page": "1",
    }


def _operations(name: str) -> list[Any]:
    schema = schemathesis.openapi.from_dict(load_document(name))
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):  # an operation the document describes wrongly
            raise result.err()
        operations.append(result.ok())
    return operations


@pytest.mark.parametrize("document", document_names())
def test_no_generated_request_gets_a_server_error_or_an_undocumented_answer(
    fuzzed_network: RunningNetwork, document: str
) -> None:
    role, listener = document.rsplit("-", 1)
    node = fuzzed_network.node(_node_of(fuzzed_network, role))
    base_url = node.plan.public_url if listener == "public" else node.plan.internal_url
    failures: list[str] = []
    with fuzzed_network.client(timeout=10.0) as client:
        for operation in _operations(document):
            failures += _fuzz(operation, client=client, base_url=base_url, known_values=_known_values(fuzzed_network))
    assert not failures, f"{document} at {base_url}:\n" + "\n".join(failures[:20])


def _fuzz(operation: Any, *, client: httpx.Client, base_url: str, known_values: dict[str, str]) -> list[str]:
    failures: list[str] = []

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,  # the same requests every run: a failure here reproduces
    )
    @given(case=operation.as_strategy(), known=st.booleans())
    def probe(case: Any, known: bool) -> None:
        if known:  # half the requests name things that exist, so that more than "not found" is answered
            for name in case.path_parameters or {}:
                if name in known_values:
                    case.path_parameters[name] = known_values[name]
        kwargs = case.as_transport_kwargs(base_url=base_url)
        # A header value no HTTP client may send (e.g. "Bearer " with its trailing space) is
        # left out rather than sent: the client would refuse it before the node saw anything.
        kwargs["headers"] = {k: v for k, v in (kwargs.get("headers") or {}).items() if v == v.strip()}
        kwargs.pop("verify", None)
        kwargs.pop("cert", None)
        try:
            response = client.request(**kwargs)
        except httpx.HTTPError as exc:
            failures.append(f"{case.method} {case.formatted_path}: no answer ({exc.__class__.__name__}: {exc})")
            return
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, FailureGroup) as exc:  # one failure, or a group of them
            found = exc.exceptions if isinstance(exc, FailureGroup) else [exc]
            failures.extend(
                f"{case.method} {case.formatted_path} -> {response.status_code}: {_first_line(e)}" for e in found
            )

    probe()
    return failures


def _first_line(failure: BaseException) -> str:
    title = getattr(failure, "title", None)
    text = str(failure).strip().splitlines()
    return str(title) if title else (text[0] if text else failure.__class__.__name__)
