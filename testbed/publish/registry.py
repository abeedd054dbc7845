"""The implementations registry: the implementations under test, kept as code.

An `implementations.yaml` names, per implementation, who makes it (vendor, product, version),
the role it plays, how the harness reaches it (`implementation:` as in a network file: the URLs
of something running, with the CA its certificates come from, or a container image), and the
requirements it is expected to fail, each with its reason. A MUST requirement of the role can
never be expected to fail: a registry that says so is refused, at the line that says it.

    implementations:
      - name: acme-consent           # unique in the registry; names the implementation in the matrix
        vendor: Acme Health
        product: Acme Consent Service
        version: "2.4.1"
        role: consent
        implementation:
          url: https://consent.acme.example:8443
          internal_url: https://consent.acme.example:8081
          ca_bundle: acme-ca.pem     # relative to this file
        xfail:
          CONSENT-XACML-04: purpose of use is not read yet (planned for 2.5)

Expected failures change no verdict (only SHOULD and MAY requirements can be named) and are
never hidden: a run of the matrix records them in its results, and every report shows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from testbed.conformance.catalogue import Catalogue
from testbed.errors import ConfigError
from testbed.report.model import Level, RegisteredImplementation, RunResults
from testbed.topology import NAME_PATTERN, ImageImplementation, Role, UrlImplementation, kind_of
from testbed.yamlsource import YamlDocument, read_yaml, validate

Reachable = UrlImplementation | ImageImplementation
Reason = Annotated[str, Field(min_length=3, description="Why the implementation is expected to fail it")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Entry(Strict):
    """One implementation under test."""

    name: str = Field(pattern=NAME_PATTERN, description="Unique in the registry")
    vendor: str = Field(min_length=1)
    product: str = Field(min_length=1)
    version: str = Field(min_length=1, description='As a text: quote a number ("2.4")')
    role: Role
    implementation: Reachable = Field(
        description="How the harness reaches it: {url, internal_url, ca_bundle} of something running, or {image}"
    )
    node: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="The node of the profile's network it stands in for; default: the network's first node of its role",
    )
    companions: dict[str, Reachable] = Field(
        default_factory=dict,
        description="Other nodes of the network it comes with, by node name (e.g. the trust node a station "
        "reached by URL was configured to use)",
    )
    xfail: dict[str, Reason] = Field(
        default_factory=dict, description="Requirement id -> why it is expected to fail (never a MUST of the role)"
    )

    @field_validator("implementation", mode="before")
    @classmethod
    def _says_how_to_reach_it(cls, value: object) -> object:
        """A clearer message than two failed alternatives: say what either form needs."""
        if isinstance(value, dict) and "url" not in value and "image" not in value:
            raise ValueError(
                "say how to reach it: `url` (with `internal_url` and `ca_bundle` where needed) of something "
                "running, or `image` (docker runtime)"
            )
        return value

    @property
    def reached_by(self) -> str:
        if isinstance(self.implementation, UrlImplementation):
            return f"url {self.implementation.url}"
        return f"image {self.implementation.image}"

    def registered(self, node: str) -> RegisteredImplementation:
        """How a run's results name this implementation, standing in for `node`."""
        return RegisteredImplementation(
            name=self.name,
            vendor=self.vendor,
            product=self.product,
            version=self.version,
            role=self.role.value,
            node=node,
            reached_by=self.reached_by,
            xfail=dict(self.xfail),
        )


class Registry(Strict):
    title: str = Field(default="Interoperability matrix", min_length=1)
    implementations: list[Entry] = Field(min_length=1)

    def entry(self, name: str) -> Entry:
        return next(e for e in self.implementations if e.name == name)


@dataclass
class LoadedRegistry:
    path: Path
    registry: Registry
    document: YamlDocument

    def where(self, index: int, *keys: str) -> str:
        """file:line of an implementation's entry (or of a key in it)."""
        return self.document.where(("implementations", index, *keys))

    def index(self, name: str) -> int:
        return next(i for i, e in enumerate(self.registry.implementations) if e.name == name)


