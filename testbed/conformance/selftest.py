"""The mutation self-test: does a role's profile catch implementations that are wrong?

For every known faulty variant of a role's reference node (testbed/conformance/variants/), the
role's profile runs against a fresh network whose nodes of that role have the defect switched
on (the reference node's `fault` setting), and must not conform. The identity variant, the
same network without a defect, must conform: otherwise the profile proves nothing either way."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field

from testbed.conformance.mutants import Variant, load_variants, write_score
from testbed.conformance.runner import ConformanceOptions, run_conformance
from testbed.errors import ConfigError, ExitCode
from testbed.report.model import Outcome, RunResults
from testbed.report.writers import write_all
from testbed.runtime.state import RunFolder
from testbed.scenario.loader import load_scenario

IDENTITY = "identity"


class VariantOutcome(BaseModel):
    role: str
    variant: str  # the fault's name, or "identity"
    description: str
    breaks: list[str] = Field(default_factory=list)
    exit_code: int
    caught: bool  # a faulty variant that failed a check (a harness error is not a catch); identity: it conformed
    caught_by: list[str] = Field(default_factory=list)  # "<scenario>/<check>" that failed
    error: str | None = None  # the run's harness error, if it had one
    report: str  # the variant run's report folder
    duration_s: float


class RoleScore(BaseModel):
    role: str
    caught: int
    total: int
    identity_conforms: bool

    @property
    def complete(self) -> bool:
        return self.identity_conforms and self.caught == self.total


class SelftestResults(BaseModel):
    kind: str = "selftest"
    run_id: str
    started: datetime
    finished: datetime | None = None
    runtime: str
    scores: list[RoleScore] = Field(default_factory=list)
    variants: list[VariantOutcome] = Field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if any(v.variant == IDENTITY and v.error for v in self.variants):
            return ExitCode.HARNESS_ERROR
        return ExitCode.OK if all(s.complete for s in self.scores) else ExitCode.FAILED


@dataclass(kw_only=True)
class SelftestOptions:
    roles: list[str]
    only: list[str]  # fault names to run (empty: every variant of the chosen roles)
    runtime: str
    state: Path
    report_dir: Path  # this self-test's folder: a sub-folder per variant run
    profiles: Path  # scenarios/profiles
    on_progress: Callable[[str], None] = lambda _: None
    on_variant: Callable[[VariantOutcome], None] = lambda _: None


def run_selftest(options: SelftestOptions) -> SelftestResults:
    results = SelftestResults(run_id=options.report_dir.name, started=datetime.now(UTC), runtime=options.runtime)
    plan = _plan(options)
    for role, variants in plan.items():
        profile = options.profiles / role
        network = _profile_network(profile)
        for variant in variants:
            options.on_progress(f"{role}: {variant.fault if variant else IDENTITY}")
            outcome = _run_variant(options, role, profile, network, variant)
            results.variants.append(outcome)
            options.on_variant(outcome)
        ran = [v for v in results.variants if v.role == role]
        faulty = [v for v in ran if v.variant != IDENTITY]
        identity = next((v for v in ran if v.variant == IDENTITY), None)
        results.scores.append(
            RoleScore(
                role=role,
                caught=sum(v.caught for v in faulty),
                total=len(faulty),
                identity_conforms=identity is not None and identity.caught,
            )
        )
    results.finished = datetime.now(UTC)
    return results


def _plan(options: SelftestOptions) -> dict[str, list[Variant | None]]:
    """Per role, the identity variant (None) first, then the chosen faulty variants."""
    plan: dict[str, list[Variant | None]] = {}
    known: set[str] = set()
    for role in options.roles:
        if not (options.profiles / role).is_dir():
            raise ConfigError(f"no profile for role {role!r} in {options.profiles}")
        variants = load_variants(role)
        known.update(v.fault for v in variants)
        plan[role] = [None, *(v for v in variants if not options.only or v.fault in options.only)]
    unknown = sorted(set(options.only) - known)
    if unknown:
        raise ConfigError(f"unknown variant(s) {', '.join(unknown)} for role(s) {', '.join(options.roles)}")
    return plan


def _profile_network(profile: Path) -> dict[str, Any]:
    files = sorted(profile.glob("*.yaml"))
    if not files:
        raise ConfigError(f"{profile}: no scenario files")
    path = load_scenario(files[0]).network_path
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not a network file")
    return data


def _faulty_network(network: dict[str, Any], role: str, fault: str | None) -> dict[str, Any]:
    """The profile's network with every reference node of `role` started with the defect."""
    copy: dict[str, Any] = json.loads(json.dumps(network))
    if fault is None:
        return copy
    for organisation in copy.get("organisations", []):
        for node in organisation.get("nodes", []):
            if node.get("role") == role and "implementation" not in node:
                node["settings"] = {**node.get("settings", {}), "fault": fault}
    return copy


