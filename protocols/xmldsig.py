"""XML Signature over the query a SOAP message carries, signed the way SAML protocol messages
are (SAML 2.0 core, section 5.4; XML Signature Syntax and Processing 1.1): one ds:Signature
in the query (the element in the SOAP Body) with one Reference, by an ID-typed attribute (ID,
Id or xml:id), to the query itself (the signature enveloped in it) or to an element inside it
(the signature beside that element, as nuts-knooppunt signs its XACML Request); exclusive
canonicalisation, RSA-SHA256 or ECDSA-SHA256, and the signer's X.509 certificate in KeyInfo.

Signing (the harness, the tests) and verifying (the consent service) live here together, so
both sides agree on one profile."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder, Store, VerificationError
from lxml import etree
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureConstructionMethod, SignatureMethod
from signxml.signer import XMLSigner

SOAP = "http://www.w3.org/2003/05/soap-envelope"
DS = "http://www.w3.org/2000/09/xmldsig#"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
ID_ATTRIBUTE = "ID"  # what SAML protocol messages name themselves by (SAML 2.0 core, section 3.2.1)
XML_ID = "{http://www.w3.org/XML/1998/namespace}id"  # xml:id, an ID in any XML document (xml:id 1.0)
# The attributes a same-document Reference may name an element by: SAML's ID, the Id of XML
# Signature's own elements and of WS-Security, and xml:id (which XACML's Request carries).
ID_ATTRIBUTES = (ID_ATTRIBUTE, "Id", XML_ID)
EXCLUSIVE_C14N = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0
ENVELOPED = SignatureConstructionMethod.enveloped.value
# The transforms SAML allows on a signed message (SAML 2.0 core, section 5.4.4).
ALLOWED_TRANSFORMS = frozenset({ENVELOPED, EXCLUSIVE_C14N.value})
SIGNATURE_METHODS = frozenset({SignatureMethod.RSA_SHA256, SignatureMethod.ECDSA_SHA256})
NS = {"ds": DS}
DIGEST_SHA256 = DigestAlgorithm.SHA256.value


class SignatureRefused(Exception):
    """The query's signature is missing or cannot be trusted; the message says why, and `rule`
    names which rule refused it (signature-missing, signature-invalid, signer-untrusted,
    signer-not-tls-client), so that a service can tell its callers apart from one another."""

    def __init__(self, message: str, rule: str = "signature-invalid"):
        super().__init__(message)
        self.rule = rule


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


def sign_soap_query(envelope: bytes, identity: SigningIdentity, *, part: str | None = None) -> bytes:
    """The envelope with its query signed. A query without an ID gets one: the signature's
    Reference names the query by it. `part`: sign instead the first element of that local
    name inside the query, named by xml:id, with the signature beside it as the query's first
    child (the form of nuts-knooppunt's signed closed question, part="Request"). Raises
    ValueError when there is no query (or part) to sign."""
    try:
        root = parse_xml(envelope)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"the body is not well-formed XML: {exc}") from None
    if root.tag != f"{{{SOAP}}}Envelope":
        raise ValueError("the body is not a SOAP 1.2 envelope")
    query = soap_query(root)
    if query is None:
        raise ValueError("the SOAP Body carries no query to sign")
    if part is not None:
        _sign_part(query, part, identity)
        return bytes(etree.tostring(root, encoding="utf-8"))
    reference = query.get(ID_ATTRIBUTE) or _give_id(query)
    # signxml puts the signature where this placeholder stands: after a saml:Issuer, as the
    # schema of SAML requests orders it (SAML 2.0 core, section 3.2.1)
    placeholder = etree.Element(f"{{{DS}}}Signature", Id="placeholder", nsmap={"ds": DS})
    first = query[0] if len(query) else None
    query.insert(1 if first is not None and first.tag == f"{{{SAML}}}Issuer" else 0, placeholder)
    key = serialization.load_pem_private_key(identity.key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"a {type(key).__name__} cannot sign an XML Signature here: use EC or RSA")
    signer = XMLSigner(
        method=SignatureConstructionMethod.enveloped,
        signature_algorithm=_signature_method(key),
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=EXCLUSIVE_C14N,
    )
    signed = signer.sign(
        root, key=key, cert=identity.cert_pem.decode("ascii"), reference_uri=f"#{reference}", id_attribute=ID_ATTRIBUTE
    )
    serialised: bytes = etree.tostring(signed, encoding="utf-8")
    return serialised


def _give_id(query: etree._Element, attribute: str = ID_ATTRIBUTE) -> str:
    identifier = f"_{uuid.uuid4().hex}"  # an xsd:ID may not start with a digit
    query.set(attribute, identifier)
    return identifier


def _sign_part(query: etree._Element, part: str, identity: SigningIdentity) -> None:
    """Sign the element `part` inside the query by its xml:id, the signature placed as the
    query's first child, outside what it signs; every certificate of the identity (leaf first)
    in one X509Certificate, as nuts-knooppunt writes its chain."""
    target = next((e for e in query.iter() if isinstance(e.tag, str) and etree.QName(e).localname == part), None)
    if target is None:
        raise ValueError(f"the query has no {part} element to sign")
    identifier = target.get(XML_ID) or _give_id(target, XML_ID)
    key = serialization.load_pem_private_key(identity.key_pem, password=None)
    method = _signature_method(key)
    digest = hashlib.sha256(etree.tostring(target, method="c14n", exclusive=True, with_comments=False)).digest()
    signature = etree.Element(f"{{{DS}}}Signature", nsmap={"ds": DS})
    signed_info = _ds(signature, "SignedInfo")
    _ds(signed_info, "CanonicalizationMethod", Algorithm=EXCLUSIVE_C14N.value)
    _ds(signed_info, "SignatureMethod", Algorithm=method.value)
    reference = _ds(signed_info, "Reference", URI=f"#{identifier}")
    transforms = _ds(reference, "Transforms")
    for algorithm in (ENVELOPED, EXCLUSIVE_C14N.value):
        _ds(transforms, "Transform", Algorithm=algorithm)
    _ds(reference, "DigestMethod", Algorithm=DIGEST_SHA256)
    _ds(reference, "DigestValue").text = base64.b64encode(digest).decode("ascii")
    query.insert(0, signature)
    canonical = etree.tostring(signed_info, method="c14n", exclusive=True, with_comments=False)
    _ds(signature, "SignatureValue").text = base64.b64encode(_raw_signature(key, canonical)).decode("ascii")
    chain = b"".join(
        c.public_bytes(serialization.Encoding.DER) for c in x509.load_pem_x509_certificates(identity.cert_pem)
    )
    _ds(_ds(_ds(signature, "KeyInfo"), "X509Data"), "X509Certificate").text = base64.b64encode(chain).decode("ascii")


def _ds(parent: etree._Element, name: str, **attributes: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{DS}}}{name}", attributes)


def _raw_signature(key: object, data: bytes) -> bytes:
    """RSA PKCS#1 v1.5 or ECDSA (r and s, each as long as the curve's order) over SHA-256."""
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        size = (key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    raise ValueError(f"a {type(key).__name__} cannot sign a query: use an RSA or EC key")


def _signature_method(key: object) -> SignatureMethod:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return SignatureMethod.ECDSA_SHA256
    if isinstance(key, rsa.RSAPrivateKey):
        return SignatureMethod.RSA_SHA256
    raise ValueError(f"a {type(key).__name__} cannot sign a query: use an RSA or EC key")


# --- verifying -------------------------------------------------------------------------------
#
# The verifier checks the one profile above, step by step with lxml's canonicalisation and
# cryptography's signature and certificate-path checks, so that each refusal says what is
# wrong and a decision costs a parse, two canonicalisations and one signature check (a
# general-purpose verifier re-parses the document several times per signature). The signer's
# certificate path is checked once per certificate and remembered while it stays valid.

TRUSTED_PATH_SECONDS = 600  # a certificate path found valid is checked again after this long


class SignatureVerifier:
    """Checks signed queries for one service: its CA bundle, and the certificates it has
    found to chain to it."""

    def __init__(self, ca_file: Path):
        self._store = Store(x509.load_pem_x509_certificates(ca_file.read_bytes()))
        self._trusted_until: dict[bytes, float] = {}  # signer certificate (DER) -> until when (time.time())

    def verified(self, query: etree._Element, client_certificate: x509.Certificate | None) -> etree._Element:
        """The element the signature covers, its ds:Signature taken out, or SignatureRefused.
        `query` is the element the SOAP Body carries; the one Reference may name it or an
        element inside it, by any ID-typed attribute (ID, Id, xml:id); a reader takes the
        question from what this returns and nothing else. `client_certificate`: what the TLS
        client presented on the connection the query came over; the signer must be that client."""
        signature = _the_signature(query)
        signed_info = _child(signature, "SignedInfo")
        reference = _child(signed_info, "Reference")
        signed = _referenced(query, reference)
        _check_placement(query, signature, signed, reference)
        _check_profile(signed_info, reference)
        signer, intermediates = _key_info_certificates(signature)
        self._check_path(signer, intermediates)
        _check_signature_value(signature, signed_info, signer)
        _check_digest(signed, signature, reference)  # takes the signature out
        _check_bound_to_connection(signer, client_certificate)
        return signed

    def _check_path(self, signer: x509.Certificate, intermediates: list[x509.Certificate]) -> None:
        """The signer's certificate chains to the CA bundle, may sign (RFC 5280, section
        4.2.1.3) and is valid now; remembered per certificate while that holds."""
        der = _der(signer)
        now = time.time()
        if self._trusted_until.get(der, 0.0) > now:
            return
        verifier = (
            PolicyBuilder()
            .store(self._store)
            .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=_signer_policy())
            .build_client_verifier()
        )
        try:
            chain = verifier.verify(signer, intermediates).chain
        except VerificationError as exc:
            raise SignatureRefused(
                f"the signer's certificate ({signer.subject.rfc4514_string()}) does not chain to the network CA: {exc}",
                rule="signer-untrusted",
            ) from None
        expires = min(cert.not_valid_after_utc.timestamp() for cert in chain)
        if len(self._trusted_until) > 1024:  # a bound on what is remembered; refilled as queries come
            self._trusted_until.clear()
        self._trusted_until[der] = min(expires, now + TRUSTED_PATH_SECONDS)


def _the_signature(query: etree._Element) -> etree._Element:
    signatures = list(query.iter(f"{{{DS}}}Signature"))
    if not signatures:
        raise SignatureRefused(
            "the query is not signed: it must carry an enveloped ds:Signature (XML Signature) "
            "made with the TLS client's certificate",
            rule="signature-missing",
        )
    if len(signatures) > 1:
        raise SignatureRefused("the query carries more than one ds:Signature")
    return signatures[0]


def _child(parent: etree._Element, name: str) -> etree._Element:
    """The one ds:`name` child of `parent` (XML Signature's schema allows no more)."""
    found = parent.findall(f"ds:{name}", NS)
    if len(found) != 1:
        raise SignatureRefused(f"ds:{etree.QName(parent).localname} must hold one ds:{name}, not {len(found)}")
    return found[0]


def _referenced(query: etree._Element, reference: etree._Element) -> etree._Element:
    """The element the Reference names by a same-document ID. It must be the only element of
    the whole message with that ID (two would let a reader and the verifier see different
    elements: signature wrapping) and be the query or inside it."""
    uri = reference.get("URI") or ""
    identifier = uri[1:] if uri.startswith("#") else ""
    if not identifier:
        raise SignatureRefused(
            f"the signature's Reference must name an element of the query by its ID (#id), not {uri!r}"
        )
    named = [
        element
        for element in query.getroottree().iter()
        if isinstance(element.tag, str) and any(element.get(name) == identifier for name in ID_ATTRIBUTES)
    ]
    if not named:
        raise SignatureRefused(f"the signature's Reference {uri} names no element of the message")
    if len(named) > 1:
        raise SignatureRefused(f"{len(named)} elements of the message carry the ID the Reference names ({uri})")
    if named[0] is not query and query not in named[0].iterancestors():
        raise SignatureRefused(f"the signature's Reference {uri} names an element outside the query")
    return named[0]


def _check_placement(
    query: etree._Element, signature: etree._Element, signed: etree._Element, reference: etree._Element
) -> None:
    """The signature is enveloped in what it signs, or stands beside it in the query; an
    enveloped one needs the enveloped-signature transform (XML Signature 1.1, section 6.6.4)."""
    parent = signature.getparent()
    if parent is not query and parent is not signed:
        raise SignatureRefused("the ds:Signature must be a child of the query or of the element it signs")
    transforms = [t.get("Algorithm") for t in reference.findall("ds:Transforms/ds:Transform", NS)]
    if parent is signed and ENVELOPED not in transforms:
        raise SignatureRefused("a signature inside the element it signs needs the enveloped-signature transform")


def _check_profile(signed_info: etree._Element, reference: etree._Element) -> None:
    """What SAML asks of a signed message (SAML 2.0 core, sections 5.4.2 to 5.4.4), checked
    before any cryptography so that a refusal says what is wrong."""
    c14n = signed_info.find("ds:CanonicalizationMethod", NS)
    if c14n is None or c14n.get("Algorithm") != EXCLUSIVE_C14N.value:
        found = None if c14n is None else c14n.get("Algorithm")
        raise SignatureRefused(f"the signature must use exclusive canonicalisation ({EXCLUSIVE_C14N.value}): {found}")
    transforms = [t.get("Algorithm") for t in reference.findall("ds:Transforms/ds:Transform", NS)]
    if not set(transforms) <= ALLOWED_TRANSFORMS:
        raise SignatureRefused(
            f"the Reference may transform by enveloped signature and exclusive c14n only: {transforms}"
        )
    digest = reference.find("ds:DigestMethod", NS)
    if digest is None or digest.get("Algorithm") != DIGEST_SHA256:
        found = None if digest is None else digest.get("Algorithm")
        raise SignatureRefused(f"the Reference must be digested with SHA-256 ({DIGEST_SHA256}), not {found}")
    method = signed_info.find("ds:SignatureMethod", NS)
    if method is None or method.get("Algorithm") not in {m.value for m in SIGNATURE_METHODS}:
        found = None if method is None else method.get("Algorithm")
        raise SignatureRefused(f"the signature method must be RSA-SHA256 or ECDSA-SHA256, not {found}")


def _key_info_certificates(signature: etree._Element) -> tuple[x509.Certificate, list[x509.Certificate]]:
    """The signer's certificate (the first in ds:KeyInfo) and any others there, which may
    help build its path to the CA."""
    found = signature.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS)
    if not found:
        raise SignatureRefused("the signature carries no X.509 certificate in ds:KeyInfo/ds:X509Data")
    certificates = [certificate for element in found for certificate in _certificates(element.text or "")]
    return certificates[0], certificates[1:]