def load_registry(path: Path, catalogue: Catalogue | None = None) -> LoadedRegistry:
    """The registry, validated against its schema, the requirement catalogue and itself;
    every problem found is reported at once, each at its line."""
    document = read_yaml(path)
    if not isinstance(document.data, dict):
        raise ConfigError(
            f"{path}:1: not an implementations registry: a mapping with 'implementations' was expected, "
            f"not {kind_of(document.data)}"
        )
    loaded = LoadedRegistry(path, validate(document, Registry, "implementations registry"), document)
    problems = _duplicate_names(loaded) + _xfail_problems(loaded, catalogue or Catalogue.load())
    problems += _missing_ca_bundles(loaded)
    if problems:
        raise ConfigError("\n".join([f"{path}: the implementations registry is inconsistent:", *problems]))
    return loaded


def _duplicate_names(loaded: LoadedRegistry) -> list[str]:
    seen: set[str] = set()
    problems = []
    for i, entry in enumerate(loaded.registry.implementations):
        if entry.name in seen:
            problems.append(f"  {loaded.where(i, 'name')}: duplicate implementation name {entry.name!r}")
        seen.add(entry.name)
    return problems


def _xfail_problems(loaded: LoadedRegistry, catalogue: Catalogue) -> list[str]:
    """An expected failure names a SHOULD or MAY requirement of the implementation's own role."""
    problems = []
    for i, entry in enumerate(loaded.registry.implementations):
        for requirement in entry.xfail:
            where = loaded.where(i, "xfail", requirement)
            if requirement not in catalogue:
                problems.append(f"  {where}: xfail {requirement}: not a requirement of the catalogue")
                continue
            role, found = catalogue.get(requirement)
            if role != entry.role.value:
                problems.append(
                    f"  {where}: xfail {requirement}: a requirement of the {role} role, not of {entry.role.value}"
                )
            elif found.level is Level.MUST:
                problems.append(
                    f"  {where}: xfail {requirement}: a MUST requirement of the {role} role can never be declared "
                    "expected to fail"
                )
    return problems


def _missing_ca_bundles(loaded: LoadedRegistry) -> list[str]:
    """A `ca_bundle` is relative to the registry file; it is made absolute here, so that the
    network files the matrix writes elsewhere find it."""
    problems = []
    for i, entry in enumerate(loaded.registry.implementations):
        reached = [("implementation",), *(("companions", name) for name in entry.companions)]
        for keys, implementation in zip(reached, [entry.implementation, *entry.companions.values()], strict=True):
            if not isinstance(implementation, UrlImplementation) or not implementation.ca_bundle:
                continue
            bundle = (loaded.path.parent / implementation.ca_bundle).resolve()
            if not bundle.is_file():
                where = loaded.where(i, *keys, "ca_bundle")
                problems.append(f"  {where}: ca_bundle {implementation.ca_bundle} does not exist (looked at {bundle})")
            implementation.ca_bundle = str(bundle)
    return problems


def apply_xfail(results: RunResults) -> None:
    """Mark what the run's registered implementations are expected to fail: the requirements
    of their role they named, and the checks that verify those. Outcomes stay as they were;
    the summary counts the failed checks that were all expected."""
    by_requirement: dict[str, list[RegisteredImplementation]] = {}
    for registered in results.registered:
        for requirement in registered.xfail:
            by_requirement.setdefault(requirement, []).append(registered)
    for coverage in results.requirements:
        declared = by_requirement.get(coverage.id, [])
        coverage.xfail = _reason(declared, coverage.id) if declared else None
    for _, check in results.all_checks():
        check.xfail = {
            requirement: _reason(_nearest(by_requirement[requirement], check.evidence.node), requirement)
            for requirement in check.requirements
            if requirement in by_requirement
        }
    results.summary.xfailed = sum(check.expected_failure for _, check in results.all_checks())


def _nearest(declared: list[RegisteredImplementation], node: str | None) -> list[RegisteredImplementation]:
    """The implementation a check talked to, where it is one of those that declared it."""
    return [r for r in declared if r.node == node] or declared


def _reason(declared: list[RegisteredImplementation], requirement: str) -> str:
    if len(declared) == 1:
        return declared[0].xfail[requirement]
    return "; ".join(f"{r.name}: {r.xfail[requirement]}" for r in declared)
