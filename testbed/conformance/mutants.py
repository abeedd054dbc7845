"""The known faulty variants of each role's reference node, and the mutation scores the
self-test recorded for the roles' profiles (testbed/conformance/variants/)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from testbed.errors import ConfigError
from testbed.report.model import MutationScore
from testbed.yamlsource import read_yaml, validate

VARIANTS_DIR = Path(str(resources.files("testbed.conformance") / "variants"))
SCORES_FILE = VARIANTS_DIR / "scores.json"


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fault: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$", description="The reference node's `fault` setting")
    breaks: list[str] = Field(min_length=1, description="Requirement ids the defect violates")
    description: str = Field(min_length=10, description="What the faulty node does wrong")


class VariantCatalogue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str
    variants: list[Variant] = Field(default_factory=list)


def load_variants(role: str) -> list[Variant]:
    path = VARIANTS_DIR / f"{role}.yaml"
    if not path.exists():
        raise ConfigError(f"no faulty variants are known for role {role!r} ({path} is missing)")
    catalogue = validate(read_yaml(path), VariantCatalogue, "variant catalogue")
    if catalogue.role != role:
        raise ConfigError(f"{path}: lists variants of role {catalogue.role!r}, not {role!r}")
    names = [v.fault for v in catalogue.variants]
    doubles = sorted({n for n in names if names.count(n) > 1})
    if doubles:
        raise ConfigError(f"{path}: variant(s) listed twice: {', '.join(doubles)}")
    return catalogue.variants


def read_scores(path: Path = SCORES_FILE) -> dict[str, Any]:
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return recorded if isinstance(recorded, dict) else {}


def write_score(role: str, score: dict[str, Any], path: Path = SCORES_FILE) -> None:
    recorded = read_scores(path)
    recorded[role] = score
    path.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def recorded_score(role: str, path: Path = SCORES_FILE) -> MutationScore | None:
    """The last recorded score of a role's profile, if it was measured on today's variants
    (a score of an older list of variants says nothing about the current one)."""
    score = read_scores(path).get(role)
    if not isinstance(score, dict):
        return None
    try:
        current = sorted(v.fault for v in load_variants(role))
    except ConfigError:
        return None
    if score.get("variants") != current:
        return None
    return MutationScore(role=role, caught=score["caught"], total=score["total"], measured=score["measured"])
