"""The catalogues the live nodes serve (each data station's and the access body's), read over
HTTPS and validated as RDF with SHACL: against the project's own DCAT-AP 3 shapes always, and
against the official DCAT-AP 3.0.0 shapes where a copy of their repository is at hand."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import Net
from tests.unit.test_dcat_shapes import needs_official_shapes, violations

pytestmark = pytest.mark.integration


def served_catalogues(net: Net) -> dict[str, dict[str, Any]]:
    """Every station's catalogue and the body's (after a harvest), by node name."""
    harvest = net.client.post(f"{net.internal('hdab')}/internal/hdab/v1/harvest")
    assert harvest.status_code == 200 and harvest.json()["failed"] == [], harvest.text
    urls = {
        name: f"{node['url']}/catalogue" for name, node in net.context["nodes"].items() if node["role"] == "station"
    }
    urls["hdab"] = f"{net.url('hdab')}/hdab/v1/catalogue"
    found = {}
    for name, url in urls.items():
        response = net.client.get(url)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/ld+json")
        found[name] = response.json()
    assert len(found) == 4, sorted(found)  # three stations and the body
    return found


def test_every_served_catalogue_conforms_to_our_dcat_ap_3_shapes(net: Net) -> None:
    for name, document in served_catalogues(net).items():
        assert violations(document) == set(), name


def test_every_served_catalogue_conforms_to_the_official_dcat_ap_3_shapes(net: Net) -> None:
    shapes = needs_official_shapes()
    for name, document in served_catalogues(net).items():
        assert violations(document, shapes) == set(), name


def test_the_station_catalogues_name_the_access_body(net: Net) -> None:
    body = net.org("hdab")["name"]
    for name, document in served_catalogues(net).items():
        if name != "hdab":
            assert document["dcat:dataset"][0]["healthdcatap:hdab"]["foaf:name"] == body, name
