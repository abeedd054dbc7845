"""The catalogues the nodes publish, held against DCAT-AP 3 with SHACL: the station's and the
access body's conform to the project's own shapes (tests/fixtures/shapes), each defect the
shapes exist for is caught, and, where a copy of the DCAT-AP repository is at hand, the official
3.0.0 shapes agree. The helpers here serve the integration test of the live catalogues too."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from pyshacl import validate
from rdflib import XSD, Graph, Literal, Namespace

from nodes.hdab.catalogue import datasets_of, published
from nodes.station.catalogue import catalogue

SH = Namespace("http://www.w3.org/ns/shacl#")
HEALTH = Namespace("http://healthdataportal.eu/ns/health#")
SHAPES = Path(__file__).parents[1] / "fixtures" / "shapes" / "dcat-ap-3-mandatory.ttl"
# The official shapes are read from a local copy of the DCAT-AP repository, never kept here.
MIRROR = Path(os.environ.get("DCAT_AP_MIRROR", "/work/.mirror/SEMICeu+DCAT-AP/repo"))
OFFICIAL = "releases/3.0.0/shacl/dcat-ap-SHACL.ttl"

Violation = tuple[str, str]  # (the property path as a prefixed name, the focus node)


@cache
def own_shapes() -> Graph:
    return Graph().parse(SHAPES)


@cache
def official_shapes() -> Graph | None:
    """DCAT-AP 3.0.0's own shapes from the repository copy, or None where there is none."""
    if not MIRROR.is_dir():
        return None
    shown = subprocess.run(
        ["git", f"--git-dir={MIRROR}", "show", f"HEAD:{OFFICIAL}"], capture_output=True, text=True, check=False
    )
    return Graph().parse(data=shown.stdout, format="turtle") if shown.returncode == 0 else None


def needs_official_shapes() -> Graph:
    shapes = official_shapes()
    if shapes is None:
        pytest.skip(f"no copy of the DCAT-AP repository with {OFFICIAL} at {MIRROR} (set DCAT_AP_MIRROR)")
    return shapes


def violations(document: dict[str, Any], shapes: Graph | None = None) -> set[Violation]:
    """What the shapes find wrong with a JSON-LD document; an empty set: it conforms. The
    official shapes range some links over rdfs:Resource, which holds only with RDFS reasoning,
    so the data gets that reasoning (our own shapes need none: the result is the same)."""
    data = Graph().parse(data=json.dumps(document), format="json-ld")
    _, report, _ = validate(data, shacl_graph=shapes or own_shapes(), inference="rdfs")
    assert isinstance(report, Graph)
    found = set()
    for result in report.objects(None, SH.result):
        path, focus = report.value(result, SH.resultPath), report.value(result, SH.focusNode)
        found.add((data.namespace_manager.normalizeUri(str(path)) if path else "", str(focus)))
    return found


# --- the catalogues as the nodes build them ---------------------------------------------------
STATION, BODY = "https://station.test:1", "https://body.test:1"


def station_catalogue() -> dict[str, Any]:
    return catalogue(
        public_url=STATION,
        organisation={"name": "Ziekenhuis Test", "ura": "90000001"},
        slug="records",
        individuals=1000,
        authorization_server=f"{STATION}/oauth2/hospital",
        hdab=BODY,
        hdab_name="Health Data Access Body",
    )


def body_catalogue() -> dict[str, Any]:
    records = datasets_of(station_catalogue(), "hospital")
    return published(records, public_url=BODY, body={"name": "Health Data Access Body"})


def test_the_station_catalogue_conforms() -> None:
    assert violations(station_catalogue()) == set()


def test_the_body_catalogue_conforms_and_keeps_the_harvested_figures() -> None:
    document = body_catalogue()
    assert violations(document) == set()
    [dataset] = document["datasets"]
    assert dataset["id"] == f"{STATION}/catalogue/datasets/records" and dataset["individuals"] == 1000
    graph = Graph().parse(data=json.dumps(document), format="json-ld")
    [individuals] = graph.objects(None, HEALTH.numberOfUniqueIndividuals)
    assert isinstance(individuals, Literal) and individuals.datatype == XSD.nonNegativeInteger
    assert individuals.toPython() == 1000


@pytest.mark.parametrize("build", [station_catalogue, body_catalogue], ids=["station", "body"])
def test_the_official_dcat_ap_3_shapes_agree(build: Callable[[], dict[str, Any]]) -> None:
    assert violations(build(), needs_official_shapes()) == set()


# --- each defect is caught --------------------------------------------------------------------
DATASET = f"{STATION}/catalogue/datasets/records"


