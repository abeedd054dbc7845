"""The closed question as nuts-knooppunt (a real Mitz client) writes it: the XACML Request in a
XACMLAuthzDecisionQuery without an ID, its Attributes grouped by category with xml:ids, every
attribute marked IncludeInResult="true", and, in its signed form, the Reference on the
Request's xml:id with the signature beside the Request. What the consent service accepts of
it, what it refuses (signature wrapping), and what its answer echoes."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from nodes.consent import xacml
from nodes.consent.model import question_of
from protocols import xmldsig
from testbed.pki import NetworkCA
from tests.rsa_certificates import rsa_certificate
from tests.unit.test_xmldsig import Pki, ask, party, trust

HL7 = "urn:hl7-org:v3"
PROTOCOL = "urn:oasis:names:tc:xacml:3.0:profile:saml2.0:v2:schema:protocol:wd-14"
CATEGORY = "urn:oasis:names:tc:xacml:3.0:attribute-category:"
II = '<InstanceIdentifier xmlns="{hl7}" root="{root}" extension="{ext}"/>'
CV = '<CodedValue xmlns="{hl7}" code="{code}" codeSystem="{system}"/>'
ECHOED = 9  # every attribute of the query below is marked IncludeInResult


def _attribute(attribute_id: str, value: str) -> str:
    data_type = "II" if "InstanceIdentifier" in value else "CV"
    return (
        f'<Attribute AttributeId="{attribute_id}" IncludeInResult="true">'
        f'<AttributeValue DataType="urn:hl7-org:v3#{data_type}">{value}</AttributeValue></Attribute>'
    )


def _ii(root: str, ext: str) -> str:
    return II.format(hl7=HL7, root=root, ext=ext)


def _cv(code: str, system: str) -> str:
    return CV.format(hl7=HL7, code=code, system=system)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A network CA with two parties of its own, and an outsider from another CA."""
    root = tmp_path_factory.mktemp("pki")
    ca = NetworkCA.create(root / "ca", "test")
    issued = [ca.issue(root / name, name, ["localhost"]) for name in ("client", "colleague")]
    stranger = NetworkCA.create(root / "other-ca", "other").issue(root / "outsider", "outsider", ["localhost"])
    return Pki(
        ca_file=ca.cert_path,
        client=party(issued[0].cert, issued[0].key),
        colleague=party(issued[1].cert, issued[1].key),
        outsider=party(stranger.cert, stranger.key),
    )


def knooppunt_query(
    *, bsn: str = "968548829", requester: str = "90000003", professional: str = "000095254", role: str = "01.015"
) -> bytes:
    """A closed question in the knooppunt's form (our own writing of that structure)."""
    groups = {
        ("resource", CATEGORY + "resource"): [
            (xacml.RESOURCE_ID, _ii(xacml.BSN_OID, bsn)),
            (xacml.HOLDER_FACILITY_TYPE, _cv("Z3", "2.16.840.1.113883.2.4.15.1060")),
            (xacml.HOLDER_INSTITUTION, _ii(xacml.URA_OID, "90000002")),
        ],
        ("action0", CATEGORY + "action"): [(xacml.EVENT_CODE, _cv("GGC002", "2.16.840.1.113883.2.4.3.111.5.10.1"))],
        ("subject", "urn:oasis:names:tc:xacml:1.0:subject-category:access-subject"): [
            (xacml.SUBJECT_ROLE, _cv(role, xacml.ROLE_CODE_SYSTEM)),
            (xacml.PROVIDER_IDENTIFIER, _ii(xacml.UZI_OID, professional)),
            (xacml.REQUESTER_INSTITUTION, _ii(xacml.URA_OID, requester)),
            (xacml.REQUESTER_FACILITY_TYPE, _cv("Z1", "2.16.840.1.113883.2.4.15.1060")),
        ],
        ("environment", CATEGORY + "environment"): [
            (xacml.PURPOSE_OF_USE, _cv("TREAT", "2.16.840.1.113883.1.11.20448"))
        ],
    }
    attributes = "".join(
        f'<Attributes Category="{category}" xml:id="{xml_id}">{"".join(_attribute(*a) for a in members)}</Attributes>'
        for (xml_id, category), members in groups.items()
    )
    return (
        f'<SOAP-ENV:Envelope xmlns:SOAP-ENV="{xacml.SOAP}" xmlns:types="{PROTOCOL}" xmlns:wsa="{xacml.WSA}">'
        "<SOAP-ENV:Header><wsa:Action>XACMLAuthorizationDecisionQueryRequest</wsa:Action>"
        "<wsa:MessageID>urn:uuid:0b5c1a52-1111-4c1e-9d7e-2a6f4c3b9d10</wsa:MessageID></SOAP-ENV:Header>"
        "<SOAP-ENV:Body><types:XACMLAuthzDecisionQuery>"
        f'<Request xmlns="{xacml.XACML}" CombinedDecision="false" ReturnPolicyIdList="false">{attributes}</Request>'
        "</types:XACMLAuthzDecisionQuery></SOAP-ENV:Body></SOAP-ENV:Envelope>"
    ).encode()


