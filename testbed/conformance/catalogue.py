"""The requirement catalogue: one YAML file per role, each requirement with an id, a level,
a statement in our own words and the source (specification and section) it comes from."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from testbed.errors import ConfigError
from testbed.report.model import Level
from testbed.yamlsource import read_yaml, validate


class Requirement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Z]+(-[A-Z0-9]+)+$")
    level: Level
    statement: str = Field(min_length=10)
    source: str = Field(min_length=3)


class RoleCatalogue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str
    requirements: list[Requirement] = Field(min_length=1)


class Catalogue:
    def __init__(self, by_role: dict[str, list[Requirement]]):
        self.by_role = by_role
        self._index = {r.id: (role, r) for role, reqs in by_role.items() for r in reqs}

    @classmethod
    def load(cls, directory: Path | None = None) -> Catalogue:
        folder = directory or Path(str(resources.files("testbed.conformance") / "requirements"))
        by_role: dict[str, list[Requirement]] = {}
        seen: dict[str, Path] = {}
        for path in sorted(folder.glob("*.yaml")):
            catalogue = validate(read_yaml(path), RoleCatalogue, "requirement catalogue")
            for requirement in catalogue.requirements:
                if requirement.id in seen:
                    raise ConfigError(f"{path}: requirement {requirement.id} is defined in {seen[requirement.id]} too")
                seen[requirement.id] = path
            by_role.setdefault(catalogue.role, []).extend(catalogue.requirements)
        return cls(by_role)

    def __contains__(self, requirement_id: object) -> bool:
        return requirement_id in self._index

    def get(self, requirement_id: str) -> tuple[str, Requirement]:
        return self._index[requirement_id]

    def all(self) -> list[tuple[str, Requirement]]:
        return list(self._index.values())
