import xml.etree.ElementTree as ET

import pytest

from nodes.consent import xacml


def as_signed(query):
    """Parsing tests take the signature as checked; tests/unit/test_xmldsig.py checks it."""
    return query


ATTRIBUTE = '<Attribute AttributeId="{id}"><AttributeValue>{value}</AttributeValue></Attribute>'
II = '<InstanceIdentifier xmlns="urn:hl7-org:v3" root="{root}" extension="{ext}"/>'
CV = '<CodedValue xmlns="urn:hl7-org:v3" code="{code}"/>'
ROLE = f'<CodedValue xmlns="urn:hl7-org:v3" code="{{code}}" codeSystem="{xacml.ROLE_CODE_SYSTEM}"/>'


def query(bsn_root: str = xacml.BSN_OID, leave_out: str = "") -> bytes:
    values = {
        xacml.RESOURCE_ID: II.format(root=bsn_root, ext="968548829"),
        xacml.HOLDER_FACILITY_TYPE: CV.format(code="Z3"),
        xacml.HOLDER_INSTITUTION: II.format(root=xacml.URA_OID, ext="90000002"),
        xacml.EVENT_CODE: CV.format(code="GGC002"),
        xacml.REQUESTER_INSTITUTION: II.format(root=xacml.URA_OID, ext="90000003"),
        xacml.REQUESTER_FACILITY_TYPE: CV.format(code="Z1"),
        xacml.PURPOSE_OF_USE: CV.format(code="TREAT"),
        xacml.SUBJECT_ROLE: ROLE.format(code="01.015"),
        xacml.PROVIDER_IDENTIFIER: II.format(root=xacml.UZI_OID, ext="000095254"),
    }
    attributes = "".join(ATTRIBUTE.format(id=k, value=v) for k, v in values.items() if k != leave_out)
    return (
        f'<soap:Envelope xmlns:soap="{xacml.SOAP}" xmlns:wsa="{xacml.WSA}">'
        "<soap:Header><wsa:MessageID>urn:uuid:1</wsa:MessageID></soap:Header>"
        f'<soap:Body><Request xmlns="{xacml.XACML}"><Attributes>{attributes}</Attributes></Request></soap:Body>'
        "</soap:Envelope>"
    ).encode()


def test_a_query_is_read_into_a_question():
    question = xacml.parse_query(query(), as_signed)
    assert (question.bsn, question.holder_ura, question.holder_category) == ("968548829", "90000002", "Z3")
    assert (question.requester_ura, question.requester_category) == ("90000003", "Z1")
    assert (question.data_category, question.purpose, question.message_id) == ("GGC002", "TREAT", "urn:uuid:1")


@pytest.mark.parametrize(
    ("body", "message", "rule"),
    [
        (query(leave_out=xacml.RESOURCE_ID), "lacks the patient's BSN", "bsn-missing"),
        (query(leave_out=xacml.PURPOSE_OF_USE), "lacks the purpose of use", "attribute-missing"),
        (query(bsn_root="1.2.3"), "must be identified under OID", "attribute-invalid"),
        (b"<not-closed", "not well-formed", "query-malformed"),
        (b"<Envelope/>", "not a SOAP 1.2 envelope", "not-soap"),
        (
            f'<soap:Envelope xmlns:soap="{xacml.SOAP}"><soap:Body/></soap:Envelope>'.encode(),
            "carries no query",
            "query-missing",
        ),
        (  # a DTD the byte check cannot see, in UTF-16: the parser refuses it too
            '<!DOCTYPE x [<!ENTITY a "b">]>'.encode("utf-16") + query().decode().encode("utf-16")[2:],
            "document type declaration is not allowed",
            "query-malformed",
        ),
        (b"x" * (xacml.MAX_QUERY_BYTES + 1), "larger than", "query-too-large"),
        (b'<!DOCTYPE x [<!ENTITY a "b">]>' + query(), "document type declaration", "query-malformed"),
        (
            query().replace(
                b"</Attributes>",
                ATTRIBUTE.format(id=xacml.EVENT_CODE, value=CV.format(code="X")).encode() + b"</Attributes>",
            ),
            "more than once",
            "attribute-repeated",
        ),
    ],
)
def test_bad_queries_are_sender_faults_that_name_their_rule(body, message, rule):
    with pytest.raises(xacml.SoapFault, match=message) as caught:
        xacml.parse_query(body, as_signed)
    assert caught.value.code == "Sender" and caught.value.http_status == 400
    assert caught.value.subcode == rule


