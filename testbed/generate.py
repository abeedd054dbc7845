"""The network generator: a synthetic network file of N Dutch care organisations.

`testbed generate network --organisations N --seed S` writes a network file that `testbed
validate` and `testbed.topology.load_network` accept: N care organisations spread over the
care categories in fixed proportions, each with its own trust node and data station, added to
the whole reference network (its three care organisations and its national services: the
network authority that issues the organisation credentials, the consent service, the health
data access body, the research institute and the WellData vault provider) under the ids and
URAs the reference network gives them, so scenarios written for it work unchanged. The same
seed and N give a byte-identical file.

Without `--vendors` every organisation runs its own nodes. `--vendors V` adds V software
vendors whose trust nodes serve the small practices (general practices, pharmacies, mental
health and midwifery practices) as subjects, as Nuts v6 nodes serve a vendor's customers: each
such practice names its vendor in `hosted_by` and keeps its own data station (a station serves
one organisation); hospitals, nursing homes and the other institutions keep their own trust
nodes. A few vendors hold most of the market (shares fall with rank, 1/k), every vendor has at
least one customer, and the choice is seeded apart from the rest of the file, so the file with
vendors differs from the one without only in who hosts whom.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

import yaml

DEFAULT_SEED = "generated"
MAX_PATIENTS = 100_000  # a station's own limit (protocols.settings)
MAX_ORGANISATIONS = 10_000  # the file stays well within the loader's limits (testbed.yamlsource)


@dataclass(frozen=True)
class Category:
    code: str  # care-provider category code, as the consent model matches it
    prefix: str  # start of the organisation id: short, so node names stay within 40 characters
    weight: int  # organisations of this category per 100 care organisations
    names: tuple[str, ...]  # name templates; {place} and {surname} are filled in from the seed
    small: bool = False  # a small practice: a vendor's trust node hosts it when there are vendors


# Codes: Z1 (general practice), Z3 (hospital) and Z4 (nursing home) are the codes the
# reference network and the consent tests use. They are this testbed's own: in the national
# list (RoleCodeNL care-provider types, OID 2.16.840.1.113883.2.4.15.1060) a GP practice is
# Z3, a hospital V4 and a nursing home R5. The other categories take their RoleCodeNL code.
# The consent service treats every code as an opaque label, so the mix is consistent here.
#
# Proportions are illustrative, not taken from a registry: they follow the order of
# magnitude of public counts for the Netherlands (about 5,000 GP practices, 2,000 community
# pharmacies, some 70 hospital organisations, many small mental health practices).
CATEGORIES: tuple[Category, ...] = (
    Category(
        "Z1",
        "gp",
        38,
        ("Huisartsenpraktijk {place}", "Huisartsenpraktijk {surname}", "Gezondheidscentrum {place}"),
        small=True,
    ),
    Category("J8", "pharm", 18, ("Apotheek {place}", "Apotheek {surname}", "Service Apotheek {place}"), small=True),
    Category(
        "G5",
        "mhc",
        12,
        ("GGZ {place}", "Praktijk voor Psychologie {surname}", "Psychiatrisch Centrum {place}"),
        small=True,
    ),
    Category("Z4", "nurse", 10, ("Zorggroep {place}", "Woonzorgcentrum {place}", "Verpleeghuis {place}")),
    Category("T2", "home", 10, ("Thuiszorg {place}", "Wijkverpleging {place}", "Buurtzorgteam {place}")),
    Category("G3", "midw", 6, ("Verloskundigenpraktijk {place}", "Verloskundigen {surname}"), small=True),
    Category("Z3", "hosp", 2, ("Ziekenhuis {place}", "Medisch Centrum {place}", "{place} Ziekenhuis")),
    Category("G6", "vg", 2, ("Stichting {place}", "Zorginstelling {place}")),
    Category("R8", "rehab", 1, ("Revalidatiecentrum {place}",)),
    Category("L1", "lab", 1, ("Laboratorium {place}", "Medisch Laboratorium {surname}")),
)

# Cities with a weight roughly following their population (illustrative), so large cities
# hold more organisations.
CITIES: tuple[tuple[str, int], ...] = (
    ("Amsterdam", 9), ("Rotterdam", 7), ("Den Haag", 6), ("Utrecht", 4), ("Eindhoven", 3), ("Groningen", 3),
    ("Tilburg", 3), ("Almere", 2), ("Breda", 2), ("Nijmegen", 2), ("Apeldoorn", 2), ("Arnhem", 2), ("Haarlem", 2),
    ("Enschede", 2), ("Amersfoort", 2), ("Zaanstad", 2), ("'s-Hertogenbosch", 2), ("Zwolle", 2), ("Leiden", 1),
    ("Maastricht", 1), ("Dordrecht", 1), ("Zoetermeer", 1), ("Ede", 1), ("Leeuwarden", 1), ("Deventer", 1),
    ("Delft", 1), ("Alkmaar", 1), ("Venlo", 1), ("Heerlen", 1), ("Helmond", 1), ("Hilversum", 1), ("Zeist", 1),
    ("Emmen", 1), ("Assen", 1), ("Middelburg", 1), ("Gouda", 1), ("Lelystad", 1), ("Roermond", 1),
)  # fmt: skip

PLACES = (
    "De Linde", "Het Plein", "De Brink", "Oosterpoort", "De Vaart", "Zonnehof", "Het Anker", "De Bron", "Waterland",
    "De Molen", "Het Baken", "De Horst", "Eikenhof", "De Wielen", "Kastanjehof", "De Es", "Het Veen", "De Bongerd",
    "Rivierenland", "De Kroon", "Het Lindeplein", "De Wetering", "Noorderlicht", "De Hoven", "Berkenrode",
)  # fmt: skip

SURNAMES = (
    "De Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "De Boer", "Mulder", "De Groot", "Bos", "Vos",
    "Peters", "Hendriks", "Van Leeuwen", "Dekker", "Brouwer", "De Wit", "Dijkstra", "Smits", "De Graaf",
    "Van der Meer", "Kok", "Jacobs", "Van Dijk", "Willems",
)  # fmt: skip

# The reference network (scenarios/networks/reference.yaml) whole, with its ids, names and
# URAs: a generated network is the reference network plus N care organisations, so scenarios
# written for the reference network (bgz-consent between gp and hospital, ...) run on it
# unchanged. The national services among them issue credentials, answer consent questions,
# grant permits and keep pods for the whole network.
REFERENCE_ORGANISATIONS: tuple[dict[str, Any], ...] = (
    {"id": "authority", "name": "Network Authority", "ura": "90000001",
     "nodes": [{"name": "authority-trust", "role": "trust"}]},
    {"id": "hospital", "name": "Ziekenhuis De Voorbeeldhaven", "ura": "90000002", "city": "Utrecht", "category": "Z3",
     "nodes": [{"name": "hospital-trust", "role": "trust"}, {"name": "hospital-station", "role": "station"}]},
    {"id": "gp", "name": "Huisartsenpraktijk Het Plein", "ura": "90000003", "city": "Amersfoort", "category": "Z1",
     "nodes": [{"name": "gp-trust", "role": "trust"}, {"name": "gp-station", "role": "station"}]},
    {"id": "mitz", "name": "Landelijke Toestemmingsvoorziening", "ura": "90000004",
     "nodes": [{"name": "consent", "role": "consent"}]},
    {"id": "nursing", "name": "Zorggroep De Linde", "ura": "90000006", "city": "Zeist", "category": "Z4",
     "nodes": [{"name": "nursing-trust", "role": "trust"}, {"name": "nursing-station", "role": "station"}]},
    {"id": "hdab", "name": "Health Data Access Body", "ura": "90000005", "city": "Den Haag",
     "nodes": [{"name": "hdab-trust", "role": "trust"}, {"name": "hdab", "role": "hdab"}]},
    {"id": "institute", "name": "Gezonde Regio Onderzoek en Preventie", "ura": "90000007", "city": "Utrecht",
     "nodes": [{"name": "institute-trust", "role": "trust"}]},
    {"id": "welldata", "name": "WellData Persoonlijke Kluis", "ura": "90000008", "city": "Utrecht",
     "nodes": [{"name": "welldata-trust", "role": "trust"}, {"name": "welldata-vault", "role": "vault"}]},
)  # fmt: skip
CREDENTIAL_ISSUER = "authority"

# URA numbers (the UZI register's subscriber number for a care organisation) are 8 digits,
# leading zeros included. No check digit is published for them (unlike the BSN's eleven
# test), and real clients (e.g. nuts-knooppunt) check no more than the digits, so any 8-digit
# number is valid; the generator only keeps them unique and clear of the national services'.
URA_SPACE = 100_000_000
RESERVED_URAS = frozenset(service["ura"] for service in REFERENCE_ORGANISATIONS)

NODE_SUFFIXES = ("trust", "station")
CITY_SLUG_LENGTH = 14

# Vendor names: made up from parts, not meant to name any real supplier; one name each.
VENDOR_STEMS = ("Zorg", "Praxis", "Cura", "Vita", "Helix", "Noorder", "Delta", "Polder", "Duin", "Kompas")
VENDOR_ENDINGS = ("Systemen", "Software", "Informatica", "ICT", "Data", "Connect")
MAX_VENDORS = len(VENDOR_STEMS) * len(VENDOR_ENDINGS)


def generate_network(
    *, organisations: int, seed: str = DEFAULT_SEED, vendors: int = 0, patients: int | None = None
) -> str:
    """The network file's text; the same arguments always give the same bytes."""
    document = network_document(organisations=organisations, seed=seed, vendors=vendors, patients=patients)
    return render(document, organisations=organisations, vendors=vendors)


