"""The closed question's XML Signature: what the consent service accepts and refuses, and the
harness's `sign: xmldsig` / `tamper` that make the signed queries the profile sends."""

from __future__ import annotations

import base64
import copy
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from lxml import etree
from pydantic import ValidationError
from signxml import DigestAlgorithm, SignatureMethod, XMLSigner, XMLVerifier, methods
from signxml.exceptions import InvalidSignature
from starlette.requests import Request as StarletteRequest

from nodes.common import peer
from nodes.consent import xacml
from protocols import xmldsig
from testbed.pki import NetworkCA
from testbed.report.model import Outcome
from testbed.scenario.engine import Engine, StepError
from testbed.scenario.loader import load_scenario
from testbed.scenario.models import Request
from tests.conftest import ROOT
from tests.rsa_certificates import rsa_certificate
from tests.unit.test_xacml import query

PROFILE = ROOT / "scenarios" / "profiles" / "consent" / "closed-question.yaml"


@dataclass(frozen=True)
class Party:
    identity: xmldsig.SigningIdentity
    cert: x509.Certificate


@dataclass(frozen=True)
class Pki:
    ca_file: Path
    client: Party  # the TLS client of the connection, from the network CA
    colleague: Party  # another holder of a certificate from the network CA
    outsider: Party  # a certificate from another CA


def the_query(root: Any) -> Any:
    """The signed query of a SOAP envelope, which every document here has."""
    element = xmldsig.soap_query(root)
    assert element is not None
    return element


def ec_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def party(files_cert: Path, files_key: Path) -> Party:
    identity = xmldsig.SigningIdentity.from_files(files_cert, files_key)
    return Party(identity, x509.load_pem_x509_certificate(identity.cert_pem))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    ca = NetworkCA.create(root / "ca", "test")
    other = NetworkCA.create(root / "other-ca", "other")
    issued = [ca.issue(root / name, name, ["localhost"]) for name in ("client", "colleague")]
    stranger = other.issue(root / "outsider", "outsider", ["localhost"])
    return Pki(
        ca_file=ca.cert_path,
        client=party(issued[0].cert, issued[0].key),
        colleague=party(issued[1].cert, issued[1].key),
        outsider=party(stranger.cert, stranger.key),
    )


Verified = Callable[[etree._Element], etree._Element]


def trust(pki: Pki, client: x509.Certificate | None = None) -> Verified:
    """What the consent service checks a query with, arriving over `client`'s connection."""
    verifier = xmldsig.SignatureVerifier(pki.ca_file)
    return lambda query: verifier.verified(query, client or pki.client.cert)


def ask(body: bytes, verified: Verified) -> xacml.Question:
    return xacml.parse_query(body, verified)


def signed(body: bytes, signer: Party) -> bytes:
    return xmldsig.sign_soap_query(body, signer.identity)


def test_a_query_signed_by_the_tls_client_is_answered(pki: Pki):
    question = ask(signed(query(), pki.client), trust(pki))
    assert (question.bsn, question.requester_ura, question.purpose) == ("968548829", "90000003", "TREAT")


def test_the_signature_is_enveloped_in_the_query_with_ecdsa_sha256_and_exclusive_c14n(pki: Pki):
    envelope = xmldsig.parse_xml(signed(query(), pki.client))
    query_element = the_query(envelope)
    assert query_element is not None
    signature = query_element.find("ds:Signature", xmldsig.NS)
    assert signature is not None
    assert signature.find("ds:SignedInfo/ds:Reference", xmldsig.NS).get("URI") == f"#{query_element.get('ID')}"
    assert signature.find("ds:SignedInfo/ds:SignatureMethod", xmldsig.NS).get("Algorithm").endswith("ecdsa-sha256")
    assert signature.find("ds:SignedInfo/ds:CanonicalizationMethod", xmldsig.NS).get("Algorithm") == (
        "http://www.w3.org/2001/10/xml-exc-c14n#"
    )
    embedded = signature.findtext("ds:KeyInfo/ds:X509Data/ds:X509Certificate", namespaces=xmldsig.NS)
    assert x509.load_der_x509_certificate(base64.b64decode(embedded)) == pki.client.cert


def test_the_signature_follows_a_saml_issuer(pki: Pki):
    issuer = f'<saml:Issuer xmlns:saml="{xmldsig.SAML}">gp</saml:Issuer>'
    body = query().replace(b"<Attributes>", issuer.encode() + b"<Attributes>")
    query_element = the_query(xmldsig.parse_xml(signed(body, pki.client)))
    assert [child.tag for child in query_element][:2] == [f"{{{xmldsig.SAML}}}Issuer", f"{{{xmldsig.DS}}}Signature"]


