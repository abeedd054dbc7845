"""The station's HealthDCAT-AP catalogue (JSON-LD): what data it holds, how many people,
under which access rights, and where its services are. The permit authority harvests it.

Every class it uses carries what DCAT-AP 3 makes mandatory for it (a catalogue's title,
description and publisher; a dataset's title and description; a distribution's access URL; a
data service's title and endpoint URL; an agent's name) and is typed with the class DCAT-AP
expects of the value (dct:Standard, dct:RightsStatement, foaf:Agent, vcard:Kind): a SHACL
validator does not infer that a foaf:Organization is a foaf:Agent, so both types are stated."""

from __future__ import annotations

from typing import Any

CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "vcard": "http://www.w3.org/2006/vcard/ns#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "dcatap": "http://data.europa.eu/r5r/",
    "eli": "http://data.europa.eu/eli/ontology#",
    "healthdcatap": "http://healthdataportal.eu/ns/health#",
    # Not HealthDCAT-AP: where a client gets an access token for a service (Nuts RFC021).
    "testbed": "https://health-network-testbed.example/ns#",
}
ACCESS_RIGHTS = "http://publications.europa.eu/resource/authority/access-right/"
FHIR_R4 = "http://hl7.org/fhir/R4"
ANALYSIS_API = "https://health-network-testbed.example/spec/station-analysis/v1"
# The European Health Data Space regulation, (EU) 2025/327: the law secondary use falls under.
EHDS = "http://data.europa.eu/eli/reg/2025/327/oj"
# URA numbers (the Dutch register of care providers) as URNs under their OID.
URA_OID = "urn:oid:2.16.528.1.1007.3.3"
AGENT_TYPES = ["foaf:Agent", "foaf:Organization"]
DEFAULT_HDAB_NAME = "Health data access body"  # when the station is not told the body's name


def dataset_id(public_url: str, slug: str) -> str:
    return f"{public_url}/catalogue/datasets/{slug}"


def catalogue(
    *,
    public_url: str,
    organisation: dict[str, str],
    slug: str,
    individuals: int,
    authorization_server: str | None,
    hdab: str | None,
    hdab_name: str | None = None,
    analysis_url: str | None = None,
) -> dict[str, Any]:
    """`hdab`: the access body's URL, `hdab_name` its name. `analysis_url`: where the analysis
    service is, when not at the station's own URL (only a faulty variant of the self-test
    publishes another)."""
    dataset = dataset_id(public_url, slug)
    publisher = _agent(f"{URA_OID}:{organisation['ura']}", organisation["name"])
    publisher["dct:identifier"] = organisation["ura"]
    analysis = analysis_url or f"{public_url}/analysis/v1"
    services = [
        _service("fhir", "FHIR R4 API, primary use", f"{public_url}/fhir", (FHIR_R4, "HL7 FHIR R4")),
        _service("analysis", "Aggregate analyses", analysis, (ANALYSIS_API, "Station analysis API v1")),
    ]
    for service in services:
        service["@id"] = f"{public_url}/catalogue/services/{service['@id']}"
        service["dcat:servesDataset"] = {"@id": dataset}
        if authorization_server:
            service["testbed:authorizationServer"] = {"@id": authorization_server}
    entry = _dataset(dataset, organisation, individuals, publisher)
    entry["dcat:contactPoint"] = {
        "@type": ["vcard:Kind", "vcard:Organization"],
        "vcard:fn": organisation["name"],
        "vcard:hasURL": {"@id": public_url},
    }
    # The data is available only as aggregate analyses, through the analysis service.
    entry["dcat:distribution"] = [
        {
            "@id": f"{dataset}/distributions/analysis",
            "@type": "dcat:Distribution",
            "dct:title": "Aggregate analyses under a data permit",
            "dcat:accessURL": {"@id": analysis},
            "dcat:accessService": {"@id": services[1]["@id"]},
        }
    ]
    if hdab:
        entry["healthdcatap:hdab"] = _agent(hdab, hdab_name or DEFAULT_HDAB_NAME)
    return {
        "@context": CONTEXT,
        "@id": f"{public_url}/catalogue",
        "@type": "dcat:Catalog",
        "dct:title": f"Data station of {organisation['name']}",
        "dct:description": f"What {organisation['name']} offers for secondary use, and the services that serve it.",
        "dct:publisher": publisher,
        "dcat:dataset": [entry],
        "dcat:service": services,
    }


def _dataset(dataset: str, organisation: dict[str, str], individuals: int, publisher: dict[str, Any]) -> dict[str, Any]:
    return {
        "@id": dataset,
        "@type": "dcat:Dataset",
        "dct:identifier": dataset,
        "dct:title": f"Care records of {organisation['name']}",
        "dct:description": "Synthetic BgZ records: patients, conditions, medication, allergies and measurements.",
        "dct:publisher": publisher,
        "dct:accessRights": {"@id": f"{ACCESS_RIGHTS}NON_PUBLIC", "@type": "dct:RightsStatement"},
        "dcatap:applicableLegislation": {"@id": EHDS, "@type": "eli:LegalResource"},
        "healthdcatap:numberOfUniqueIndividuals": {"@value": str(individuals), "@type": "xsd:nonNegativeInteger"},
        "healthdcatap:populationCoverage": f"Synthetic patients of {organisation['name']}; no real person.",
        "dcat:keyword": ["BgZ", "synthetic data"],
    }


def _agent(identifier: str, name: str) -> dict[str, Any]:
    return {"@id": identifier, "@type": AGENT_TYPES, "foaf:name": name}


def _service(slug: str, title: str, url: str, standard: tuple[str, str]) -> dict[str, Any]:
    """A data service; `standard` is the (IRI, title) of the API it conforms to."""
    return {
        "@id": slug,
        "@type": "dcat:DataService",
        "dct:title": title,
        "dcat:endpointURL": {"@id": url},
        "dct:conformsTo": {"@id": standard[0], "@type": "dct:Standard", "dct:title": standard[1]},
    }
