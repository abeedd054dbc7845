"""A small JSONPath subset used by scenarios and presentation definitions alike:
`$`, `.name`, `['name']`, `[index]` (negative counts from the end)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

_TOKEN = re.compile(r"\.([A-Za-z_@$][\w@$-]*)|\[(-?\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


class JsonPathError(ValueError):
    """The path is not in the supported syntax."""


class PathNotFound(LookupError):
    """The path is well formed but the document has nothing there."""


@lru_cache(maxsize=4096)
def parse(path: str) -> tuple[str | int, ...]:
    """The steps of a path, read once per path (scenarios and definitions reuse a few)."""
    if not path.startswith("$"):
        raise JsonPathError(f"a JSON path starts with '$': {path!r}")
    parts: list[str | int] = []
    position = 1
    while position < len(path):
        match = _TOKEN.match(path, position)
        if not match:
            raise JsonPathError(f"cannot read JSON path {path!r} at character {position + 1}")
        name, index, quoted, double_quoted = match.groups()
        if index is not None:
            parts.append(int(index))
        else:
            parts.append(next(p for p in (name, quoted, double_quoted) if p is not None))
        position = match.end()
    return tuple(parts)


def find(document: Any, path: str) -> Any:
    """The value at `path`; PathNotFound when some step is missing."""
    return walk(document, parse(path))


def walk(document: Any, parts: tuple[str | int, ...]) -> Any:
    """The value the parsed steps lead to; PathNotFound when some step is missing."""
    value = document
    for depth, part in enumerate(parts):
        if isinstance(part, int):
            if not isinstance(value, list) or not -len(value) <= part < len(value):
                raise PathNotFound(f"{_shown(parts[:depth])} has no item [{part}]")
        elif not isinstance(value, dict) or part not in value:
            raise PathNotFound(f"{_shown(parts[:depth])} has no member {part!r}")
        value = value[part]
    return value


def _shown(parts: tuple[str | int, ...]) -> str:
    """How far a walk got, written as a path, for the message of a step that was missing."""
    return "$" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts)


def exists(document: Any, path: str) -> bool:
    try:
        find(document, path)
    except PathNotFound:
        return False
    return True