def test_an_rsa_key_signs_with_rsa_sha256(pki: Pki, tmp_path: Path):
    rsa_client = rsa_certificate(pki.ca_file.parent, common_name="rsa client")
    cert = rsa_client.certificate
    identity = xmldsig.SigningIdentity(
        key_pem=rsa_client.key_pem, cert_pem=cert.public_bytes(serialization.Encoding.PEM)
    )
    body = xmldsig.sign_soap_query(query(), identity)
    assert b"xmldsig-more#rsa-sha256" in body
    assert ask(body, trust(pki, client=cert)).bsn == "968548829"


def _changed_signature_value(body: bytes) -> bytes:
    start = body.index(b"<ds:SignatureValue>") + len(b"<ds:SignatureValue>")
    flipped = b"B" if body[start + 10 : start + 11] == b"A" else b"A"
    return body[: start + 10] + flipped + body[start + 11 :]


REFUSALS = {
    "unsigned": (lambda p: query(), None, "the query is not signed"),
    "changed after signing": (
        lambda p: signed(query(), p.client).replace(b'extension="968548829"', b'extension="111222333"'),
        None,
        "changed after it was signed",
    ),
    "signature value changed": (
        lambda p: _changed_signature_value(signed(query(), p.client)),
        None,
        "signature value does not verify",
    ),
    "signer from another CA": (
        lambda p: signed(query(), p.outsider),
        "outsider",
        "does not chain to the network CA",
    ),
    "signer is not the TLS client": (
        lambda p: signed(query(), p.colleague),
        None,
        "signed with the certificate of CN=colleague.*not with the certificate this TLS client presented",
    ),
    "reference to something else": (
        lambda p: signed(query(), p.client).replace(b'URI="#_', b'URI="#x_'),
        None,
        "Reference #x_[0-9a-f]+ names no element of the message",
    ),
    "inclusive canonicalisation": (
        lambda p: signed(query(), p.client).replace(
            b'CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"',
            b'CanonicalizationMethod Algorithm="http://www.w3.org/2006/12/xml-c14n11"',
        ),
        None,
        "exclusive canonicalisation",
    ),
}


@pytest.mark.parametrize("case", REFUSALS, ids=list(REFUSALS))
def test_refused_signatures_are_sender_faults_never_answers(pki: Pki, case: str):
    make, client, reason = REFUSALS[case]
    tls_client = pki.outsider.cert if client == "outsider" else pki.client.cert
    with pytest.raises(xacml.SoapFault, match=reason) as caught:
        ask(make(pki), trust(pki, client=tls_client))
    assert caught.value.code == "Sender" and caught.value.http_status == 400


def test_without_a_tls_client_certificate_nothing_binds_the_signature(pki: Pki):
    verifier = xmldsig.SignatureVerifier(pki.ca_file)
    with pytest.raises(xacml.SoapFault, match="no TLS client certificate"):
        ask(signed(query(), pki.client), lambda query: verifier.verified(query, None))


def test_only_a_soap_query_can_be_signed(pki: Pki):
    with pytest.raises(ValueError, match="not a SOAP 1\\.2 envelope"):
        xmldsig.sign_soap_query(b"<Envelope/>", pki.client.identity)
    with pytest.raises(ValueError, match="carries no query"):
        xmldsig.sign_soap_query(
            f'<s:Envelope xmlns:s="{xmldsig.SOAP}"><s:Body/></s:Envelope>'.encode(), pki.client.identity
        )
    with pytest.raises(ValueError, match="not well-formed"):
        xmldsig.sign_soap_query(b"<s:Envelope", pki.client.identity)


def _signed_by_signxml(
    pki: Pki, placeholder_tail: str = "", inclusive_ns_prefixes: list[str] | None = None, body: bytes | None = None
) -> bytes:
    """A query signed by signxml itself, with choices the harness's signer does not make."""
    root = xmldsig.parse_xml(body or query())
    query_element = the_query(root)
    query_element.set("ID", "_q1")
    placeholder = etree.Element(f"{{{xmldsig.DS}}}Signature", Id="placeholder", nsmap={"ds": xmldsig.DS})
    placeholder.tail = placeholder_tail
    query_element.insert(0, placeholder)
    signer = XMLSigner(
        method=methods.enveloped,
        signature_algorithm=SignatureMethod.ECDSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=xmldsig.EXCLUSIVE_C14N,
    )
    key = ec_key(pki.client.identity.key_pem)
    signed_root = signer.sign(
        root,
        key=key,
        cert=pki.client.identity.cert_pem.decode(),
        reference_uri="#_q1",
        id_attribute="ID",
        inclusive_ns_prefixes=inclusive_ns_prefixes,
    )
    return etree.tostring(signed_root)