@lru_cache(maxsize=256)
def _certificates(text: str) -> tuple[x509.Certificate, ...]:
    """The certificates of one X509Certificate element, read once: a client signs every query
    with the same. XML Signature puts one DER certificate in each; nuts-knooppunt's signed
    query puts its whole chain, leaf first, one DER after the other, in a single one."""
    der = _base64(text, "an X509Certificate in ds:KeyInfo")
    try:
        return tuple(x509.load_der_x509_certificate(part) for part in _der_sequence(der))
    except ValueError as exc:
        raise SignatureRefused(f"a certificate in ds:KeyInfo cannot be read: {exc}") from None


def _der_sequence(der: bytes) -> list[bytes]:
    """Split DER values written one after the other, by their length headers (X.690, 8.1.3)."""
    parts = []
    while der:
        if len(der) < 2:
            raise ValueError("a truncated DER value")
        length, header = der[1], 2
        if length & 0x80:  # the long form: the next (length & 0x7F) bytes give the length
            count = length & 0x7F
            if not 0 < count <= 4 or len(der) < 2 + count:
                raise ValueError("a DER length that cannot be read")
            length, header = int.from_bytes(der[2 : 2 + count], "big"), 2 + count
        parts.append(der[: header + length])
        der = der[header + length :]
    return parts


