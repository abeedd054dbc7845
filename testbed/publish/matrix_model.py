"""What `testbed matrix` writes to matrix.json: implementation x requirement and pair x scenario.

Cell states: `passed`, `failed`, `error` (the harness or environment failed: nothing is said
about the implementation), `skipped` (its checks did not apply or could not run), `untested`
(no check of the run tested it), and `xfail` (failed, as the registry declared it would). A
requirement declared expected to fail keeps its reason in the cell whatever its state, so an
expected failure that now passes shows too.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from testbed.report.model import Level, Verdict

MATRIX_SCHEMA_VERSION = "1.0"


class Cell(BaseModel):
    state: str
    xfail: str | None = None  # why the registry expects it to fail, where it says so
    checks: list[str] = Field(default_factory=list)  # "<scenario>/<check id>" in the run's reports


class RequirementRow(BaseModel):
    id: str
    role: str
    level: Level
    statement: str


class ImplementationRow(BaseModel):
    """One implementation of the registry and its run of its role's profile."""

    name: str
    vendor: str
    product: str
    version: str
    role: str
    node: str  # the node of the profile's network it stood in for
    reached_by: str  # "url <url>" or "image <image>"
    reported: str | None = None  # product and version as the implementation itself reported them
    run: str  # its run's report folder, relative to the matrix's folder
    verdict: Verdict
    exit_code: int
    error: str | None = None
    suite_version: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    error_checks: int = 0
    xfailed: int = 0  # failed checks the registry expected to fail (counted in `failed`)
    xfail: dict[str, str] = Field(default_factory=dict)  # as declared: requirement id -> reason
    cells: dict[str, Cell] = Field(default_factory=dict)  # requirement id -> cell, the role's requirements


class PairCell(BaseModel):
    """One use case run with implementation `a` in one place and `b` in the other."""

    a: str
    b: str
    a_node: str = ""  # the node each stood in for
    b_node: str = ""
    roles: list[str]  # a's role, b's role
    how: str  # how the two roles talk to each other
    scenario: str
    state: str  # as a requirement cell, or "not run" (the pair cannot be placed in it: see note)
    run: str | None = None
    suite_version: str = ""
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    error: int = 0
    xfailed: int = 0
    note: str = ""


class Matrix(BaseModel):
    schema_version: str = MATRIX_SCHEMA_VERSION
    kind: str = "interop-matrix"
    title: str
    registry: str  # the registry file as given
    registry_sha256: str
    started: datetime
    finished: datetime | None = None
    runtime: str
    exit_code: int = 0
    interrupted: bool = False  # the command was stopped: the matrix holds the runs finished before
    requirements: list[RequirementRow] = Field(default_factory=list)  # of the registered roles
    implementations: list[ImplementationRow] = Field(default_factory=list)
    pairs: list[PairCell] = Field(default_factory=list)

    def of_role(self, role: str) -> list[ImplementationRow]:
        return [row for row in self.implementations if row.role == role]
