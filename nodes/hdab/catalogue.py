"""The access body's view of the stations' HealthDCAT-AP catalogues: each dataset with the
analysis service that serves it and where that service's tokens come from."""

from __future__ import annotations

from typing import Any

from nodes.station.catalogue import ANALYSIS_API


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
                "station": station,
                "individuals": int(dataset["healthdcatap:numberOfUniqueIndividuals"]["@value"]),
                "access_rights": dataset.get("dct:accessRights", {}).get("@id"),
                "analysis_endpoint": ids(service["dcat:endpointURL"]).pop(),
                "authorization_server": ids(service["testbed:authorizationServer"]).pop(),
            }
        )
    return found


def as_list(value: Any) -> list[Any]:
    """JSON-LD gives one value or a list of them alike."""
    return value if isinstance(value, list) else [] if value is None else [value]


def ids(value: Any) -> set[str]:
    """The identifiers a JSON-LD value names: `{"@id": ...}` objects or plain strings."""
    return {v["@id"] if isinstance(v, dict) else v for v in as_list(value) if isinstance(v, dict | str)}