def _run_variant(
    options: SelftestOptions, role: str, profile: Path, network: dict[str, Any], variant: Variant | None
) -> VariantOutcome:
    name = variant.fault if variant else IDENTITY
    folder_root = options.report_dir / role
    network_file = folder_root / f"{name}.network.yaml"
    network_file.parent.mkdir(parents=True, exist_ok=True)
    network_file.write_text(yaml.safe_dump(_faulty_network(network, role, variant.fault if variant else None)), "utf-8")
    # The run's id is unique across self-tests running at once; its reports are under the variant's name.
    run_id = f"{options.report_dir.name}-{role}-{name}"
    folder = RunFolder(options.state, folder_root, run_id, report_dir=folder_root / name)
    started = datetime.now(UTC)
    results = run_conformance(
        ConformanceOptions(scenario_paths=[profile], network_path=network_file, runtime=options.runtime, folder=folder)
    )
    write_all(results, folder.report_dir)
    caught, failed = judged(results, faulty=variant is not None)
    return VariantOutcome(
        role=role,
        variant=name,
        description=variant.description if variant else "the reference node as it is",
        breaks=variant.breaks if variant else [],
        exit_code=results.exit_code,
        caught=caught,
        caught_by=failed,
        error=results.error,
        report=str(folder.report_dir),
        duration_s=(datetime.now(UTC) - started).total_seconds(),
    )


def judged(results: RunResults, *, faulty: bool) -> tuple[bool, list[str]]:
    """Whether a variant's run came out as it must (a faulty node caught, the reference node
    conforming), and the checks that failed. A faulty node counts as caught by a failing check
    only: a harness error says nothing about whether the profile would have seen the defect."""
    failed = [f"{s.name}/{c.id}" for s, c in results.all_checks() if c.outcome == Outcome.FAILED]
    if not faulty:
        return results.exit_code == ExitCode.OK, failed
    return results.exit_code != ExitCode.OK and bool(failed) and results.error is None, failed


def write_selftest(results: SelftestResults, report_dir: Path) -> list[Path]:
    """selftest.json (the record) and selftest.md (the same on one page)."""
    report_dir.mkdir(parents=True, exist_ok=True)
    as_json = report_dir / "selftest.json"
    payload = results.model_dump(mode="json")
    payload["exit_code"] = results.exit_code
    as_json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    lines = [f"# Mutation self-test {results.run_id}", ""]
    lines += ["| role | caught | identity conforms |", "| --- | --- | --- |"]
    lines += [
        f"| {s.role} | {s.caught} of {s.total} | {'yes' if s.identity_conforms else '**no**'} |" for s in results.scores
    ]
    lines += ["", "| role | variant | breaks | caught | by |", "| --- | --- | --- | --- | --- |"]
    for v in results.variants:
        by = ", ".join(v.caught_by[:4]) + (" …" if len(v.caught_by) > 4 else "")
        if v.error:  # not a catch: the run did not reach a verdict
            by = f"harness error: {v.error.splitlines()[0][:120]}"
        mark = "yes" if v.caught else "**no**"
        lines.append(f"| {v.role} | {v.variant} | {', '.join(v.breaks)} | {mark} | {by} |")
    as_md = report_dir / "selftest.md"
    as_md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [as_json, as_md]


def record_scores(results: SelftestResults) -> list[str]:
    """Keep each fully measured role's score where profile reports read it (a role measured on
    only some of its variants is not recorded); returns the roles recorded."""
    recorded = []
    for score in results.scores:
        ran = sorted(v.variant for v in results.variants if v.role == score.role and v.variant != IDENTITY)
        if ran != sorted(v.fault for v in load_variants(score.role)):
            continue
        write_score(
            score.role,
            {
                "caught": score.caught,
                "total": score.total,
                "identity_conforms": score.identity_conforms,
                "variants": ran,
                "measured": results.started.date().isoformat(),
            },
        )
        recorded.append(score.role)
    return recorded