def signed_as_knooppunt(body: bytes, identity: xmldsig.SigningIdentity) -> bytes:
    return xmldsig.sign_soap_query(body, identity, part="Request")


def _rsa_from_ca(pki: Pki, tmp_path: Path) -> tuple[xmldsig.SigningIdentity, x509.Certificate]:
    rsa_client = rsa_certificate(pki.ca_file.parent, common_name="knooppunt")
    return xmldsig.SigningIdentity(key_pem=rsa_client.key_pem, cert_pem=rsa_client.chain_pem), rsa_client.certificate


# --- accepted -------------------------------------------------------------------------------


def test_the_knooppunt_form_signed_with_rsa_is_read(pki: Pki, tmp_path: Path):
    identity, cert = _rsa_from_ca(pki, tmp_path)
    body = signed_as_knooppunt(knooppunt_query(), identity)
    root = etree.fromstring(body)
    query = xmldsig.soap_query(root)
    assert query is not None and query.get("ID") is None  # nothing to refer to but the Request's xml:id
    assert etree.QName(query[0]).localname == "Signature"  # beside the Request, not inside it
    request = query.find(f"{{{xacml.XACML}}}Request")
    assert request is not None
    reference = root.find(".//{http://www.w3.org/2000/09/xmldsig#}Reference")
    assert reference is not None and reference.get("URI") == "#" + request.get(xmldsig.XML_ID, "")
    assert b"xmldsig-more#rsa-sha256" in body
    question = ask(body, trust(pki, client=cert))
    assert (question.bsn, question.role, question.professional) == ("968548829", "01.015", "000095254")


def test_the_chain_in_one_x509certificate_is_read_leaf_first(pki: Pki, tmp_path: Path):
    identity, cert = _rsa_from_ca(pki, tmp_path)
    body = signed_as_knooppunt(knooppunt_query(), identity)
    text = etree.fromstring(body).findtext(".//{http://www.w3.org/2000/09/xmldsig#}X509Certificate") or ""
    ca_der = x509.load_pem_x509_certificate(pki.ca_file.read_bytes()).public_bytes(serialization.Encoding.DER)
    assert base64.b64decode(text) == cert.public_bytes(serialization.Encoding.DER) + ca_der
    assert ask(body, trust(pki, client=cert)).bsn == "968548829"


def test_the_knooppunt_form_signed_with_ec_is_read(pki: Pki):
    body = signed_as_knooppunt(knooppunt_query(), pki.client.identity)
    assert b"xmldsig-more#ecdsa-sha256" in body
    assert ask(body, trust(pki)).requester_ura == "90000003"


def test_a_change_to_the_signed_request_is_refused(pki: Pki):
    body = signed_as_knooppunt(knooppunt_query(), pki.client.identity)
    with pytest.raises(xacml.SoapFault, match="changed after it was signed"):
        ask(body.replace(b'extension="968548829"', b'extension="111222333"'), trust(pki))


# --- signature wrapping -----------------------------------------------------------------------


def _forged_request(bsn: str = "111222333") -> bytes:
    request = etree.fromstring(knooppunt_query(bsn=bsn)).find(f".//{{{xacml.XACML}}}Request")
    assert request is not None
    for group in request:  # ids of its own, so that only the wrapping rule can refuse it
        group.set(xmldsig.XML_ID, "forged-" + group.get(xmldsig.XML_ID, ""))
    return bytes(etree.tostring(request))


def test_a_second_request_beside_the_signed_one_is_refused(pki: Pki):
    body = signed_as_knooppunt(knooppunt_query(), pki.client.identity)
    wrapped = body.replace(b"</SOAP-ENV:Header>", _forged_request() + b"</SOAP-ENV:Header>")
    with pytest.raises(xacml.SoapFault, match="carries 2 XACML Requests") as caught:
        ask(wrapped, trust(pki))
    assert caught.value.subcode == "request-ambiguous"


def test_the_signed_request_moved_aside_for_a_forged_one_is_refused(pki: Pki):
    """The classic wrapping: the signed Request hidden in a wrapper, a forged one in its place."""
    root = etree.fromstring(signed_as_knooppunt(knooppunt_query(), pki.client.identity))
    query = xmldsig.soap_query(root)
    assert query is not None
    original = query.find(f"{{{xacml.XACML}}}Request")
    assert original is not None
    wrapper = etree.SubElement(query, "Wrapper")
    wrapper.append(original)
    query.insert(1, etree.fromstring(_forged_request()))
    with pytest.raises(xacml.SoapFault) as caught:
        ask(etree.tostring(root), trust(pki))
    assert caught.value.subcode == "request-ambiguous"


def test_a_second_element_with_the_signed_id_is_refused(pki: Pki):
    body = signed_as_knooppunt(knooppunt_query(), pki.client.identity)
    request_id = etree.fromstring(body).find(f".//{{{xacml.XACML}}}Request").get(xmldsig.XML_ID)  # type: ignore[union-attr]
    twin = f'<wsa:To ID="{request_id}">elsewhere</wsa:To></SOAP-ENV:Header>'.encode()  # xml:id: the parser refuses
    with pytest.raises(xacml.SoapFault, match="2 elements of the message carry the ID"):
        ask(body.replace(b"</SOAP-ENV:Header>", twin), trust(pki))