def network_document(
    *, organisations: int, seed: str = DEFAULT_SEED, vendors: int = 0, patients: int | None = None
) -> dict[str, Any]:
    """The network as plain data, in the network file's shape (testbed.topology.Network);
    `vendors`: how many vendors host the small practices (0: everyone runs their own nodes);
    `patients`: synthetic patients per care organisation's data station (None: the station's
    default). A thousand stations of a thousand patients each take minutes to generate."""
    if not 1 <= organisations <= MAX_ORGANISATIONS:
        raise ValueError(f"organisations must be between 1 and {MAX_ORGANISATIONS}, not {organisations}")
    if not 0 <= vendors <= MAX_VENDORS:
        raise ValueError(f"vendors must be between 0 and {MAX_VENDORS}, not {vendors}")
    # Seeded from a text: Python hashes it with SHA-512, the same on every run and platform.
    rng = random.Random(f"testbed-network:{seed}:{organisations}")
    uras = _uras(rng, organisations)
    width = max(4, len(str(organisations)))
    categories = _categories(organisations)
    care = [
        _organisation(rng, category, index=i + 1, width=width, ura=uras[i]) for i, category in enumerate(categories)
    ]
    if patients is not None:
        if not 1 <= patients <= MAX_PATIENTS:
            raise ValueError(f"patients must be between 1 and {MAX_PATIENTS}, not {patients}")
        for org in care:
            for node in org["nodes"]:
                if node["role"] == "station":
                    node["settings"] = {"patients": patients}
    document: dict[str, Any] = {
        "name": f"generated-{organisations}" + (f"-v{vendors}" if vendors else ""),
        "seed": seed,
        "credential_issuer": CREDENTIAL_ISSUER,
    }
    if vendors:
        small = [org for org, category in zip(care, categories, strict=True) if category.small]
        document["vendors"] = _host_small_practices(
            random.Random(f"testbed-vendors:{seed}:{organisations}"), small, vendors
        )
    document["organisations"] = [dict(service) for service in REFERENCE_ORGANISATIONS] + care
    return document