def test_the_question_is_read_from_what_the_signature_covers():
    """The verifier hands back the signed query; what else the envelope says does not count."""
    signed = xacml.parse_query(query(), as_signed)

    def verified(_):
        return xacml.xmldsig.parse_xml(query().replace(b"968548829", b"111222333")).find(f".//{{{xacml.XACML}}}Request")

    assert xacml.parse_query(query(), verified).bsn == "111222333" != signed.bsn


@pytest.mark.parametrize(
    "rule", ["signature-missing", "signature-invalid", "signer-untrusted", "signer-not-tls-client"]
)
def test_a_refused_signature_is_a_sender_fault_with_the_signature_rule_as_subcode(rule):
    def refuse(_):
        raise xacml.xmldsig.SignatureRefused("the query is not signed", rule=rule)

    with pytest.raises(xacml.SoapFault, match="signature is refused: the query is not signed") as caught:
        xacml.parse_query(query(), refuse)
    assert (caught.value.code, caught.value.subcode) == ("Sender", rule)


def test_a_signature_refusal_without_a_rule_is_signature_invalid():
    assert xacml.xmldsig.SignatureRefused("changed").rule == "signature-invalid"


def test_answers_and_faults_are_soap_envelopes():
    answer = ET.fromstring(xacml.response("Permit", "urn:uuid:1"))
    assert answer.findtext(f".//{{{xacml.XACML}}}Decision") == "Permit"
    assert answer.findtext(f".//{{{xacml.WSA}}}RelatesTo") == "urn:uuid:1"
    fault = ET.fromstring(xacml.fault(xacml.SoapFault("Sender", "no BSN")))
    assert fault.findtext(f".//{{{xacml.SOAP}}}Value") == "soap:Sender"
    assert fault.findtext(f".//{{{xacml.SOAP}}}Text") == "no BSN"
    assert fault.find(f".//{{{xacml.XACML}}}Decision") is None  # a fault is never a decision
    assert fault.find(f".//{{{xacml.SOAP}}}Subcode") is None  # no rule named, no Subcode


def test_a_fault_names_its_rule_as_a_qualified_subcode_under_sender():
    """SOAP 1.2 part 1, section 5.4.1.3: Code/Value, then Subcode/Value, a QName; a client that
    reads only Code/Value (or only the HTTP status) still sees a Sender fault."""
    from lxml import etree

    envelope = etree.fromstring(xacml.fault(xacml.SoapFault("Sender", "not signed", "signature-missing")))
    code = envelope.find(f".//{{{xacml.SOAP}}}Fault/{{{xacml.SOAP}}}Code")
    assert code is not None and code.findtext(f"{{{xacml.SOAP}}}Value") == "soap:Sender"
    value = code.find(f"{{{xacml.SOAP}}}Subcode/{{{xacml.SOAP}}}Value")
    assert value is not None
    prefix, _, local = value.text.partition(":")
    assert (value.nsmap[prefix], local) == (xacml.REFUSAL, "signature-missing")


def test_notifications_are_retried_until_taken():
    import asyncio

    from nodes.consent.subscriptions import deliver

    attempts = []

    def sender(succeed_at: int):
        async def send(endpoint, bundle):
            attempts.append(endpoint)
            return len(attempts) >= succeed_at

        return send

    assert asyncio.run(deliver(sender(3), endpoint="https://x", bundle={}, pauses=(0, 0, 0))) is True
    assert len(attempts) == 3
    attempts.clear()
    assert asyncio.run(deliver(sender(99), endpoint="https://x", bundle={}, pauses=(0, 0))) is False
    assert len(attempts) == 3  # the first try and one per pause