def test_text_after_the_signature_stays_part_of_what_is_signed(pki: Pki):
    body = _signed_by_signxml(pki, placeholder_tail="\n    ")
    assert b"</ds:Signature>\n    <" in body
    assert ask(body, trust(pki)).bsn == "968548829"
    changed = body.replace(b"</ds:Signature>\n    <", b"</ds:Signature>\n <")
    with pytest.raises(xacml.SoapFault, match="changed after it was signed"):
        ask(changed, trust(pki))


def _resigned_with_prefix_list(pki: Pki, body: bytes, prefix: str) -> bytes:
    """`body` signed again with an InclusiveNamespaces PrefixList in its Reference's exclusive
    c14n transform, by hand from XML Signature 1.1 (sections 4.4.3 and 6.5; signxml's signer
    gets this case wrong, and libxmlsec1 refuses what it makes): lxml canonicalises, the
    harness's key signs."""
    root = xmldsig.parse_xml(body)
    query_element = the_query(root)
    signature = query_element.find("ds:Signature", xmldsig.NS)
    signed_info = signature.find("ds:SignedInfo", xmldsig.NS)
    transform = signed_info.find(
        f"ds:Reference/ds:Transforms/ds:Transform[@Algorithm='{xmldsig.EXCLUSIVE_C14N.value}']", xmldsig.NS
    )
    etree.SubElement(transform, f"{{{xmldsig.EXCLUSIVE_C14N.value}}}InclusiveNamespaces", PrefixList=prefix)
    content = copy.deepcopy(query_element)
    content.remove(content.find("ds:Signature", xmldsig.NS))
    canonical = etree.tostring(
        content, method="c14n", exclusive=True, with_comments=False, inclusive_ns_prefixes=[prefix]
    )
    digest = signed_info.find("ds:Reference/ds:DigestValue", xmldsig.NS)
    digest.text = base64.b64encode(hashlib.sha256(canonical).digest()).decode()
    key = ec_key(pki.client.identity.key_pem)
    der = key.sign(
        etree.tostring(signed_info, method="c14n", exclusive=True, with_comments=False), ec.ECDSA(hashes.SHA256())
    )
    r, s_ = decode_dss_signature(der)
    signature.find("ds:SignatureValue", xmldsig.NS).text = base64.b64encode(
        r.to_bytes(32, "big") + s_.to_bytes(32, "big")
    ).decode()
    return etree.tostring(root)


def test_inclusive_namespace_prefixes_are_honoured(pki: Pki):
    """A prefix the query declares but does not use (as SAML messages do for xsi:type values)
    is part of what is signed when the transform's PrefixList names it."""
    declared = query().replace(b"<Request ", b'<Request xmlns:xs="http://www.w3.org/2001/XMLSchema" ')
    body = _resigned_with_prefix_list(pki, signed(declared, pki.client), "xs")
    assert b'PrefixList="xs"' in body
    assert ask(body, trust(pki)).bsn == "968548829"
    with pytest.raises(xacml.SoapFault, match="changed after it was signed"):
        ask(body.replace(b' xmlns:xs="http://www.w3.org/2001/XMLSchema"', b""), trust(pki))
    # Without a PrefixList, exclusive c14n does not see the unused prefix: taking it out changes nothing.
    plain = signed(declared, pki.client)
    assert ask(plain.replace(b' xmlns:xs="http://www.w3.org/2001/XMLSchema"', b""), trust(pki)).bsn == "968548829"


def _malformed(pki: Pki, old: bytes, new: bytes, pattern: str = "") -> bytes:
    body = signed(query(), pki.client)
    if pattern:
        return re.sub(pattern.encode(), new, body, count=1, flags=re.S)
    assert old in body
    return body.replace(old, new, 1)


