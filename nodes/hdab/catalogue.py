"""The access body's catalogue: what it harvests from the stations' HealthDCAT-AP catalogues
(each dataset with the analysis service that serves it and where that service's tokens come
from) and the DCAT-AP catalogue it publishes of them for data users.

The published catalogue is compact JSON-LD under a context of plain names (`id`, `datasets`,
`individuals`, ...), so a JSON client reads it as ordinary JSON and an RDF client gets the same
DCAT-AP 3 graph as from prefixed names."""

from __future__ import annotations

from typing import Any

from nodes.station.catalogue import ANALYSIS_API, CONTEXT, EHDS

PUBLISHED_CONTEXT: dict[str, Any] = {
    **{prefix: iri for prefix, iri in CONTEXT.items() if prefix != "testbed"},
    "id": "@id",
    "type": "@type",
    "Catalog": "dcat:Catalog",
    "Dataset": "dcat:Dataset",
    "Distribution": "dcat:Distribution",
    "Agent": "foaf:Agent",
    "Organization": "foaf:Organization",
    "Kind": "vcard:Kind",
    "RightsStatement": "dct:RightsStatement",
    "LegalResource": "eli:LegalResource",
    "Concept": "skos:Concept",
    "title": "dct:title",
    "description": "dct:description",
    "publisher": "dct:publisher",
    "datasets": "dcat:dataset",
    "individuals": {"@id": "healthdcatap:numberOfUniqueIndividuals", "@type": "xsd:nonNegativeInteger"},
    "access_rights": "dct:accessRights",
    "applicable_legislation": "dcatap:applicableLegislation",
    "contact_point": "dcat:contactPoint",
    "distribution": "dcat:distribution",
    "access_url": {"@id": "dcat:accessURL", "@type": "@id"},
    "hdab": "healthdcatap:hdab",
    "name": "foaf:name",
    "kind": "dct:type",
    "label": "skos:prefLabel",
    "fn": "vcard:fn",
    "url": {"@id": "vcard:hasURL", "@type": "@id"},
}
# The body's kind of organisation, from the publisher types DCAT-AP recommends (ADMS).
NATIONAL_AUTHORITY = "http://purl.org/adms/publishertype/NationalAuthority"


def datasets_of(catalogue: dict[str, Any], station: str, services_too: bool = False) -> list[dict[str, Any]]:
    """The harvested view of a HealthDCAT-AP catalogue: each dataset with the analysis
    service that serves it and where that service's tokens come from. `services_too` is a
    faulty variant's reading, which takes every data service for a dataset as well."""
    services = [s for s in as_list(catalogue.get("dcat:service")) if ANALYSIS_API in ids(s.get("dct:conformsTo"))]
    found = []
    resources = as_list(catalogue["dcat:dataset"])
    if services_too:
        resources += [{**d, "@id": url} for d in resources for s in services for url in ids(s["dcat:endpointURL"])]
    for dataset in resources:
        service = next((s for s in services if dataset["@id"] in ids(s.get("dcat:servesDataset"))), None)
        if service is None and services_too:
            service = services[0]
        if service is None:
            raise LookupError(f"the catalogue offers no analysis service ({ANALYSIS_API}) for {dataset['@id']}")
        found.append(
            {
                "id": dataset["@id"],
                "title": dataset.get("dct:title"),
                "description": dataset.get("dct:description"),
                "publisher": _publisher_of(dataset, catalogue),
                "station": station,
                "individuals": int(dataset["healthdcatap:numberOfUniqueIndividuals"]["@value"]),
                "access_rights": dataset.get("dct:accessRights", {}).get("@id"),
                "analysis_endpoint": ids(service["dcat:endpointURL"]).pop(),
                "authorization_server": ids(service["testbed:authorizationServer"]).pop(),
            }
        )
    return found


def _publisher_of(dataset: dict[str, Any], catalogue: dict[str, Any]) -> dict[str, str] | None:
    """The dataset's publisher (else the catalogue's) as {id, name}, if the station names one."""
    publisher = dataset.get("dct:publisher") or catalogue.get("dct:publisher")
    if not isinstance(publisher, dict) or not isinstance(publisher.get("foaf:name"), str):
        return None
    named = {"name": publisher["foaf:name"]}
    return {"id": publisher["@id"], **named} if isinstance(publisher.get("@id"), str) else named


def published(
    records: list[dict[str, Any]], *, public_url: str, body: dict[str, str], at_stations: bool = False
) -> dict[str, Any]:
    """The DCAT-AP catalogue of the harvested datasets that the body publishes at `public_url`;
    `body` is the body's organisation ({name}). Each dataset's data is available through
    the body's central analyses, under a permit: that is its one distribution (`at_stations`: a
    faulty variant's, which names the station's own analysis API instead)."""
    agent = {
        # The body's address names it, as the stations' catalogues name it (healthdcatap:hdab).
        "id": public_url,
        "type": ["Agent", "Organization"],
        "name": body["name"],
        "kind": {"id": NATIONAL_AUTHORITY, "type": "Concept", "label": "National authority"},
    }
    contact = {"type": ["Kind", "vcard:Organization"], "fn": body["name"], "url": public_url}
    analyses = f"{public_url}/hdab/v1/analyses"
    return {
        "@context": PUBLISHED_CONTEXT,
        "id": f"{public_url}/hdab/v1/catalogue",
        "type": "Catalog",
        "title": f"Datasets available through {body['name']}",
        "description": "The datasets harvested from the data stations' HealthDCAT-AP catalogues, "
        "open to applications for a data permit or a data request.",
        "publisher": agent,
        "datasets": [
            _entry(record, agent, contact, record["analysis_endpoint"] if at_stations else analyses)
            for record in records
        ],
    }


def _entry(record: dict[str, Any], body: dict[str, Any], contact: dict[str, Any], access_url: str) -> dict[str, Any]:
    # `id` and `individuals` lead, before any nested object: clients that match the flat part
    # of an entry (the conformance profiles do) find both together.
    publisher = record.get("publisher") or {"name": f"The data station of {record['station']}"}
    entry: dict[str, Any] = {
        "id": record["id"],
        "type": "Dataset",
        "individuals": record["individuals"],
        "title": record.get("title") or record["id"],
        "description": record.get("description") or f"A dataset harvested from the station {record['station']}.",
        "publisher": {**publisher, "type": ["Agent", "Organization"]},
        "hdab": {"id": body["id"], "type": body["type"], "name": body["name"]},
        "contact_point": contact,
        "applicable_legislation": {"id": EHDS, "type": "LegalResource"},
        "distribution": [
            {
                "type": "Distribution",
                "title": "Central analyses through the access body, under a data permit",
                "access_url": access_url,
            }
        ],
    }
    if record.get("access_rights"):
        entry["access_rights"] = {"id": record["access_rights"], "type": "RightsStatement"}
    return entry


def as_list(value: Any) -> list[Any]:
    """JSON-LD gives one value or a list of them alike."""
    return value if isinstance(value, list) else [] if value is None else [value]


def ids(value: Any) -> set[str]:
    """The identifiers a JSON-LD value names: `{"@id": ...}` objects or plain strings."""
    return {v["@id"] if isinstance(v, dict) else v for v in as_list(value) if isinstance(v, dict | str)}
