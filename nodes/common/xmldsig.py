"""XML Signature over the query a SOAP message carries, signed the way SAML protocol messages
are (SAML 2.0 core, section 5.4; XML Signature Syntax and Processing 1.1): the query (the
element in the SOAP Body) holds an enveloped ds:Signature with one Reference to the query's
own ID, exclusive canonicalisation, RSA-SHA256 or ECDSA-SHA256, and the signer's X.509
certificate in KeyInfo.

Signing (the harness, the tests) and verifying (the consent service) live here together, so
both sides agree on one profile."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.verification import Criticality, ExtensionPolicy
from lxml import etree
from signxml import (
    CanonicalizationMethod,
    DigestAlgorithm,
    InvalidCertificate,
    InvalidDigest,
    InvalidSignature,
    SignatureConfiguration,
    SignatureMethod,
    VerifyResult,
    XMLSigner,
    XMLVerifier,
    methods,
)
from signxml.exceptions import SignXMLException

SOAP = "http://www.w3.org/2003/05/soap-envelope"
DS = "http://www.w3.org/2000/09/xmldsig#"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
ID_ATTRIBUTE = "ID"  # what SAML protocol messages name themselves by (SAML 2.0 core, section 3.2.1)
EXCLUSIVE_C14N = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0
ENVELOPED = methods.enveloped.value
# The transforms SAML allows on a signed message (SAML 2.0 core, section 5.4.4).
ALLOWED_TRANSFORMS = frozenset({ENVELOPED, EXCLUSIVE_C14N.value})
SIGNATURE_METHODS = frozenset({SignatureMethod.RSA_SHA256, SignatureMethod.ECDSA_SHA256})
EXPECTED = SignatureConfiguration(
    location="./",  # a child of the query itself: enveloped, as SAML 2.0 core, section 5.4.1 asks
    expect_references=1,
    signature_methods=SIGNATURE_METHODS,
    digest_algorithms=frozenset({DigestAlgorithm.SHA256}),
)
NS = {"ds": DS}


class SignatureRefused(Exception):
    """The query's signature is missing or cannot be trusted; the message says why."""