def category_counts(organisations: int) -> dict[str, int]:
    """How many organisations of each category code N gets: the proportions rounded by the
    largest remainder, so the counts add up to N exactly."""
    total = sum(c.weight for c in CATEGORIES)
    exact = [(c.code, organisations * c.weight / total) for c in CATEGORIES]
    counts = {code: int(share) for code, share in exact}
    left = organisations - sum(counts.values())
    by_remainder = sorted(exact, key=lambda item: (-(item[1] - int(item[1])), item[0]))
    for code, _ in by_remainder[:left]:
        counts[code] += 1
    return counts


def _categories(organisations: int) -> list[Category]:
    """One category per organisation, grouped by category in the order of CATEGORIES."""
    counts = category_counts(organisations)
    return [category for category in CATEGORIES for _ in range(counts[category.code])]


def _uras(rng: random.Random, organisations: int) -> list[str]:
    """Unique 8-digit URA numbers, none of them a national service's."""
    drawn = rng.sample(range(URA_SPACE), organisations + len(RESERVED_URAS))
    return [ura for ura in (f"{n:08d}" for n in drawn) if ura not in RESERVED_URAS][:organisations]


def _organisation(rng: random.Random, category: Category, *, index: int, width: int, ura: str) -> dict[str, Any]:
    city = rng.choices([name for name, _ in CITIES], weights=[w for _, w in CITIES])[0]
    template = rng.choice(category.names)
    name = template.format(place=rng.choice(PLACES), surname=rng.choice(SURNAMES))
    # The index makes the id unique; the city only makes it readable.
    org_id = f"{category.prefix}-{index:0{width}d}-{slug(city)}"
    return {
        "id": org_id,
        "name": f"{name} {city}" if "{place}" in template else name,
        "ura": ura,
        "city": city,
        "category": category.code,
        "nodes": [{"name": f"{org_id}-{suffix}", "role": suffix} for suffix in NODE_SUFFIXES],
    }


