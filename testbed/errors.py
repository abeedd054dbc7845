"""Errors the harness reports to a person, and the exit codes of a run."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of a conformance run (shared/DESIGN.md, "Outcomes")."""

    OK = 0  # every MUST check passed
    FAILED = 1  # at least one check failed
    HARNESS_ERROR = 2  # configuration, harness or environment error
    INCOMPLETE = 3  # nothing failed, but a MUST requirement of a profile's role went untested


class TestbedError(Exception):
    """An error with a message meant for a person: the CLI prints it without a traceback."""

    __test__ = False  # not a pytest test class, despite the name


class ConfigError(TestbedError):
    """A network or scenario file is wrong. The message names the file and line."""


class NodeStartError(TestbedError):
    """A node did not come up; the message carries the tail of its log."""


class NodeIdentityError(TestbedError):
    """A node does not answer for the role the network file gives it (or does not answer)."""


class RunStateError(TestbedError):
    """The run folder is missing, stale or unreadable."""
