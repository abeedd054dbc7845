"""The `load:` block of a scenario: how many simulated users, how they arrive, for how long,
and the thresholds the run must hold. Command-line options override it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from testbed.scenario.durations import Duration
from testbed.scenario.thresholds import Threshold


class Stage(BaseModel):
    """Ramp to `users` over `duration` seconds (a stage of a load shape, as k6 and Locust's
    LoadTestShape describe one)."""

    model_config = ConfigDict(extra="forbid")

    duration: Duration = Field(gt=0, le=24 * 3600, description="Seconds this stage lasts (30, 30s, 5m, 1h30m)")
    users: int = Field(ge=0, le=100_000, description="Users running at the end of the stage")


class LoadSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    users: int = Field(default=10, ge=1, le=100_000, description="Concurrent simulated users")
    spawn_rate: float = Field(default=10, gt=0, description="Users started per second")
    duration: Duration = Field(
        default=30, gt=0, le=24 * 3600, description="Seconds the load lasts (30, 30s, 5m, 1h30m)"
    )
    stages: list[Stage] = Field(default_factory=list, description="A load shape; replaces users and duration")
    thresholds: dict[str, list[str]] = Field(
        default_factory=dict,
        description="'overall' or a step id -> k6-style thresholds: 'p(95)<200', 'avg<100', 'rate<0.01', 'rps>50'",
    )
    think_time: float = Field(default=0, ge=0, le=60, description="Seconds a user waits between two flows")
    spread: list[str] = Field(
        default_factory=list,
        max_length=8,
        description="Actors each flow draws anew from every care organisation able to play them "
        "(e.g. [requester, holder]), so the load spreads over the whole network",
    )

    @field_validator("thresholds")
    @classmethod
    def _parseable(cls, thresholds: dict[str, list[str]]) -> dict[str, list[str]]:
        for expressions in thresholds.values():
            for expression in expressions:
                Threshold.parse(expression)  # a ValueError names what is wrong
        return thresholds

    @model_validator(mode="after")
    def _stages_decide(self) -> LoadSettings:
        if self.stages:
            self.duration = sum(stage.duration for stage in self.stages)
            self.users = max(stage.users for stage in self.stages) or 1
        return self

    def parsed_thresholds(self) -> list[tuple[str, Threshold]]:
        return [(scope, Threshold.parse(e)) for scope, expressions in self.thresholds.items() for e in expressions]