def _check_digest(signed: etree._Element, signature: etree._Element, reference: etree._Element) -> None:
    """The signed element after the enveloped-signature transform (without the ds:Signature,
    the text after it kept; a signature beside it leaves it as it is), canonicalised as the
    Reference says, must have the digest the signature names."""
    expected = _base64(_child(reference, "DigestValue").text or "", "the DigestValue")
    transform = reference.find(f"ds:Transforms/ds:Transform[@Algorithm='{EXCLUSIVE_C14N.value}']", NS)
    _take_out(signature)
    canonical = etree.tostring(
        signed,
        method="c14n",
        exclusive=transform is not None,  # without one, inclusive c14n 1.0 (XML Signature 1.1, section 4.4.3.2)
        with_comments=False,  # a same-document reference leaves comments out
        inclusive_ns_prefixes=_prefix_list(transform),
    )
    if not hmac.compare_digest(hashlib.sha256(canonical).digest(), expected):
        raise SignatureRefused("the query was changed after it was signed: its digest does not match")


def _check_signature_value(signature: etree._Element, signed_info: etree._Element, signer: x509.Certificate) -> None:
    method = _child(signed_info, "SignatureMethod").get("Algorithm")
    value = _base64(_child(signature, "SignatureValue").text or "", "the SignatureValue")
    canonical = etree.tostring(
        signed_info,
        method="c14n",
        exclusive=True,
        with_comments=False,
        inclusive_ns_prefixes=_prefix_list(signed_info.find("ds:CanonicalizationMethod", NS)),
    )
    key = _public_key(signer)
    try:
        if method == SignatureMethod.ECDSA_SHA256.value and isinstance(key, ec.EllipticCurvePublicKey):
            half = len(value) // 2  # r and s, each as long as the curve's order (XML Signature 1.1, section 6.4.3)
            if not half or len(value) % 2:
                raise InvalidSignature
            r, s = int.from_bytes(value[:half], "big"), int.from_bytes(value[half:], "big")
            key.verify(encode_dss_signature(r, s), canonical, ec.ECDSA(hashes.SHA256()))
        elif method == SignatureMethod.RSA_SHA256.value and isinstance(key, rsa.RSAPublicKey):
            key.verify(value, canonical, padding.PKCS1v15(), hashes.SHA256())
        else:
            raise SignatureRefused(f"a {type(key).__name__} cannot have made a signature by {method}")
    except InvalidSignature:
        raise SignatureRefused("the signature value does not verify with the signer's certificate") from None


