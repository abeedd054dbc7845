"""The closed question in Mitz's own form: a SOAP 1.2 envelope (with WS-Addressing) carrying
an XACML 3.0 authorization decision query (SAML profile), answered with an XACML Response in
a SOAP envelope, or a SOAP fault. Attribute ids and OIDs as the Mitz interface uses them
(shared/REFERENCE.md, section 2)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from xml.sax.saxutils import escape

from lxml import etree

from protocols import xmldsig

SOAP = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
XACML = "urn:oasis:names:tc:xacml:3.0:core:schema:wd-17"
HL7 = "urn:hl7-org:v3"
BSN_OID = "2.16.840.1.113883.2.4.6.3"
URA_OID = "2.16.528.1.1007.3.3"
TREATMENT = "TREAT"

RESOURCE_ID = "urn:oasis:names:tc:xacml:2.0:resource:resource-id"
HOLDER_FACILITY_TYPE = "urn:ihe:iti:appc:2016:document-entry:healthcare-facility-type-code"
HOLDER_INSTITUTION = "urn:ihe:iti:appc:2016:author-institution:id"
EVENT_CODE = "urn:ihe:iti:appc:2016:document-entry:event-code"
REQUESTER_INSTITUTION = "urn:nl:otv:names:tc:1.0:subject:provider-institution"
REQUESTER_FACILITY_TYPE = "urn:nl:otv:names:tc:1.0:subject:consulting-healthcare-facility-type-code"
PURPOSE_OF_USE = "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse"
SUBJECT_ROLE = "urn:oasis:names:tc:xacml:2.0:subject:role"
PROVIDER_IDENTIFIER = "urn:ihe:iti:xua:2017:subject:provider-identifier"
ROLE_CODE_SYSTEM = "2.16.840.1.113883.2.4.15.111"  # UZI role codes (e.g. 01.015, a physician)
UZI_OID = "2.16.528.1.1007.3.1"  # UZI numbers of care professionals
# How a choice names a requester by role or as one professional (beside a URA or a category).
ROLE_PREFIX = "role:"
PROFESSIONAL_PREFIX = "uzi:"
MAX_QUERY_BYTES = 64 * 1024
# The query element -> the query as its signature covers it (xmldsig.SignatureRefused if not).
Verifier = Callable[[etree._Element], etree._Element]


# Which rule refused a query, as the Subcode of the fault (a QName in this namespace), the
# same rule names the service's JSON refusals carry in their problem type.
REFUSAL = "urn:health-testbed:refusal"


class SoapFault(Exception):
    """A query that cannot be answered: a Sender fault (the query is wrong) or a Receiver
    fault (the service failed). Never a Permit. `subcode` names the rule that refused it
    (e.g. signature-missing), so that a client can tell one refusal from another."""

    def __init__(self, code: str, reason: str, subcode: str | None = None):
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.subcode = subcode

    @property
    def http_status(self) -> int:
        return 400 if self.code == "Sender" else 500  # SOAP 1.2 HTTP binding, section 7.5.1


@dataclass(frozen=True)
class Question:
    message_id: str
    bsn: str
    holder_ura: str
    holder_category: str
    data_category: str
    requester_ura: str
    requester_category: str
    purpose: str
    role: str = ""  # the professional's UZI role code
    professional: str = ""  # the professional's UZI number, when the query names one
    echo: str = ""  # the XACML Attributes to return in the Result (IncludeInResult), serialised

    @property
    def requester_names(self) -> set[str]:
        """Every name the requester goes by in consent choices: its URA and category, and the
        role and the professional the query names, in the prefixed form choices use."""
        names = {self.requester_ura, self.requester_category}
        names |= {ROLE_PREFIX + self.role} if self.role else set()
        return names | ({PROFESSIONAL_PREFIX + self.professional} if self.professional else set())


def _correct(_: str) -> bool:
    return False


def parse_query(body: bytes, verified: Verifier, *, faulty: Callable[[str], bool] = _correct) -> Question:
    """The question a SOAP query asks. `verified` checks the query's signature and returns the
    element it covers: the question is read from what was signed and nothing else, and the
    message must carry exactly one XACML Request (a second one, outside what was signed, could
    be what another reader takes for the question). `faulty`: a deliberately faulty node's
    switch (the mutation self-test); a correct node leaves it out."""
    envelope = _envelope_of(body)
    query = xmldsig.soap_query(envelope)
    if query is None:
        raise SoapFault("Sender", "the SOAP body carries no query", "query-missing")
    try:
        signed = verified(query)
    except xmldsig.SignatureRefused as exc:
        raise SoapFault("Sender", f"the query's signature is refused: {exc}", exc.rule) from None
    request = signed if signed.tag == REQUEST else next(signed.iter(REQUEST), None)
    if faulty("signature-wrapping-accepted"):
        request = next(envelope.iter(REQUEST), None)
    if request is None:
        raise SoapFault("Sender", "the signed part of the query has no XACML Request", "query-missing")
    count = sum(1 for _ in envelope.iter(REQUEST))
    if count != 1 and not faulty("signature-wrapping-accepted"):
        raise SoapFault("Sender", f"the message carries {count} XACML Requests, not one", "request-ambiguous")
    attributes = _attributes(request)
    message_id = envelope.findtext(f"{{{SOAP}}}Header/{{{WSA}}}MessageID", default="").strip()
    role_required = not faulty("role-not-required")
    return _question(attributes, message_id=message_id, echo=_included(request), role_required=role_required)


def _envelope_of(body: bytes) -> etree._Element:
    if len(body) > MAX_QUERY_BYTES:
        raise SoapFault("Sender", f"the query is larger than {MAX_QUERY_BYTES} bytes", "query-too-large")
    if b"<!doctype" in body.lower():
        raise SoapFault("Sender", "a SOAP message may not contain a document type declaration", "query-malformed")
    try:
        envelope = xmldsig.parse_xml(body)
    except etree.XMLSyntaxError as exc:
        raise SoapFault("Sender", f"the query is not well-formed XML: {exc}", "query-malformed") from None
    except ValueError as exc:  # a DTD in an encoding the check above does not read
        raise SoapFault("Sender", f"the query cannot be read: {exc}", "query-malformed") from None
    if envelope.tag != f"{{{SOAP}}}Envelope":
        raise SoapFault("Sender", "the query is not a SOAP 1.2 envelope", "not-soap")
    return envelope


Found = dict[str, tuple[str, str | None]]


def _question(attributes: Found, *, message_id: str, echo: str, role_required: bool = True) -> Question:
    def required(attribute_id: str, what: str, root: str | None = None) -> str:
        found = attributes.get(attribute_id)
        if attribute_id == SUBJECT_ROLE and found is None and not role_required:
            return ""  # the deliberate defect role-not-required
        if found is None or not found[0]:
            rule = "bsn-missing" if attribute_id == RESOURCE_ID else "attribute-missing"
            raise SoapFault("Sender", f"the query lacks {what} ({attribute_id})", rule)
        return _under(found, what, root)

    provider = attributes.get(PROVIDER_IDENTIFIER)
    return Question(
        message_id=message_id,
        bsn=required(RESOURCE_ID, "the patient's BSN", BSN_OID),
        holder_ura=required(HOLDER_INSTITUTION, "the data holder's URA", URA_OID),
        holder_category=required(HOLDER_FACILITY_TYPE, "the data holder's facility type"),
        data_category=required(EVENT_CODE, "the event code (data category)"),
        requester_ura=required(REQUESTER_INSTITUTION, "the requester's URA", URA_OID),
        requester_category=required(REQUESTER_FACILITY_TYPE, "the requester's facility type"),
        purpose=required(PURPOSE_OF_USE, "the purpose of use"),
        role=required(SUBJECT_ROLE, "the professional's role", ROLE_CODE_SYSTEM),
        professional=_under(provider, "the professional's UZI number", UZI_OID) if provider and provider[0] else "",
        echo=echo,
    )


def _under(found: tuple[str, str | None], what: str, root: str | None) -> str:
    """The value, when it is identified (or coded) under the OID it must be; else a fault."""
    if root is not None and found[1] != root:
        raise SoapFault("Sender", f"{what} must be identified under OID {root}, not {found[1]!r}", "attribute-invalid")
    return found[0]


def _included(request: etree._Element) -> str:
    """XACML 3.0 core, sections 5.29 and 5.47: each Attribute marked IncludeInResult="true"
    comes back in the Result, with its values, under an Attributes element of its category
    (carrying the request's xml:id of that Attributes element, when it had one)."""
    parts = []
    for group in request.iterchildren(f"{{{XACML}}}Attributes"):
        included = [a for a in group.iterchildren(ATTRIBUTE) if a.get("IncludeInResult") in ("true", "1")]
        if not included:
            continue
        echoed = etree.Element(f"{{{XACML}}}Attributes", Category=group.get("Category", ""), nsmap={"xacml": XACML})
        if group.get(xmldsig.XML_ID):
            echoed.set(xmldsig.XML_ID, group.get(xmldsig.XML_ID, ""))
        echoed.extend(copy.deepcopy(attribute) for attribute in included)
        parts.append(etree.tostring(echoed, encoding="unicode"))
    return "".join(parts)


REQUEST = f"{{{XACML}}}Request"
ATTRIBUTE = f"{{{XACML}}}Attribute"
ATTRIBUTE_VALUE = f"{{{XACML}}}AttributeValue"
INSTANCE_IDENTIFIER = f"{{{HL7}}}InstanceIdentifier"  # HL7 II
CODED_VALUE = f"{{{HL7}}}CodedValue"  # HL7 CV


def _attributes(request: etree._Element) -> Found:
    """AttributeId -> (value, OID root or code system): HL7 II values carry `extension` and
    `root`, CV values `code` and `codeSystem`."""
    found: Found = {}
    for attribute in request.iter(ATTRIBUTE):
        value = next(attribute.iterchildren(ATTRIBUTE_VALUE), None)
        if value is None:
            continue
        name = attribute.get("AttributeId", "")
        if name in found:
            raise SoapFault("Sender", f"attribute {name} is given more than once", "attribute-repeated")
        identifier = next(value.iterchildren(INSTANCE_IDENTIFIER), None)
        coded = next(value.iterchildren(CODED_VALUE), None) if identifier is None else None
        if identifier is not None:
            found[name] = (identifier.get("extension", ""), identifier.get("root"))
        elif coded is not None:
            found[name] = (coded.get("code", ""), coded.get("codeSystem"))
        else:
            found[name] = ((value.text or "").strip(), None)
    return found


# Answers have one fixed shape each: written from templates, their values escaped.
ENVELOPE = (
    "<?xml version='1.0' encoding='utf-8'?>\n"
    f'<soap:Envelope xmlns:soap="{SOAP}" xmlns:wsa="{WSA}" xmlns:xacml="{XACML}">'
    "<soap:Header><wsa:Action>XACMLAuthorizationDecisionQueryResponse</wsa:Action>"
    "<wsa:MessageID>urn:uuid:{message_id}</wsa:MessageID>{relates_to}</soap:Header>"
    "<soap:Body>{body}</soap:Body></soap:Envelope>"
)
# XACML 3.0 core, section 5.47: a Result holds its Decision, Status, and then the attributes
# the request asked to have included.
DECISION = (
    "<xacml:Response><xacml:Result><xacml:Decision>{decision}</xacml:Decision><xacml:Status>"
    '<xacml:StatusCode Value="urn:oasis:names:tc:xacml:1.0:status:ok" /></xacml:Status>{included}'
    "</xacml:Result></xacml:Response>"
)
FAULT = (
    "<soap:Fault><soap:Code><soap:Value>soap:{code}</soap:Value>{subcode}</soap:Code>"
    '<soap:Reason><soap:Text xml:lang="en">{reason}</soap:Text></soap:Reason></soap:Fault>'
)
# SOAP 1.2 part 1, section 5.4.1.3: a Subcode's Value is a qualified name.
SUBCODE = f'<soap:Subcode><soap:Value xmlns:r="{REFUSAL}">r:{{rule}}</soap:Value></soap:Subcode>'


def response(decision: str, relates_to: str, included: str = "") -> bytes:
    """`included`: the Attributes the request marked IncludeInResult, as `parse_query` wrote
    them (serialised by lxml from the parsed request, so already well-formed and escaped)."""
    return _envelope(relates_to, DECISION.format(decision=escape(decision), included=included))


def fault(error: SoapFault, relates_to: str = "") -> bytes:
    subcode = SUBCODE.format(rule=escape(error.subcode)) if error.subcode else ""
    return _envelope(relates_to, FAULT.format(code=escape(error.code), subcode=subcode, reason=escape(error.reason)))


def _envelope(relates_to: str, body: str) -> bytes:
    relates = f"<wsa:RelatesTo>{escape(relates_to)}</wsa:RelatesTo>" if relates_to else ""
    return ENVELOPE.format(message_id=uuid.uuid4(), relates_to=relates, body=body).encode("utf-8")