MALFORMED = {
    "another digest method": (
        lambda p: _malformed(p, b"xmlenc#sha256", b"xmldsig#sha1"),
        "digested with SHA-256",
    ),
    "no certificate": (
        lambda p: _malformed(p, b"", b"", r"<ds:X509Data>.*</ds:X509Data>"),
        "carries no X.509 certificate",
    ),
    "a certificate that is not one": (
        lambda p: _malformed(
            p,
            b"",
            b"<ds:X509Certificate>bm90IGEgY2VydA==</ds:X509Certificate>",
            r"<ds:X509Certificate>[^<]*</ds:X509Certificate>",
        ),
        "cannot be read",
    ),
    "a signature value that is not base64": (
        lambda p: _malformed(
            p,
            b"",
            b"<ds:SignatureValue>*not base64*</ds:SignatureValue>",
            r"<ds:SignatureValue>[^<]*</ds:SignatureValue>",
        ),
        "SignatureValue is not base64",
    ),
    "a signature value of odd length": (
        lambda p: _malformed(
            p, b"", b"<ds:SignatureValue>AAAA</ds:SignatureValue>", r"<ds:SignatureValue>[^<]*</ds:SignatureValue>"
        ),
        "signature value does not verify",
    ),
    "two SignedInfo": (
        lambda p: _malformed(p, b"</ds:SignedInfo>", b"</ds:SignedInfo><ds:SignedInfo/>"),
        "one ds:SignedInfo, not 2",
    ),
}


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_malformed_signatures_are_refused_saying_what_is_wrong(pki: Pki, case: str):
    make, reason = MALFORMED[case]
    with pytest.raises(xacml.SoapFault, match=reason):
        ask(make(pki), trust(pki))


def test_a_signers_certificate_path_is_checked_once_while_it_holds(pki: Pki, monkeypatch: pytest.MonkeyPatch):
    verifier = xmldsig.SignatureVerifier(pki.ca_file)
    built: list[object] = []
    real = xmldsig.PolicyBuilder.build_client_verifier

    def counted(self):  # type: ignore[no-untyped-def]
        built.append(self)
        return real(self)

    monkeypatch.setattr(xmldsig.PolicyBuilder, "build_client_verifier", counted)
    for _ in range(3):
        ask(signed(query(), pki.client), lambda q: verifier.verified(q, pki.client.cert))
    assert len(built) == 1
    # An outsider is refused every time, never remembered.
    for _ in range(2):
        with pytest.raises(xacml.SoapFault, match="does not chain"):
            ask(signed(query(), pki.outsider), lambda q: verifier.verified(q, pki.outsider.cert))
    assert len(built) == 3
    # Once the remembered time has passed, the path is checked again.
    later = time.time() + xmldsig.TRUSTED_PATH_SECONDS + 1
    monkeypatch.setattr(xmldsig.time, "time", lambda: later)
    ask(signed(query(), pki.client), lambda q: verifier.verified(q, pki.client.cert))
    assert len(built) == 4


def test_the_profiles_outsider_query_is_sound_but_for_its_signer(pki: Pki):
    """The profile's pre-signed query must fail for its signer alone: its signature holds for
    the certificate it carries, which no network CA issued."""
    step = next(s for s in load_scenario(PROFILE).scenario.steps if s.id == "outsider-signed-query-fault")
    assert step.request is not None and step.request.body is not None
    body = step.request.body.encode()
    query_element = the_query(xmldsig.parse_xml(body))
    embedded = query_element.findtext("ds:Signature/ds:KeyInfo/ds:X509Data/ds:X509Certificate", namespaces=xmldsig.NS)
    cert = x509.load_der_x509_certificate(base64.b64decode(embedded))
    XMLVerifier().verify(query_element, x509_cert=cert, id_attribute="ID")  # raises if the body was disturbed
    with pytest.raises(xacml.SoapFault, match="does not chain to the network CA"):
        ask(body, trust(pki, client=cert))


# --- the harness: `sign: xmldsig` and `tamper` ------------------------------------------------


def engine(signer: xmldsig.SigningIdentity | None) -> Engine:
    return Engine(network=None, context={}, transport=None, log_tail=lambda _: [], signer=signer)  # type: ignore[arg-type]


def step_request(**fields: object) -> Request:
    return Request.model_validate({"node": "consent", "method": "POST", "path": "/q", **fields})


VARIABLES = {"vars": {"bsn": "968548829", "other": "111222333"}}


def test_the_engine_signs_the_rendered_body_with_its_client_identity(pki: Pki):
    body = query().decode().replace("968548829", "{{ vars.bsn }}")
    sent = engine(pki.client.identity)._body(step_request(body=body, sign="xmldsig"), VARIABLES)
    assert ask(sent.encode(), trust(pki)).bsn == "968548829"


