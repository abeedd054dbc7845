"""Every count a report shows, computed once: outcomes per run and per scenario, requirement
coverage, the failed and errored checks. Every format (terminal, HTML, Markdown, JSON) reads
these, so no two of them can disagree about what a run did."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from testbed.report.model import CheckResult, Outcome, RequirementCoverage, RunResults, ScenarioResult

# The order outcomes are counted, charted and listed in: passed first, then what needs a look.
OUTCOME_ORDER = (Outcome.PASSED, Outcome.FAILED, Outcome.ERROR, Outcome.SKIPPED)
PROBLEMS = (Outcome.FAILED, Outcome.ERROR)


def outcome_counts(checks: Iterable[CheckResult]) -> dict[str, int]:
    """Checks per outcome, every outcome present (zero included), in display order."""
    tally = Counter(check.outcome for check in checks)
    return {outcome.value: tally[outcome] for outcome in OUTCOME_ORDER}


def tested(requirement: RequirementCoverage) -> bool:
    """A requirement counts as tested when a check of it passed, failed or errored: a check
    that was skipped (not applicable, or blocked by an earlier failure) tested nothing."""
    return requirement.outcome is not None and requirement.outcome is not Outcome.SKIPPED


def requirements_covered(requirements: Iterable[RequirementCoverage]) -> int:
    return sum(1 for requirement in requirements if tested(requirement))


@dataclass(frozen=True)
class Problem:
    """A failed or errored check with the scenario it belongs to, for the recap lists."""

    scenario: ScenarioResult
    check: CheckResult

    @property
    def ref(self) -> str:
        return f"{self.scenario.name}/{self.check.id}"

    @property
    def reason(self) -> str:
        """The first line of the check's message: what a recap shows on one line."""
        first = self.check.message.strip().splitlines()[0] if self.check.message.strip() else ""
        return first or f"{self.check.outcome.value} without a message"


def problems(results: RunResults) -> list[Problem]:
    """Failed and errored checks, in the order they ran."""
    return [Problem(s, c) for s, c in results.all_checks() if c.outcome in PROBLEMS]


@dataclass(frozen=True)
class Coverage:
    covered: int
    total: int

    def __str__(self) -> str:
        return f"{self.covered} of {self.total}"


def coverage(results: RunResults) -> Coverage:
    """Requirements tested of those the run reports on: counted from the requirement list
    with `tested`, the rule the harness's own summary uses too."""
    return Coverage(requirements_covered(results.requirements), len(results.requirements))
