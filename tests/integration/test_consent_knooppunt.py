"""A live consent node asked the closed question the way nuts-knooppunt (a real Mitz client)
asks it: signed with RSA in its form (the Reference on the Request's xml:id), or unsigned where
the network allows that; and every operation of the node's API documents, its answers checked
against them."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree

from nodes.consent import xacml
from protocols import openapi, xmldsig
from protocols.nodeconfig import NodeConfig
from testbed.pki import NetworkCA, TlsFiles
from tests.integration.test_consent_durability import consent_config, start, wait_healthy
from tests.rsa_certificates import rsa_certificate
from tests.unit.test_mitz_knooppunt_form import ECHOED, HL7, knooppunt_query, signed_as_knooppunt

pytestmark = pytest.mark.integration
QUESTION = "/geslotenautorisatievraag/xacml3"
CHOICE = {"bsn": "968548829", "data_holder": "90000002", "requester": "Z1", "data_category": "GGC002"}


@dataclass
class Node:
    config: NodeConfig
    client: httpx.Client  # presents the EC certificate the network CA issued

    def public(self, path: str) -> str:
        return self.config.public_url + path

    def internal(self, path: str) -> str:
        return self.config.internal_url + path


def _rsa_client(ca_dir: Path, folder: Path) -> TlsFiles:
    """An RSA key with a client certificate from the network CA, as the knooppunt holds."""
    rsa_client = rsa_certificate(ca_dir, common_name="knooppunt", client_auth=True)
    folder.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(cert=folder / "cert.pem", key=folder / "key.pem", ca=ca_dir / "ca.pem")
    files.cert.write_bytes(rsa_client.chain_pem)
    files.key.write_bytes(rsa_client.key_pem)
    return files


def _client(files: TlsFiles) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(files.ca))
    context.load_cert_chain(str(files.cert), str(files.key))
    return httpx.Client(verify=context, timeout=10)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[NetworkCA, Path]:
    folder = tmp_path_factory.mktemp("consent-pki")
    return NetworkCA.create(folder / "ca", "knooppunt"), folder


def _node(pki: tuple[NetworkCA, Path], name: str, settings: dict[str, Any]) -> Iterator[Node]:
    ca, folder = pki
    tls = ca.issue(folder / name, name, ["127.0.0.1"])
    config = consent_config(name=name, seed=name, tls=tls, data_dir=folder / name / "data", settings=settings)
    config.write(folder / f"{name}.json")
    process = start(folder / f"{name}.json", folder / f"{name}.log")
    client = _client(tls)
    try:
        wait_healthy(client, config.internal_url)
        client.post(config.internal_url + "/internal/consent/v1/consents", json=CHOICE).raise_for_status()
        yield Node(config, client)
    finally:
        client.close()
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def strict(pki: tuple[NetworkCA, Path]) -> Iterator[Node]:
    """A consent node with the default settings."""
    yield from _node(pki, "consent-strict", {})


@pytest.fixture(scope="module")
def lenient(pki: tuple[NetworkCA, Path]) -> Iterator[Node]:
    """A consent node whose network takes unsigned closed questions."""
    yield from _node(pki, "consent-lenient", {"accept_unsigned_queries": True})


def decision_of(answer: httpx.Response) -> str:
    """The Decision, found the way the knooppunt's parser finds it: Response, Result, Decision."""
    root = etree.fromstring(answer.content)
    found = root.findtext(f".//{{{xacml.XACML}}}Response/{{{xacml.XACML}}}Result/{{{xacml.XACML}}}Decision")
    return found or ""


def subcode(answer: httpx.Response) -> str:
    value = etree.fromstring(answer.content).findtext(f".//{{{xacml.SOAP}}}Subcode/{{{xacml.SOAP}}}Value") or ""
    return value.partition(":")[2]