def _check_bound_to_connection(signer: x509.Certificate, client: x509.Certificate | None) -> None:
    """The signer must be the TLS client of this connection: a query signed by one party
    cannot be replayed over another party's connection."""
    if client is None:
        raise SignatureRefused(
            "this connection presented no TLS client certificate to bind the signature to", rule="signer-not-tls-client"
        )
    if signer != client:
        raise SignatureRefused(
            f"the query is signed with the certificate of {signer.subject.rfc4514_string()}, not with the "
            f"certificate this TLS client presented ({client.subject.rfc4514_string()})",
            rule="signer-not-tls-client",
        )


@lru_cache(maxsize=256)
def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


@lru_cache(maxsize=256)
def _public_key(certificate: x509.Certificate) -> CertificatePublicKeyTypes:
    return certificate.public_key()


def _take_out(signature: etree._Element) -> None:
    """Remove the element but keep the text that follows it, which is not part of it."""
    parent = signature.getparent()
    assert parent is not None  # found as a child of the query
    if signature.tail:
        previous = signature.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + signature.tail
        else:
            parent.text = (parent.text or "") + signature.tail
    parent.remove(signature)


def _prefix_list(element: etree._Element | None) -> list[str] | None:
    """The InclusiveNamespaces PrefixList of an exclusive c14n element, if it names one."""
    if element is None:
        return None
    inclusive = element.find(f"{{{EXCLUSIVE_C14N.value}}}InclusiveNamespaces")
    return (inclusive.get("PrefixList") or "").split() if inclusive is not None else None


def _base64(text: str, what: str) -> bytes:
    """Base64 as XML Signature writes it (line breaks and spaces allowed between the characters)."""
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except binascii.Error:
        raise SignatureRefused(f"{what} is not base64") from None


def _signer_policy() -> ExtensionPolicy:
    """RFC 5280, section 4.2.1.3: a certificate without KeyUsage may be used for anything; one
    with it must allow digital signatures."""

    def allows_signing(_policy: object, _cert: x509.Certificate, usage: x509.KeyUsage | None) -> None:
        if usage is not None and not usage.digital_signature:
            raise ValueError("the certificate's key usage does not allow digital signatures")

    return ExtensionPolicy.permit_all().may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, allows_signing)
