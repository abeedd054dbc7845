"""`{{ name.path[0] }}` placeholders in scenario values, filled from the run's context:
`orgs`, `nodes`, `actors`, `network`, `vars`, `run`, and every variable captured so far.

A value that is exactly one placeholder keeps its type (a captured number stays a number);
placeholders inside a longer string are written into it as text."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from nodes.common.jsonpath import JsonPathError, PathNotFound, find

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w\-]*(?:\.[\w\-]+|\[-?\d+\])*)\s*\}\}")
NAMESPACES = ("orgs", "nodes", "actors", "network", "vars", "run")


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
        return lookup(whole.group(1), context)
    return PLACEHOLDER.sub(lambda m: _as_text(lookup(m.group(1), context)), text)


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


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)
