"""The consent service's closed question ("gesloten vraag": SOAP 1.2 + XACML 3.0 over mutual
TLS) in decisions per second, next to the raw endpoint behind the same mutual TLS, with the
same driver, in the same run.

The consent and the query are the consent profile's own (`register-permit` and
`closed-question-permit` in the profile below), so the bench asks exactly what the
conformance check asks, signed as Mitz's closed question is (XML Signature, with the
certificate the driver presents in mutual TLS). Every decision is a real Permit: the service
checks the signature, looks up the citizen's choices and decides on every request. One
answer is sampled before and one after the load, and the load's answer bytes must add up to
that many Permit answers: an answer's length depends only on its decision (Deny,
NotApplicable, Indeterminate and SOAP faults all have other lengths), so a single other
answer shows."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocols.xmldsig import SigningIdentity, sign_soap_query
from testbed.bench import BenchError
from testbed.bench.driver import NAME as PYTHON_DRIVER
from testbed.bench.drivers import ClientTls, Load, drive_one_body, invalid
from testbed.bench.servers import SERVER_CORE, pin_process_tree, raw_endpoint
from testbed.network import RunningNetwork
from testbed.scenario.loader import load_scenario, resolve_node
from testbed.scenario.models import Request, Scenario
from testbed.scenario.templating import render
from testbed.topology import load_network

PROFILE = Path("scenarios/profiles/consent/closed-question.yaml")
REGISTER_STEP, QUESTION_STEP = "register-permit", "closed-question-permit"
PERMIT = re.compile(rb"<(\w+:)?Decision>Permit</(\w+:)?Decision>")
LABEL = "closed question (SOAP + XACML), Permit"
RAW_LABEL = "raw endpoint, mutual TLS"
TARGET = {"min_ratio_to_raw": 0.40, "max_p99_ms": 10.0}


@dataclass(frozen=True)
class Question:
    node: str
    url: str
    body: bytes
    content_type: str


def measure(running: RunningNetwork, scratch: Path, *, seconds: float, connections: int) -> dict[str, dict[str, Any]]:
    """The raw endpoint and the closed question, one after the other on the server core."""
    question = _register_and_prepare(running)
    tls = ClientTls(ca=running.state.trust_bundle, cert=running.state.client_cert, key=running.state.client_key)
    permit_bytes = _sample_permit(running, question)
    pin_process_tree(running.node(question.node).pid, SERVER_CORE)

    def drive(url: str) -> dict[str, Any]:  # the same body, driver and TLS for both
        return drive_one_body(
            Load(url, seconds, connections), question.body, question.content_type, tls=tls, scratch=scratch
        )

    with raw_endpoint(running, scratch, mutual_tls=True) as base:
        raw = drive(f"{base}/soap")
    decided = drive(question.url)
    _sample_permit(running, question)  # the consent still holds after the load
    decided["answers"] = _answers(decided, permit_bytes)
    return {RAW_LABEL: raw, LABEL: decided}


def verdict(raw: dict[str, Any], decided: dict[str, Any], connections: int) -> dict[str, Any]:
    """The figures the target speaks of, and whether they meet it: None (not judged) when
    the Python driver measured, whose own ceiling, not the server, sets the raw figure."""
    ratio = decided["per_second"] / raw["per_second"] if raw["per_second"] else 0.0
    met = (
        not invalid(raw)
        and not invalid(decided)
        and ratio >= TARGET["min_ratio_to_raw"]
        and 0 < decided["p99_ms"] < TARGET["max_p99_ms"]
    )
    return {
        "connections": connections,
        "decisions_per_second": decided["per_second"],
        "p99_ms": decided["p99_ms"],
        "raw_per_second": raw["per_second"],
        "raw_p99_ms": raw["p99_ms"],
        "ratio_to_raw": round(ratio, 3),
        "driver": decided["driver"],
        "target": TARGET,
        "target_met": None if PYTHON_DRIVER in (raw["driver"], decided["driver"]) else met,
    }


def _answers(decided: dict[str, Any], permit_bytes: int) -> dict[str, Any]:
    expected = decided["statuses"]["2xx"] * permit_bytes
    return {
        "checked": "answer bytes of the load against the length of a sampled Permit answer",
        "permit_answer_bytes": permit_bytes,
        "all_permit": decided["bytes"] == expected and not decided["statuses"]["other"],
    }


def _register_and_prepare(running: RunningNetwork) -> Question:
    """Register the profile's consent on the consent node and render its closed question."""
    loaded = load_scenario(PROFILE)
    scenario, network = loaded.scenario, load_network(loaded.network_path).network
    register, question = profile_requests(scenario)
    variables = profile_variables(scenario, running.state.context, running.folder.run_id)
    with running.client() as client:
        where = _url(register, resolve_node(register.node, scenario.actors, network), variables)
        answer = client.post(where, json=render(register.json_body, variables))
    if answer.status_code != 201:
        raise BenchError(f"the consent could not be registered: {answer.status_code} {answer.text[:300]}")
    node = resolve_node(question.node, scenario.actors, network)
    # Signed with what the driver presents in mutual TLS: the service wants the two to be one.
    identity = SigningIdentity.from_files(Path(running.state.client_cert), Path(running.state.client_key))
    headers = {name.lower(): str(value) for name, value in question.headers.items()}
    return Question(
        node=node,
        url=_url(question, node, variables),
        body=signed_query(question, variables, identity),
        content_type=headers.get("content-type", "application/soap+xml"),
    )


def profile_requests(scenario: Scenario) -> tuple[Request, Request]:
    """The profile's consent registration and its closed question that answers Permit."""
    requests = {step.id: step.request for step in scenario.steps}
    register, question = requests.get(REGISTER_STEP), requests.get(QUESTION_STEP)
    if register is None or register.json_body is None or question is None or question.body is None:
        raise BenchError(f"{PROFILE} no longer has the steps {REGISTER_STEP!r} and {QUESTION_STEP!r} the bench uses")
    return register, question


def profile_variables(scenario: Scenario, context: dict[str, Any], run_id: str) -> dict[str, Any]:
    """What the profile's placeholders are filled from, as a conformance run fills them."""
    return {
        **context,
        "vars": scenario.variables,
        "actors": {actor: context["orgs"][org] for actor, org in scenario.actors.items()},
        "run": {"id": run_id},
    }


def signed_query(question: Request, variables: dict[str, Any], identity: SigningIdentity) -> bytes:
    """The query rendered and signed once: the service checks the signature (and that it is
    the TLS client's) on every request, which is part of what a decision costs."""
    return sign_soap_query(str(render(question.body, variables)).encode(), identity)


def _url(request: Request, node: str, variables: dict[str, Any]) -> str:
    base = str(variables["nodes"][node]["url" if request.api == "public" else "internal_url"])
    return base + str(render(request.path, variables))


def _sample_permit(running: RunningNetwork, question: Question) -> int:
    """One closed question through the harness's own client: it must be a Permit. The
    length of the answer's body, which every answer of the load must have too."""
    with running.client() as client:
        answer = client.post(question.url, content=question.body, headers={"Content-Type": question.content_type})
    if answer.status_code != 200 or not PERMIT.search(answer.content):
        raise BenchError(f"the closed question is not answered Permit: {answer.status_code} {answer.text[:500]}")
    return len(answer.content)
