"""The consent service's closed question over real mutual TLS: a query must be signed by the
very certificate the TLS client presents on the connection it is sent over."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
from lxml import etree

from nodes.consent import xacml
from protocols import xmldsig
from testbed.network import RunningNetwork
from testbed.pki import NetworkCA
from tests.unit.test_xacml import query

pytestmark = pytest.mark.integration
DECIDED = (b">Permit</", b">Deny</")


def closed_question(running: RunningNetwork, client: httpx.Client, body: bytes) -> httpx.Response:
    url = running.state.context["nodes"]["consent"]["url"] + "/geslotenautorisatievraag/xacml3"
    return client.post(url, content=body, headers={"Content-Type": "application/soap+xml"})


def subcode(answer: httpx.Response) -> str:
    """The local name of the fault's Subcode (SOAP 1.2 part 1, section 5.4.1.3)."""
    envelope = etree.fromstring(answer.content)
    value = envelope.findtext(f".//{{{xacml.SOAP}}}Subcode/{{{xacml.SOAP}}}Value") or ""
    return value.partition(":")[2]


def harness_identity(running: RunningNetwork) -> xmldsig.SigningIdentity:
    return xmldsig.SigningIdentity.from_files(Path(running.state.client_cert), Path(running.state.client_key))


@pytest.fixture(scope="module")
def colleague(reference_network: RunningNetwork, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Another party with a certificate from the same network CA (cert, key)."""
    ca = NetworkCA.open(reference_network.folder.pki_dir, "reference")
    files = ca.issue(tmp_path_factory.mktemp("colleague"), "colleague", ["localhost"])
    return files.cert, files.key


def test_a_query_signed_by_the_tls_client_is_decided(reference_network: RunningNetwork):
    body = xmldsig.sign_soap_query(query(), harness_identity(reference_network))
    with reference_network.client() as client:
        answer = closed_question(reference_network, client, body)
    assert answer.status_code == 200, answer.text
    assert any(decision in answer.content for decision in DECIDED)


def test_an_unsigned_query_is_a_sender_fault(reference_network: RunningNetwork):
    with reference_network.client() as client:
        answer = closed_question(reference_network, client, query())
    assert answer.status_code == 400
    assert b"Sender" in answer.content and b"not signed" in answer.content
    assert subcode(answer) == "signature-missing"
    assert not any(decision in answer.content for decision in DECIDED)


def test_a_query_signed_by_someone_else_than_the_tls_client_is_a_sender_fault(
    reference_network: RunningNetwork, colleague: tuple[Path, Path]
):
    """Signed by a certificate the network CA did issue, but sent over the harness's connection."""
    body = xmldsig.sign_soap_query(query(), xmldsig.SigningIdentity.from_files(*colleague))
    with reference_network.client() as client:
        answer = closed_question(reference_network, client, body)
    assert answer.status_code == 400
    assert b"not with the certificate this TLS client presented" in answer.content
    assert subcode(answer) == "signer-not-tls-client"  # a rule the profile cannot test: the harness signs as itself


def test_the_same_query_over_the_signers_own_connection_is_decided(
    reference_network: RunningNetwork, colleague: tuple[Path, Path]
):
    """The binding follows the connection's certificate, not one fixed party."""
    body = xmldsig.sign_soap_query(query(), xmldsig.SigningIdentity.from_files(*colleague))
    tls = ssl.create_default_context(cafile=reference_network.state.trust_bundle)
    tls.load_cert_chain(*colleague)
    with httpx.Client(verify=tls, timeout=5) as client:
        answer = closed_question(reference_network, client, body)
    assert answer.status_code == 200, answer.text
    assert any(decision in answer.content for decision in DECIDED)
