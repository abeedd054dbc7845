"""The suite version: one digest of the scenario (profile) and requirement files a run used.

Two runs are like for like only when they replayed the same checks against the same
requirements, so every report names this digest, and `testbed diff` says when two runs differ
in it. The network file is left out on purpose: the matrix swaps one node of a network for an
implementation under test, and its runs must still count as runs of one suite.

Each file is named by a path that does not depend on the machine (a scenario by its path below
the nearest `scenarios` folder, else by its file name; a requirement file as
`requirements/<name>`), and the digest is taken over the sorted (name, sha256 of contents) pairs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

PREFIX = "sha256:"
SCENARIO_ROOT = "scenarios"


def requirement_files() -> list[Path]:
    """The requirement catalogue's files, as the harness loads them."""
    folder = Path(str(resources.files("testbed.conformance") / "requirements"))
    return sorted(folder.glob("*.yaml"))


def suite_name(path: Path) -> str:
    """A scenario file's name in the suite: its path below the last `scenarios` folder on its
    way, so that the same files give the same name from any working folder or checkout."""
    parts = path.resolve().parts
    if SCENARIO_ROOT in parts[:-1]:
        below = len(parts) - 1 - parts[::-1].index(SCENARIO_ROOT)
        return "/".join(parts[below + 1 :])
    return path.name


def suite_entries(scenario_files: Iterable[Path], requirements: Iterable[Path] | None = None) -> list[tuple[str, str]]:
    """(name, sha256 of the contents) of every file of the suite, sorted by name."""
    entries = {f"scenarios/{suite_name(path)}": _sha256(path) for path in scenario_files}
    for path in requirement_files() if requirements is None else requirements:
        entries[f"requirements/{path.name}"] = _sha256(path)
    return sorted(entries.items())


def suite_version(scenario_files: Iterable[Path], requirements: Iterable[Path] | None = None) -> str:
    """The version, "sha256:<hex>", over the suite's files (`requirements`: by default the
    packaged catalogue's)."""
    digest = hashlib.sha256()
    for name, sha in suite_entries(scenario_files, requirements):
        digest.update(f"{name}\0{sha}\n".encode())
    return PREFIX + digest.hexdigest()


def short(version: str) -> str:
    """The first 12 hex digits, for a line a person reads ("sha256:0a1b2c3d4e5f")."""
    return version[: len(PREFIX) + 12] if version.startswith(PREFIX) else version or "unknown"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