def test_the_knooppunts_signed_form_with_rsa_is_decided_and_echoes_its_attributes(
    strict: Node, pki: tuple[NetworkCA, Path]
):
    files = _rsa_client(pki[1] / "ca", pki[1] / "knooppunt")
    identity = xmldsig.SigningIdentity.from_files(files.cert, files.key)
    body = signed_as_knooppunt(knooppunt_query(), identity)
    assert b"xmldsig-more#rsa-sha256" in body and b"xml:id=" in body
    with _client(files) as knooppunt:  # the knooppunt's own certificate, as in its mutual TLS
        answer = knooppunt.post(strict.public(QUESTION), content=body, headers={"Content-Type": "text/xml"})
    assert answer.status_code == 200, answer.text
    assert decision_of(answer) == "Permit"
    result = etree.fromstring(answer.content).find(f".//{{{xacml.XACML}}}Result")
    assert result is not None
    assert len(result.findall(f"{{{xacml.XACML}}}Attributes/{{{xacml.XACML}}}Attribute")) == ECHOED
    bsn = result.find(f".//{{{HL7}}}InstanceIdentifier[@root='{xacml.BSN_OID}']")
    assert bsn is not None and bsn.get("extension") == CHOICE["bsn"]


def test_the_knooppunts_form_signed_with_ec_is_decided(strict: Node, pki: tuple[NetworkCA, Path]):
    folder = pki[1] / "consent-strict"
    identity = xmldsig.SigningIdentity.from_files(folder / "cert.pem", folder / "key.pem")
    body = signed_as_knooppunt(knooppunt_query(requester="90000006"), identity)
    answer = strict.client.post(strict.public(QUESTION), content=body, headers={"Content-Type": "application/soap+xml"})
    assert answer.status_code == 200, answer.text
    assert decision_of(answer) == "Permit"  # the permit names the category Z1, whichever organisation asks


def test_a_wrapped_query_is_refused(strict: Node, pki: tuple[NetworkCA, Path]):
    folder = pki[1] / "consent-strict"
    identity = xmldsig.SigningIdentity.from_files(folder / "cert.pem", folder / "key.pem")
    body = signed_as_knooppunt(knooppunt_query(), identity)
    forged = f'<Request xmlns="{xacml.XACML}"/></SOAP-ENV:Header>'.encode()
    answer = strict.client.post(strict.public(QUESTION), content=body.replace(b"</SOAP-ENV:Header>", forged))
    assert answer.status_code == 400 and subcode(answer) == "request-ambiguous"


def test_an_unsigned_query_is_refused_by_default(strict: Node):
    answer = strict.client.post(
        strict.public(QUESTION), content=knooppunt_query(), headers={"Content-Type": "text/xml"}
    )
    assert answer.status_code == 400 and subcode(answer) == "signature-missing"
    assert decision_of(answer) == ""


def test_an_unsigned_query_is_answered_where_the_network_allows_it(lenient: Node):
    answer = lenient.client.post(
        lenient.public(QUESTION), content=knooppunt_query(), headers={"Content-Type": "text/xml"}
    )
    assert answer.status_code == 200, answer.text
    assert decision_of(answer) == "Permit"


def test_a_signed_query_that_was_changed_is_refused_also_where_unsigned_ones_are_taken(
    lenient: Node, pki: tuple[NetworkCA, Path]
):
    folder = pki[1] / "consent-lenient"
    identity = xmldsig.SigningIdentity.from_files(folder / "cert.pem", folder / "key.pem")
    body = signed_as_knooppunt(knooppunt_query(), identity).replace(b'"968548829"', b'"111222333"')
    answer = lenient.client.post(lenient.public(QUESTION), content=body)
    assert answer.status_code == 400 and subcode(answer) == "signature-invalid"


# --- the API documents, against the live node ---------------------------------------------


Call = tuple[str, str, str, httpx.Response]  # listener, method, path, answer


