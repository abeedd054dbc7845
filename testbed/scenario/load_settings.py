"""The `load:` block of a scenario: how many simulated users, how they arrive, for how long,
the faults done to the network meanwhile, and the thresholds the run must hold. Command-line
options override it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import CoreSchema

from testbed.scenario.durations import Duration
from testbed.scenario.thresholds import FAULT_SCOPES, Threshold


class _FaultModel:
    """Stands for the scenario language's `Fault` (testbed.scenario.models) in the fault
    schedule. That module imports this one, so `Fault` is looked up only when pydantic builds
    the schedule's schema: by then it is defined, whichever module was imported first."""

    @classmethod
    def __get_pydantic_core_schema__(cls, _source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        from testbed.scenario.models import Fault

        return handler(Fault)


if TYPE_CHECKING:
    from testbed.scenario.models import Fault
else:
    Fault = _FaultModel


class Stage(BaseModel):
    """Ramp to `users` over `duration` seconds (a stage of a load shape, as k6 and Locust's
    LoadTestShape describe one)."""

    model_config = ConfigDict(extra="forbid")

    duration: Duration = Field(gt=0, le=24 * 3600, description="Seconds this stage lasts (30, 30s, 5m, 1h30m)")
    users: int = Field(ge=0, le=100_000, description="Users running at the end of the stage")


class ScheduledFault(BaseModel):
    """One entry of a load run's fault schedule: `fault` is done `at` seconds after the load
    began and, with `for`, undone that many seconds later (a stopped or killed node started,
    a paused one resumed, a link healed); without `for` it holds to the end of the run."""

    # Built on first use, when the scenario language's Fault exists (see _FaultModel).
    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)

    at: Duration = Field(ge=0, le=24 * 3600, description="When, in seconds after the load began (10, 10s, 1m30s)")
    for_: Annotated[Duration, Field(gt=0, le=24 * 3600)] | None = Field(
        default=None,
        alias="for",
        description="How long the fault holds before it is undone (8, 8s); without it, to the end of the run",
    )
    fault: Fault = Field(description="What is done, as a fault step says it: a node or a link, and an operation")

    @field_serializer("fault")
    def _as_written(self, fault: Fault) -> dict[str, Any]:
        # What was given only: read back, a fault given in full would name options its kind refuses.
        written: dict[str, Any] = fault.model_dump(exclude_unset=True)
        return written


class LoadSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    users: int = Field(default=10, ge=1, le=100_000, description="Concurrent simulated users")
    spawn_rate: float = Field(default=10, gt=0, description="Users started per second")
    duration: Duration = Field(
        default=30, gt=0, le=24 * 3600, description="Seconds the load lasts (30, 30s, 5m, 1h30m)"
    )
    stages: list[Stage] = Field(default_factory=list, description="A load shape; replaces users and duration")
    thresholds: dict[str, list[str]] = Field(
        default_factory=dict,
        description="'overall', a step id, or (with a fault schedule) 'inside_faults' or 'outside_faults' -> "
        "k6-style thresholds: 'p(95)<200', 'avg<100', 'rate<0.01' or 'rate<1%', 'rps>50'; inside and outside "
        "faults also 'wrong==0' (answers that passed for data but failed their checks) and 'refused>0' (clean "
        "refusals)",
    )
    think_time: float = Field(default=0, ge=0, le=60, description="Seconds a user waits between two flows")
    spread: list[str] = Field(
        default_factory=list,
        max_length=8,
        description="Actors each flow draws anew from every care organisation able to play them "
        "(e.g. [requester, holder]), so the load spreads over the whole network",
    )
    faults: list[ScheduledFault] = Field(
        default_factory=list,
        description="Faults done to the network while the load runs, each at its time and, with 'for', undone "
        "after it (the process and docker runtimes)",
    )

    @field_validator("thresholds")
    @classmethod
    def _parseable(cls, thresholds: dict[str, list[str]]) -> dict[str, list[str]]:
        for scope, expressions in thresholds.items():
            for expression in expressions:
                Threshold.parse(expression, scope=scope)  # a ValueError names what is wrong
        return thresholds

    @model_validator(mode="after")
    def _stages_decide(self) -> LoadSettings:
        if self.stages:
            self.duration = sum(stage.duration for stage in self.stages)
            self.users = max(stage.users for stage in self.stages) or 1
        return self

    @model_validator(mode="after")
    def _fault_scopes_need_faults(self) -> LoadSettings:
        if not self.faults:
            scopes = [scope for scope in self.thresholds if scope in FAULT_SCOPES]
            if scopes:
                raise ValueError(
                    f"thresholds under {' and '.join(scopes)} judge the run inside or outside its fault windows: "
                    "give a fault schedule ('faults:' here, or --fault)"
                )
        return self

    def parsed_thresholds(self) -> list[tuple[str, Threshold]]:
        return [
            (scope, Threshold.parse(e, scope=scope))
            for scope, expressions in self.thresholds.items()
            for e in expressions
        ]