def test_a_reference_to_an_element_outside_the_query_is_refused(pki: Pki):
    """A signature over the SOAP header says nothing about the question in the body."""
    body = knooppunt_query().replace(b"<wsa:Action>", b'<wsa:Action xml:id="header">', 1)
    signed = signed_as_knooppunt(body, pki.client.identity)
    moved = re.sub(rb'URI="#_[0-9a-f]+"', b'URI="#header"', signed)
    with pytest.raises(xacml.SoapFault, match="names an element outside the query"):
        ask(moved, trust(pki))


def test_a_signature_outside_the_query_and_the_signed_element_is_refused(pki: Pki):
    root = etree.fromstring(signed_as_knooppunt(knooppunt_query(), pki.client.identity))
    query = xmldsig.soap_query(root)
    assert query is not None
    attributes = query.find(f".//{{{xacml.XACML}}}Attributes")
    assert attributes is not None
    attributes.append(query[0])  # the signature, moved into a part of what it signs
    with pytest.raises(xacml.SoapFault, match="must be a child of the query or of the element it signs"):
        ask(etree.tostring(root), trust(pki))


# --- the answer echoes what the query marked IncludeInResult --------------------------------


def test_the_answer_echoes_every_attribute_marked_include_in_result():
    question = xacml.parse_query(knooppunt_query(), lambda query: query)
    answer = etree.fromstring(xacml.response("Permit", question.message_id, question.echo))
    result = answer.find(f".//{{{xacml.XACML}}}Response/{{{xacml.XACML}}}Result")
    assert result is not None
    assert result.findtext(f"{{{xacml.XACML}}}Decision") == "Permit"  # where the knooppunt reads it
    groups = result.findall(f"{{{xacml.XACML}}}Attributes")
    assert [g.get(xmldsig.XML_ID) for g in groups] == ["resource", "action0", "subject", "environment"]
    echoed = result.findall(f"{{{xacml.XACML}}}Attributes/{{{xacml.XACML}}}Attribute")
    assert len(echoed) == ECHOED
    bsn = result.find(f".//{{{HL7}}}InstanceIdentifier[@root='{xacml.BSN_OID}']")
    assert bsn is not None and bsn.get("extension") == "968548829"
    children = [etree.QName(child).localname for child in result]
    assert children == ["Decision", "Status", "Attributes", "Attributes", "Attributes", "Attributes"]


def test_attributes_not_marked_are_not_echoed():
    body = knooppunt_query().replace(b'IncludeInResult="true"', b'IncludeInResult="false"')
    question = xacml.parse_query(body, lambda query: query)
    assert question.echo == ""
    assert b"<xacml:Attributes" not in xacml.response("Deny", "", question.echo)


# --- the professional's role and UZI number -----------------------------------------------


def test_a_query_without_the_professionals_role_is_a_sender_fault():
    body = knooppunt_query()
    root = etree.fromstring(body)
    role = root.find(f".//{{{xacml.XACML}}}Attribute[@AttributeId='{xacml.SUBJECT_ROLE}']")
    assert role is not None
    role.getparent().remove(role)  # type: ignore[union-attr]
    with pytest.raises(xacml.SoapFault, match="lacks the professional's role") as caught:
        xacml.parse_query(etree.tostring(root), lambda query: query)
    assert caught.value.subcode == "attribute-missing"


@pytest.mark.parametrize(
    ("old", "new", "what"),
    [
        (xacml.ROLE_CODE_SYSTEM.encode(), b"1.2.3", "role"),
        (f'root="{xacml.UZI_OID}"'.encode(), b'root="1.2.3"', "UZI number"),
    ],
)
def test_a_role_or_professional_under_another_code_system_is_a_sender_fault(old: bytes, new: bytes, what: str):
    with pytest.raises(xacml.SoapFault, match=f"professional's {what} must be identified under OID") as caught:
        xacml.parse_query(knooppunt_query().replace(old, new), lambda query: query)
    assert caught.value.subcode == "attribute-invalid"


def test_the_professional_is_optional():
    body = knooppunt_query()
    root = etree.fromstring(body)
    provider = root.find(f".//{{{xacml.XACML}}}Attribute[@AttributeId='{xacml.PROVIDER_IDENTIFIER}']")
    provider.getparent().remove(provider)  # type: ignore[union-attr]
    question = xacml.parse_query(etree.tostring(root), lambda query: query)
    assert question.professional == "" and question.requester_names == {"90000003", "Z1", "role:01.015"}


def test_the_requester_goes_by_its_role_and_professional_too():
    question = xacml.parse_query(knooppunt_query(), lambda query: query)
    assert question.requester_names == {"90000003", "Z1", "role:01.015", "uzi:000095254"}
    asked = question_of(data_holder="90000002", requester=question.requester_names, data_category="GGC002")
    assert "uzi:000095254" in asked["requester"]