def _host_small_practices(rng: random.Random, small: list[dict[str, Any]], vendors: int) -> list[dict[str, Any]]:
    """`vendors` vendors, each a trust node; every practice in `small` is hosted by one of
    them (its own trust node goes), shares falling with the vendor's rank."""
    if vendors > len(small):
        kinds = ", ".join(c.prefix for c in CATEGORIES if c.small)
        raise ValueError(
            f"{vendors} vendors need at least as many small practices ({kinds}) to host; there are {len(small)}"
        )
    width = max(2, len(str(vendors)))
    names = rng.sample([f"{stem}{ending}" for stem in VENDOR_STEMS for ending in VENDOR_ENDINGS], vendors)
    hosts = [
        {
            "id": f"vendor-{k:0{width}d}",
            "name": f"{names[k - 1]} B.V.",
            "nodes": [{"name": f"vendor-{k:0{width}d}-trust", "role": "trust"}],
        }
        for k in range(1, vendors + 1)
    ]
    order = rng.sample(range(len(small)), len(small))
    # The first `vendors` practices (in seeded order) give each vendor a customer; the rest
    # go by market share.
    chosen = list(range(vendors)) + rng.choices(
        range(vendors), weights=[1 / k for k in range(1, vendors + 1)], k=len(small) - vendors
    )
    for index, vendor in zip(order, chosen, strict=True):
        practice = small[index]
        nodes = [node for node in practice.pop("nodes") if node["role"] != "trust"]
        practice.update(hosted_by=hosts[vendor]["id"], nodes=nodes)  # nodes last, as the network file orders them
    return hosts


def slug(text: str) -> str:
    """Lower-case letters, digits and single hyphens, at most CITY_SLUG_LENGTH long."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return cleaned[:CITY_SLUG_LENGTH].rstrip("-")


def render(document: dict[str, Any], *, organisations: int, vendors: int = 0) -> str:
    """YAML with a short header; keys in the network file's order, never sorted."""
    header = (
        f"# A generated network: {organisations} care organisations and the national services of the\n"
        "# reference network (testbed generate network; its seed is the `seed:` below).\n"
    )
    if vendors:
        header += f"# {vendors} vendors' trust nodes host the small practices as subjects (`hosted_by`).\n"
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120, default_flow_style=False)
    return header + body


class _Dumper(yaml.SafeDumper):
    """Quotes every all-digit text: a URA such as 08930683 is not an octal number to YAML 1.1,
    but a YAML 1.2 reader takes it for an integer and drops the leading zero."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "'" if value.isdigit() else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)