def _exercise(node: Node, pki: tuple[NetworkCA, Path]) -> list[Call]:
    """Every operation of both documents, each answering at least once (refusals too)."""
    folder = pki[1] / node.config.name
    identity = xmldsig.SigningIdentity.from_files(folder / "cert.pem", folder / "key.pem")
    calls: list[Call] = []

    def call(listener: str, method: str, path: str, **options: Any) -> httpx.Response:
        base = node.config.public_url if listener == "public" else node.config.internal_url
        answer = node.client.request(method, base + path, **options)
        calls.append((listener, method, path, answer))
        return answer

    choice = call("internal", "POST", "/internal/consent/v1/consents", json={**CHOICE, "data_category": "GGC099"})
    one = f"/internal/consent/v1/consents/{choice.json()['id']}"
    call("public", "POST", QUESTION, content=xmldsig.sign_soap_query(knooppunt_query(), identity))
    call("public", "POST", QUESTION, content=knooppunt_query())  # unsigned: a Sender fault
    call("public", "GET", "/openapi.json")
    asked = {**CHOICE, "requester": "90000003", "requester_category": "Z1"}
    call("public", "POST", "/consent/v1/decision", json=asked)
    call("public", "POST", "/consent/v1/decision", json={"bsn": "123456780"})
    call("public", "POST", "/consent/v1/localisation", json=asked)
    call("public", "POST", "/consent/v1/optouts/check", json={"bsns": [CHOICE["bsn"]]})
    criteria = "Consent?_query=otv&patientid=968548829&providerid=90000003&providertype=Z1"
    channel = {"type": "rest-hook", "endpoint": "https://127.0.0.1:9/notify", "payload": "application/fhir+json"}
    subscription = {"resourceType": "Subscription", "reason": "OTV", "criteria": criteria, "channel": channel}
    call("public", "POST", "/abonnementen/fhir", json={**subscription, "status": "requested"})
    call("public", "POST", "/abonnementen/fhir", json={**subscription, "reason": "x"})
    for path in ("/openapi.json", "/health", "/status", "/status/diagnostics", one):
        call("internal", "GET", path)
    call("internal", "GET", "/internal/consent/v1/consents", params={"bsn": CHOICE["bsn"]})
    call("internal", "DELETE", one)
    call("internal", "DELETE", one)  # withdrawn before: 409
    location = {"bsn": CHOICE["bsn"], "data_holder": "90000002", "data_holder_category": "Z3"}
    call("internal", "POST", "/internal/consent/v1/localisations", json=location)
    call("internal", "POST", "/internal/consent/v1/optouts", json={"bsn": "160726189"})
    call("internal", "DELETE", "/internal/consent/v1/optouts/160726189")
    call("internal", "DELETE", "/internal/consent/v1/optouts/160726189")  # not opted out any more: 404
    return calls


def _body(answer: httpx.Response) -> Any:
    media_type = answer.headers.get("content-type", "").split(";")[0]
    return answer.json() if media_type.endswith("json") else answer.text


def test_every_documented_operation_answers_as_documented(strict: Node, pki: tuple[NetworkCA, Path]):
    documents = {listener: openapi.load_document(f"consent-{listener}") for listener in ("public", "internal")}
    exercised: set[tuple[str, str]] = set()
    statuses: set[int] = set()
    for listener, method, path, answer in _exercise(strict, pki):
        document = documents[listener]
        problems = openapi.check_response(
            document,
            method=method,
            path=path,
            status=answer.status_code,
            content_type=answer.headers.get("content-type"),
            body=_body(answer),
        )
        assert problems == [], (listener, method, path, answer.status_code, answer.text[:300])
        operation = openapi.find_operation(document, method=method, path=path)
        assert operation is not None
        exercised.add((listener, operation.key))
        statuses.add(answer.status_code)
    documented = {(name, op.key) for name, document in documents.items() for op in openapi.operations(document)}
    assert exercised == documented
    assert {200, 201, 400, 404, 409, 422} <= statuses  # answers and refusals both checked