def _dataset(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["dcat:dataset"][0]


def _service(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["dcat:service"][1]


# Each defect: what it does to the station's catalogue, and the one violation it must cause.
DEFECTS: dict[str, tuple[Callable[[dict[str, Any]], Any], Violation]] = {
    "catalogue-without-description": (lambda d: d.pop("dct:description"), ("dct:description", f"{STATION}/catalogue")),
    "catalogue-without-title": (lambda d: d.pop("dct:title"), ("dct:title", f"{STATION}/catalogue")),
    "catalogue-without-publisher": (lambda d: d.pop("dct:publisher"), ("dct:publisher", f"{STATION}/catalogue")),
    "dataset-without-contact-point": (lambda d: _dataset(d).pop("dcat:contactPoint"), ("dcat:contactPoint", DATASET)),
    "dataset-without-distribution": (lambda d: _dataset(d).pop("dcat:distribution"), ("dcat:distribution", DATASET)),
    "dataset-without-description": (lambda d: _dataset(d).pop("dct:description"), ("dct:description", DATASET)),
    "dataset-without-title": (lambda d: _dataset(d).pop("dct:title"), ("dct:title", DATASET)),
    "dataset-without-access-rights": (lambda d: _dataset(d).pop("dct:accessRights"), ("dct:accessRights", DATASET)),
    "access-rights-not-a-rights-statement": (
        lambda d: _dataset(d)["dct:accessRights"].pop("@type"),
        ("dct:accessRights", DATASET),
    ),
    "conforms-to-not-a-standard": (
        lambda d: _service(d)["dct:conformsTo"].pop("@type"),
        ("dct:conformsTo", f"{STATION}/catalogue/services/analysis"),
    ),
    "hdab-agent-without-name": (lambda d: _dataset(d)["healthdcatap:hdab"].pop("foaf:name"), ("foaf:name", BODY)),
    "dataset-without-hdab": (lambda d: _dataset(d).pop("healthdcatap:hdab"), ("healthdcatap:hdab", DATASET)),
    "publisher-not-an-agent": (
        lambda d: d["dct:publisher"].update({"@type": "foaf:Organization"}),
        ("dct:publisher", f"{STATION}/catalogue"),
    ),
    "individuals-not-a-non-negative-integer": (
        lambda d: _dataset(d)["healthdcatap:numberOfUniqueIndividuals"].update({"@type": "xsd:string"}),
        ("healthdcatap:numberOfUniqueIndividuals", DATASET),
    ),
    "distribution-without-access-url": (
        lambda d: _dataset(d)["dcat:distribution"][0].pop("dcat:accessURL"),
        ("dcat:accessURL", f"{DATASET}/distributions/analysis"),
    ),
    "service-without-endpoint": (
        lambda d: _service(d).pop("dcat:endpointURL"),
        ("dcat:endpointURL", f"{STATION}/catalogue/services/analysis"),
    ),
}


def defective(defect: str) -> dict[str, Any]:
    document = copy.deepcopy(station_catalogue())
    DEFECTS[defect][0](document)
    return document


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_the_shapes_catch_each_defect(defect: str) -> None:
    found = violations(defective(defect))
    # The publisher is one agent for catalogue and dataset: untyped, both links complain.
    expected = DEFECTS[defect][1]
    assert expected in found, found
    assert {path for path, _ in found} == {expected[0]}, found


# The defects measured with the official shapes on the catalogue before it was fixed (the
# dataset's contact point and distribution are only recommended there: our shapes catch those).
MEASURED = [
    "catalogue-without-description",
    "access-rights-not-a-rights-statement",
    "conforms-to-not-a-standard",
    "hdab-agent-without-name",
    "publisher-not-an-agent",
]


@pytest.mark.parametrize("defect", MEASURED)
def test_the_official_shapes_catch_the_measured_defects_too(defect: str) -> None:
    assert DEFECTS[defect][1] in violations(defective(defect), needs_official_shapes())


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda d: d.pop("description"), "dct:description"),
        (lambda d: d["datasets"][0].pop("distribution"), "dcat:distribution"),
        (lambda d: d["datasets"][0].pop("contact_point"), "dcat:contactPoint"),
        (lambda d: d["datasets"][0]["access_rights"].pop("type"), "dct:accessRights"),
        (lambda d: d["publisher"]["kind"].pop("label"), "skos:prefLabel"),
        (lambda d: d["datasets"][0].update({"individuals": -1}), "healthdcatap:numberOfUniqueIndividuals"),
    ],
    ids=["description", "distribution", "contact-point", "access-rights", "agent-type-label", "individuals"],
)
def test_the_shapes_catch_defects_of_the_body_catalogue(change: Callable[[dict[str, Any]], Any], path: str) -> None:
    document = copy.deepcopy(body_catalogue())
    change(document)
    assert {found for found, _ in violations(document)} == {path}