def parse_xml(document: bytes) -> etree._Element:
    """Parse without a DTD, entity expansion or network access: an entity bomb or an external
    entity must reach nothing. Raises etree.XMLSyntaxError or ValueError."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    root = etree.fromstring(document, parser)
    if root.getroottree().docinfo.doctype:
        raise ValueError("a document type declaration is not allowed")
    return root


def soap_query(envelope: etree._Element) -> etree._Element | None:
    """The element the SOAP Body carries (its first child element), or None."""
    body = envelope.find(f"{{{SOAP}}}Body")
    if body is None:
        return None
    return next((child for child in body if isinstance(child.tag, str)), None)


# --- signing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningIdentity:
    """A private key and its certificate (PEM): for the harness, the ones it shows in mutual TLS."""

    key_pem: bytes
    cert_pem: bytes

    @classmethod
    def from_files(cls, cert: Path, key: Path) -> SigningIdentity:
        return cls(key_pem=key.read_bytes(), cert_pem=cert.read_bytes())


def sign_soap_query(envelope: bytes, identity: SigningIdentity) -> bytes:
    """The envelope with its query signed. A query without an ID gets one: the signature's
    Reference names the query by it. Raises ValueError when there is no query to sign."""
    try:
        root = parse_xml(envelope)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"the body is not well-formed XML: {exc}") from None
    if root.tag != f"{{{SOAP}}}Envelope":
        raise ValueError("the body is not a SOAP 1.2 envelope")
    query = soap_query(root)
    if query is None:
        raise ValueError("the SOAP Body carries no query to sign")
    reference = query.get(ID_ATTRIBUTE) or _give_id(query)
    # signxml puts the signature where this placeholder stands: after a saml:Issuer, as the
    # schema of SAML requests orders it (SAML 2.0 core, section 3.2.1)
    placeholder = etree.Element(f"{{{DS}}}Signature", Id="placeholder", nsmap={"ds": DS})
    first = query[0] if len(query) else None
    query.insert(1 if first is not None and first.tag == f"{{{SAML}}}Issuer" else 0, placeholder)
    key = serialization.load_pem_private_key(identity.key_pem, password=None)
    signer = XMLSigner(
        method=methods.enveloped,
        signature_algorithm=_signature_method(key),
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=EXCLUSIVE_C14N,
    )
    signed = signer.sign(
        root, key=key, cert=identity.cert_pem.decode("ascii"), reference_uri=f"#{reference}", id_attribute=ID_ATTRIBUTE
    )
    return etree.tostring(signed, encoding="utf-8")


def _give_id(query: etree._Element) -> str:
    identifier = f"_{uuid.uuid4().hex}"  # an xsd:ID may not start with a digit
    query.set(ID_ATTRIBUTE, identifier)
    return identifier


def _signature_method(key: object) -> SignatureMethod:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return SignatureMethod.ECDSA_SHA256
    if isinstance(key, rsa.RSAPrivateKey):
        return SignatureMethod.RSA_SHA256
    raise ValueError(f"a {type(key).__name__} cannot sign a query: use an RSA or EC key")


# --- verifying -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignatureTrust:
    """What a signed query is checked against: the CAs its signer's certificate must chain to,
    and the certificate the TLS client presented on the connection it came over."""

    ca_file: Path
    client_certificate: x509.Certificate | None

    def verified(self, query: etree._Element) -> etree._Element:
        """The query as it was signed (only what the signature covers), or SignatureRefused."""
        signature = _the_signature(query)
        _check_profile(query, signature)
        result = _verify(query, signature, self.ca_file)
        _check_bound_to_connection(result, self.client_certificate)
        if result.signed_xml is None:
            raise SignatureRefused("the signed query could not be read back")
        return result.signed_xml


def _the_signature(query: etree._Element) -> etree._Element:
    signatures = query.findall("ds:Signature", NS)
    if not signatures:
        raise SignatureRefused(
            "the query is not signed: it must carry an enveloped ds:Signature (XML Signature) "
            "made with the TLS client's certificate"
        )
    if len(signatures) > 1:
        raise SignatureRefused("the query carries more than one ds:Signature")
    return signatures[0]


def _check_profile(query: etree._Element, signature: etree._Element) -> None:
    """What SAML asks of a signed message (SAML 2.0 core, sections 5.4.2 to 5.4.4), checked
    before any cryptography so that a refusal says what is wrong."""
    identifier = query.get(ID_ATTRIBUTE)
    if not identifier:
        raise SignatureRefused(f"the signed query has no {ID_ATTRIBUTE} attribute for the signature to refer to")
    references = signature.findall("ds:SignedInfo/ds:Reference", NS)
    if len(references) != 1 or references[0].get("URI") != f"#{identifier}":
        uris = [r.get("URI") for r in references]
        raise SignatureRefused(f"the signature must have one Reference, to the query itself (#{identifier}): {uris}")
    c14n = signature.find("ds:SignedInfo/ds:CanonicalizationMethod", NS)
    if c14n is None or c14n.get("Algorithm") != EXCLUSIVE_C14N.value:
        found = None if c14n is None else c14n.get("Algorithm")
        raise SignatureRefused(f"the signature must use exclusive canonicalisation ({EXCLUSIVE_C14N.value}): {found}")
    transforms = [t.get("Algorithm") for t in references[0].findall("ds:Transforms/ds:Transform", NS)]
    if ENVELOPED not in transforms or not set(transforms) <= ALLOWED_TRANSFORMS:
        raise SignatureRefused(
            f"the Reference must transform by enveloped signature and exclusive c14n only: {transforms}"
        )
    method = signature.find("ds:SignedInfo/ds:SignatureMethod", NS)
    if method is None or method.get("Algorithm") not in {m.value for m in SIGNATURE_METHODS}:
        found = None if method is None else method.get("Algorithm")
        raise SignatureRefused(f"the signature method must be RSA-SHA256 or ECDSA-SHA256, not {found}")


def _verify(query: etree._Element, signature: etree._Element, ca_file: Path) -> VerifyResult:
    """The signature, the digest of the signed query and the signer's certificate chain.
    Given the query alone, a Reference can only resolve inside it."""
    try:
        result = XMLVerifier().verify(
            query,
            ca_pem_file=str(ca_file),
            id_attribute=ID_ATTRIBUTE,
            expect_config=EXPECTED,
            ee_policy=_signer_policy(),
        )
    except InvalidCertificate as exc:
        signer = _described(signature)
        raise SignatureRefused(f"the signer's certificate ({signer}) does not chain to the network CA: {exc}") from None
    except InvalidDigest:
        raise SignatureRefused("the query was changed after it was signed: its digest does not match") from None
    except InvalidSignature as exc:
        raise SignatureRefused(f"the signature value does not verify: {exc}") from None
    except etree.DocumentInvalid as exc:
        raise SignatureRefused(f"the ds:Signature does not follow the XML Signature schema: {exc}") from None
    except (SignXMLException, ValueError) as exc:
        raise SignatureRefused(f"the signature cannot be checked: {exc}") from None
    assert isinstance(result, VerifyResult)  # one Reference expected, so one result
    return result


def _signer_policy() -> ExtensionPolicy:
    """RFC 5280, section 4.2.1.3: a certificate without KeyUsage may be used for anything; one
    with it must allow digital signatures. (signxml's default wants KeyUsage present.)"""

    def allows_signing(_policy: object, _cert: x509.Certificate, usage: x509.KeyUsage | None) -> None:
        if usage is not None and not usage.digital_signature:
            raise ValueError("the certificate's key usage does not allow digital signatures")

    return ExtensionPolicy.permit_all().may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, allows_signing)


def _check_bound_to_connection(result: VerifyResult, client: x509.Certificate | None) -> None:
    """The signer must be the TLS client of this connection: a query signed by one party
    cannot be replayed over another party's connection."""
    if client is None:
        raise SignatureRefused("this connection presented no TLS client certificate to bind the signature to")
    signers = [cert for cert in _key_info_certificates(result.signature_xml) if _spki(cert) == result.signature_key]
    if client not in signers:
        signer = signers[0].subject.rfc4514_string() if signers else "an unknown certificate"
        raise SignatureRefused(
            f"the query is signed with the certificate of {signer}, not with the certificate this TLS client "
            f"presented ({client.subject.rfc4514_string()})"
        )


def _described(signature: etree._Element) -> str:
    """The subjects of the certificates in KeyInfo, for a refusal a person can act on."""
    try:
        return "; ".join(cert.subject.rfc4514_string() for cert in _key_info_certificates(signature)) or "none"
    except ValueError:
        return "not readable"


def _key_info_certificates(signature: etree._Element) -> list[x509.Certificate]:
    found = signature.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS)
    return [x509.load_der_x509_certificate(base64.b64decode("".join((c.text or "").split()))) for c in found]


def _spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