def test_what_the_harness_signs_verifies_with_an_independent_implementation(pki: Pki):
    """The harness and the consent node share no verifier: signxml, another implementation of
    XML Signature, must accept what the harness signs, and refuse it once it is changed, so that
    the harness and the reference node cannot agree on a shared mistake."""
    body = query().decode().replace("968548829", "{{ vars.bsn }}")
    sent = engine(pki.client.identity)._body(step_request(body=body, sign="xmldsig"), VARIABLES)
    cert = x509.load_pem_x509_certificate(pki.client.identity.cert_pem)
    XMLVerifier().verify(the_query(xmldsig.parse_xml(sent.encode())), x509_cert=cert, id_attribute="ID")
    changed = sent.replace('extension="968548829"', 'extension="111222333"')
    with pytest.raises(InvalidSignature):
        XMLVerifier().verify(the_query(xmldsig.parse_xml(changed.encode())), x509_cert=cert, id_attribute="ID")


def test_tamper_changes_the_body_after_signing(pki: Pki):
    request = step_request(
        body=query().decode(), sign="xmldsig", tamper={'extension="{{ vars.bsn }}"': 'extension="{{ vars.other }}"'}
    )
    sent = engine(pki.client.identity)._body(request, VARIABLES)
    assert 'extension="111222333"' in sent
    with pytest.raises(xacml.SoapFault, match="changed after it was signed"):
        ask(sent.encode(), trust(pki))


@pytest.mark.parametrize(
    ("request_fields", "signer", "message"),
    [
        ({"body": "<x/>", "sign": "xmldsig", "tamper": {"absent": "y"}}, True, "cannot be signed"),
        ({"body": query().decode(), "sign": "xmldsig", "tamper": {"absent": "y"}}, True, "'absent' is not in"),
        ({"body": query().decode(), "sign": "xmldsig"}, False, "no certificate to sign with"),
    ],
)
def test_a_body_the_harness_cannot_sign_or_tamper_is_a_harness_error(pki: Pki, request_fields, signer, message):
    with pytest.raises(StepError, match=message) as caught:
        engine(pki.client.identity if signer else None)._body(step_request(**request_fields), VARIABLES)
    assert caught.value.outcome == Outcome.ERROR


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"json": {"a": 1}, "sign": "xmldsig"}, "signs a raw 'body'"),
        ({"body": "<x/>", "tamper": {"a": "b"}}, "give 'sign' too"),
        ({"body": "<x/>", "sign": "jws"}, "xmldsig"),
    ],
)
def test_sign_and_tamper_are_checked_when_the_scenario_is_read(fields, message):
    with pytest.raises(ValidationError, match=message):
        step_request(**fields)


def test_an_unsigned_body_is_sent_as_written(pki: Pki):
    assert engine(None)._body(step_request(body="{{ vars.bsn }}"), VARIABLES) == "968548829"


@pytest.mark.parametrize(
    "document",
    [
        b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',  # an external entity
        b'<!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><x>&b;</x>',  # an entity bomb, small
    ],
)
def test_the_parser_refuses_a_document_type_declaration(document: bytes):
    with pytest.raises(ValueError, match="document type declaration"):
        xmldsig.parse_xml(document)


def test_the_parser_expands_no_entity():
    with pytest.raises(etree.XMLSyntaxError):
        xmldsig.parse_xml(b"<x>&undeclared;</x>")


# --- the TLS client's certificate, as a request sees it ---------------------------------------


class _Connection:
    def __init__(self, der: bytes | None):
        self.der = der

    def getpeercert(self, binary_form: bool = False) -> bytes | None:
        assert binary_form
        return self.der


def test_a_request_sees_the_certificate_its_tls_client_presented(pki: Pki):
    der = pki.client.cert.public_bytes(serialization.Encoding.DER)
    extension = peer.tls_extension(_Connection(der))  # type: ignore[arg-type]
    request = StarletteRequest({"type": "http", "extensions": {"tls": extension}})
    assert peer.client_certificate(request) == pki.client.cert


@pytest.mark.parametrize("connection", [None, _Connection(None)], ids=["plain", "no certificate"])
def test_without_a_client_certificate_a_request_sees_none(connection):
    extension = peer.tls_extension(connection)  # type: ignore[arg-type]
    assert extension["client_cert_chain"] == []
    assert peer.client_certificate(StarletteRequest({"type": "http", "extensions": {"tls": extension}})) is None
    assert peer.client_certificate(StarletteRequest({"type": "http"})) is None
