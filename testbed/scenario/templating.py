"""`{{ name.path[0] }}` placeholders in scenario values, filled from the run's context:
`orgs`, `nodes`, `actors`, `network`, `vars`, `run`, `time`, `user` (the simulated user of a
load run: `user.index`, 0 in a conformance run), and every variable captured so far.

A value that is exactly one placeholder keeps its type (a captured number stays a number);
placeholders inside a longer string are written into it as text."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

from nodes.common.jsonpath import JsonPathError, PathNotFound, find

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w\-]*(?:\.[\w\-]+|\[-?\d+\])*)\s*(?:\|\s*(\w+)\s*)?\}\}")
NAMESPACES = ("orgs", "nodes", "actors", "network", "vars", "run", "time", "user")
# `{{ value | filter }}`: what a value may be passed through on its way into a request.
FILTERS: dict[str, Callable[[Any], Any]] = {
    "urlencode": lambda value: quote(_as_text(value), safe=""),  # e.g. a DID or credential id in a path
    "tamper": lambda value: _tampered(_as_text(value)),  # a JWS whose signature no longer holds
    "decrement": lambda value: _number(value) - 1,  # e.g. a count once one person is left out
}


class UndefinedVariable(LookupError):
    def __init__(self, expression: str, root: str, detail: str):
        super().__init__(f"{{{{ {expression} }}}}: {detail}")
        self.expression = expression
        self.root = root


def render(value: Any, context: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        return _render_string(value, context)
    if isinstance(value, list):
        return [render(item, context) for item in value]
    if isinstance(value, dict):
        return {render(k, context): render(v, context) for k, v in value.items()}
    return value


def _render_string(text: str, context: Mapping[str, Any]) -> Any:
    whole = PLACEHOLDER.fullmatch(text.strip())
    if whole:
        return _filtered(whole, context)
    return PLACEHOLDER.sub(lambda m: _as_text(_filtered(m, context)), text)


def _filtered(match: re.Match[str], context: Mapping[str, Any]) -> Any:
    value = lookup(match.group(1), context)
    name = match.group(2)
    if name is None:
        return value
    if name not in FILTERS:
        raise UndefinedVariable(match.group(1), "", f"unknown filter '{name}' (known: {', '.join(FILTERS)})")
    return FILTERS[name](value)


def unknown_filters(value: Any) -> list[str]:
    """Filter names in `value` that do not exist, for checks before a run."""
    if isinstance(value, str):
        return [m.group(2) for m in PLACEHOLDER.finditer(value) if m.group(2) and m.group(2) not in FILTERS]
    if isinstance(value, list):
        return [name for item in value for name in unknown_filters(item)]
    if isinstance(value, dict):
        return [name for key, item in value.items() for name in unknown_filters(key) + unknown_filters(item)]
    return []


def lookup(expression: str, context: Mapping[str, Any]) -> Any:
    root = re.split(r"[.\[]", expression, maxsplit=1)[0]
    if root not in context:
        raise UndefinedVariable(expression, root, f"'{root}' is not defined")
    try:
        return find(context, "$." + expression)
    except (PathNotFound, JsonPathError) as exc:
        raise UndefinedVariable(expression, root, str(exc)) from None


def roots(value: Any) -> Iterator[str]:
    """The first names of every placeholder in `value`, for checks before a run."""
    if isinstance(value, str):
        for match in PLACEHOLDER.finditer(value):
            yield re.split(r"[.\[]", match.group(1), maxsplit=1)[0]
    elif isinstance(value, list):
        for item in value:
            yield from roots(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from roots(key)
            yield from roots(item)


def _tampered(token: str) -> str:
    """The same JWS with one character in the middle of its signature changed: still well
    formed, but signed by nobody (the end of the signature may only hold padding bits)."""
    header, payload, signature = [*token.split("."), "", "", ""][:3]
    if not signature:
        raise ValueError("'tamper' needs a compact JWS (three dot-separated parts)")
    middle = len(signature) // 2
    changed = "B" if signature[middle] == "A" else "A"
    return f"{header}.{payload}.{signature[:middle]}{changed}{signature[middle + 1 :]}"


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"a number is needed here, not {value!r}")
    return value


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)
