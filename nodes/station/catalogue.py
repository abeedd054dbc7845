"""The station's HealthDCAT-AP catalogue (JSON-LD): what data it holds, how many people,
under which access rights, and where its services are. The permit authority harvests it."""

from __future__ import annotations

from typing import Any

CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "healthdcatap": "http://healthdataportal.eu/ns/health#",
    # Not HealthDCAT-AP: where a client gets an access token for a service (Nuts RFC021).
    "testbed": "https://health-network-testbed.example/ns#",
}
ACCESS_RIGHTS = "http://publications.europa.eu/resource/authority/access-right/"
FHIR_R4 = "http://hl7.org/fhir/R4"
ANALYSIS_API = "https://health-network-testbed.example/spec/station-analysis/v1"


def dataset_id(public_url: str, slug: str) -> str:
    return f"{public_url}/catalogue/datasets/{slug}"


def catalogue(
    public_url: str,
    organisation: dict[str, str],
    slug: str,
    individuals: int,
    authorization_server: str | None,
    hdab: str | None,
    analysis_url: str | None = None,
) -> dict[str, Any]:
    """`analysis_url`: where the analysis service is, when not at the station's own URL (only a
    faulty variant of the self-test publishes another)."""
    dataset = dataset_id(public_url, slug)
    publisher = {"@type": "foaf:Organization", "foaf:name": organisation["name"], "dct:identifier": organisation["ura"]}
    services = [
        _service(f"{public_url}/fhir", FHIR_R4, dataset, authorization_server, "FHIR R4 API, primary use"),
        _service(
            analysis_url or f"{public_url}/analysis/v1",
            ANALYSIS_API,
            dataset,
            authorization_server,
            "Aggregate analyses",
        ),
    ]
    entry: dict[str, Any] = {
        "@id": dataset,
        "@type": "dcat:Dataset",
        "dct:identifier": dataset,
        "dct:title": f"Care records of {organisation['name']}",
        "dct:description": "Synthetic BgZ records: patients, conditions, medication, allergies and measurements.",
        "dct:publisher": publisher,
        "dct:accessRights": {"@id": f"{ACCESS_RIGHTS}NON_PUBLIC"},
        "healthdcatap:numberOfUniqueIndividuals": {"@value": str(individuals), "@type": "xsd:nonNegativeInteger"},
        "dcat:keyword": ["BgZ", "synthetic data"],
    }
    if hdab:
        entry["healthdcatap:hdab"] = {"@id": hdab, "@type": "foaf:Agent"}
    return {
        "@context": CONTEXT,
        "@id": f"{public_url}/catalogue",
        "@type": "dcat:Catalog",
        "dct:title": f"Data station of {organisation['name']}",
        "dct:publisher": publisher,
        "dcat:dataset": [entry],
        "dcat:service": services,
    }


def _service(url: str, conforms_to: str, dataset: str, authorization_server: str | None, title: str) -> dict[str, Any]:
    service: dict[str, Any] = {
        "@type": "dcat:DataService",
        "dct:title": title,
        "dcat:endpointURL": {"@id": url},
        "dct:conformsTo": {"@id": conforms_to},
        "dcat:servesDataset": {"@id": dataset},
    }
    if authorization_server:
        service["testbed:authorizationServer"] = {"@id": authorization_server}
    return service
