"""The requirement catalogue: one YAML file per role, each requirement with an id, a level,
a statement in our own words and the source (specification and section) it comes from."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from testbed.errors import ConfigError
from testbed.report.model import Level
from testbed.yamlsource import read_yaml, validate


class Reading(BaseModel):
    """One way to read a rule where the written specification and the real implementation
    (or two specifications) disagree. Each is stated in our own words, with its source."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$", description="Short name, e.g. 'specification' or 'nuts-node'")
    says: str = Field(min_length=10)
    source: str = Field(min_length=3)


class Requirement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Z]+(-[A-Z0-9]+)+$")
    level: Level
    statement: str = Field(min_length=10)
    source: str = Field(min_length=3)
    readings: list[Reading] = Field(
        default_factory=list, description="Where sources disagree: every reading, the one checks follow first"
    )
    follows: str | None = Field(default=None, description="The reading this suite's checks follow (a reading id)")

    @model_validator(mode="after")
    def _readings_name_the_one_followed(self) -> Requirement:
        ids = [reading.id for reading in self.readings]
        if self.readings and len(self.readings) < 2:
            raise ValueError("a disagreement has at least two readings")
        if len(set(ids)) != len(ids):
            raise ValueError("reading ids repeat")
        if (self.follows is None) != (not self.readings):
            raise ValueError("'follows' names the reading the checks follow, and goes with 'readings'")
        if self.follows is not None and self.follows not in ids:
            raise ValueError(f"'follows: {self.follows}' is not one of the readings ({', '.join(ids)})")
        return self


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

    def reading_ids(self, requirement_id: str) -> list[str]:
        return [reading.id for reading in self._index[requirement_id][1].readings]

    def get(self, requirement_id: str) -> tuple[str, Requirement]:
        return self._index[requirement_id]

    def all(self) -> list[tuple[str, Requirement]]:
        return list(self._index.values())
