"""`{{ name.path[0] }}` placeholders in scenario values, filled from the run's context:
`orgs`, `nodes`, `actors`, `network`, `vars`, `run`, `time`, `user` (the simulated user of a
load run: `user.index`, 0 in a conformance run), and every variable captured so far.

A value that is exactly one placeholder keeps its type (a captured number stays a number);
placeholders inside a longer string are written into it as text."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from protocols.jsonpath import JsonPathError, PathNotFound, parse, walk

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


@dataclass(frozen=True)
class _Placeholder:
    """One `{{ expression | filter }}`, read once."""

    expression: str
    filter: str | None


def _render_string(text: str, context: Mapping[str, Any]) -> Any:
    pieces = _pieces(text)
    if isinstance(pieces, _Placeholder):
        return _filled(pieces, context)
    if not pieces:
        return text
    return "".join(piece if isinstance(piece, str) else _as_text(_filled(piece, context)) for piece in pieces)


@lru_cache(maxsize=8192)
def _pieces(text: str) -> _Placeholder | tuple[str | _Placeholder, ...]:
    """A text split into literal parts and placeholders, once per text: a load run renders
    the same few texts for every simulated user. One placeholder alone keeps its value's
    type; no placeholder at all is the empty tuple (the text stands as it is)."""
    whole = PLACEHOLDER.fullmatch(text.strip())
    if whole:
        return _Placeholder(whole.group(1), whole.group(2))
    pieces: list[str | _Placeholder] = []
    position = 0
    for match in PLACEHOLDER.finditer(text):
        pieces += [text[position : match.start()], _Placeholder(match.group(1), match.group(2))]
        position = match.end()
    return (*pieces, text[position:]) if pieces else ()


def _filled(placeholder: _Placeholder, context: Mapping[str, Any]) -> Any:
    value = lookup(placeholder.expression, context)
    name = placeholder.filter
    if name is None:
        return value
    if name not in FILTERS:
        raise UndefinedVariable(placeholder.expression, "", f"unknown filter '{name}' (known: {', '.join(FILTERS)})")
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


def malformed(value: Any) -> list[str]:
    """Texts in `value` that look like placeholders but are not read as one (an unclosed `{{`,
    a filter name with a dash): a run would send them literally, so they are refused before it."""
    if isinstance(value, str):
        rest = PLACEHOLDER.sub("", value)
        if "{{" not in rest and "}}" not in rest:
            return []
        at = min(i for i in (rest.find("{{"), rest.find("}}")) if i >= 0)
        shown = rest[max(0, at - 20) : at + 40]
        return [
            f"{shown!r} is not a placeholder: write {{{{ name.path }}}} or {{{{ name.path | filter }}}} "
            "(names of letters, digits, _ and -; filter names of letters, digits and _; closed with }})"
        ]
    if isinstance(value, list):
        return [problem for item in value for problem in malformed(item)]
    if isinstance(value, dict):
        return [problem for key, item in value.items() for problem in malformed(key) + malformed(item)]
    return []


def expressions(value: Any) -> Iterator[str]:
    """Every placeholder's expression in `value` (`orgs.gp.did` of `{{ orgs.gp.did | urlencode }}`)."""
    if isinstance(value, str):
        for match in PLACEHOLDER.finditer(value):
            yield match.group(1)
    elif isinstance(value, list):
        for item in value:
            yield from expressions(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from expressions(key)
            yield from expressions(item)


def lookup(expression: str, context: Mapping[str, Any]) -> Any:
    root, path, syntax_error = _expression(expression)
    if root not in context:
        raise UndefinedVariable(expression, root, f"'{root}' is not defined")
    if path is None:
        raise UndefinedVariable(expression, root, syntax_error)
    try:
        return walk(context, path)
    except PathNotFound as exc:
        raise UndefinedVariable(expression, root, str(exc)) from None


@lru_cache(maxsize=8192)
def _expression(expression: str) -> tuple[str, tuple[str | int, ...] | None, str]:
    """An expression's first name and its path, read once; the path is None (and the third
    part says why) when it is not in the supported syntax."""
    root = root_of(expression)
    try:
        return root, parse("$." + expression), ""
    except JsonPathError as exc:
        return root, None, str(exc)


def root_of(expression: str) -> str:
    """The first name of an expression: `orgs` of `orgs.gp.did`."""
    return re.split(r"[.\[]", expression, maxsplit=1)[0]


def roots(value: Any) -> Iterator[str]:
    """The first names of every placeholder in `value`, for checks before a run."""
    for expression in expressions(value):
        yield root_of(expression)


def expression_problem(expression: str, shape: Mapping[str, Any]) -> str | None:
    """Why `expression` cannot be filled from a context shaped like `shape` (None: it can).
    Names `shape` lacks are not judged here (captured variables, whose shape is unknown)."""
    root, path, syntax_error = _expression(expression)
    if root not in shape:
        return None
    if path is None:
        return f"{{{{ {expression} }}}}: {syntax_error}"
    try:
        walk(shape, path)
    except PathNotFound as exc:
        return f"{{{{ {expression} }}}}: {exc}"
    return None


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
