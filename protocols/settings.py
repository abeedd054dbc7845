"""The settings a reference node of each role takes (a node's `settings` in the network file):
one typed model per role, unknown keys refused, ranges checked. The harness validates them with
the network file before anything starts; the node reads its own with the same model, so that a
node started by hand refuses the same mistakes.

`fault` is every role's: the name of a known defect to switch on (the mutation self-test). Its
names are the node's own business (nodes/<role>/faults.py), so the node checks those."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"


class RoleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fault: str | None = Field(default=None, pattern=NAME, description="A known defect to switch on (self-test only)")


class TrustSettings(RoleSettings):
    policy: dict[str, dict[str, Any]] | None = Field(
        default=None, description="Scope -> presentation definitions (default: the testbed's policy)"
    )
    token_lifetime_seconds: int = Field(default=900, ge=1, le=86_400, description="Access token lifetime")
    status_list_max_age_seconds: int = Field(
        default=0, ge=0, le=86_400, description="How long a verifier may reuse an issuer's status list; 0: never"
    )
    discovery_services: list[str] | None = Field(
        default=None, min_length=1, description="Discovery services this node serves (default: testbed-care)"
    )


class ConsentSettings(RoleSettings):
    accept_unsigned_queries: bool = Field(
        default=False, description="Answer closed questions without an XML Signature (mutual TLS only)"
    )


class StationSettings(RoleSettings):
    patients: int = Field(default=1000, ge=1, le=100_000, description="Synthetic patients generated at start")
    scopes: list[str] | None = Field(default=None, min_length=1, description="Scopes that may read BgZ data")
    min_cell_size: int = Field(default=10, ge=1, le=1_000, description="Smallest count an analysis may release")
    dataset: str = Field(default="care-records", pattern=NAME, description="The dataset's name in the catalogue")
    consent_timeout: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="Seconds to wait for the consent service's decision; without one in time a read is refused",
    )


class HdabSettings(RoleSettings):
    min_cell_size: int = Field(default=10, ge=1, le=1_000, description="Smallest count a combined result may hold")


class VaultSettings(RoleSettings):
    pods: int = Field(default=100, ge=1, le=100_000, description="Citizens' pods generated at start")


SETTINGS_BY_ROLE: dict[str, type[RoleSettings]] = {
    "trust": TrustSettings,
    "consent": ConsentSettings,
    "station": StationSettings,
    "hdab": HdabSettings,
    "vault": VaultSettings,
}


def settings_for(role: str, raw: dict[str, Any]) -> RoleSettings:
    """A node's settings as its role's model; raises pydantic's ValidationError when they do not fit."""
    return SETTINGS_BY_ROLE[role].model_validate(raw)
