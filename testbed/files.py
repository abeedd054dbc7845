"""How the harness names and fingerprints its input files in results."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@lru_cache(maxsize=1024)  # a load run names the same scenario file for every flow
def display_path(path: Path) -> str:
    """Relative to the working folder where possible: a published report should not carry
    the folder layout of the machine it ran on."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
