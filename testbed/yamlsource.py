"""Read a YAML file into plain data while remembering where every value stood.

Network and scenario files are validated into pydantic models; when validation fails the
person needs the file and line of the offending value, which plain `yaml.safe_load` forgets.
We compose the YAML node tree ourselves and keep a map from value path to line number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from testbed.errors import ConfigError

PathKey = tuple[str | int, ...]
# Limits that no honest network or scenario file comes near, and that keep a hostile one (an
# alias bomb: a few hundred bytes that expand to billions of values) from taking minutes and
# gigabytes: the file's size, how deep values nest, and how many values it expands to.
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64
MAX_VALUES = 200_000
MERGE_TAG = "tag:yaml.org,2002:merge"
ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass
class YamlDocument:
    """Parsed YAML data plus the 1-based line of every mapping key and sequence item."""

    path: Path
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, location: PathKey) -> int:
        """The line of the longest prefix of `location` that the file contains."""
        for end in range(len(location), -1, -1):
            line = self.lines.get(tuple(location[:end]))
            if line is not None:
                return line
        return 1

    def where(self, location: PathKey) -> str:
        return f"{self.path}:{self.line_of(location)}"


def read_yaml(path: Path) -> YamlDocument:
    """Parse a YAML file; any problem becomes a ConfigError naming file and line."""
    try:
        if path.is_file() and path.stat().st_size > MAX_FILE_BYTES:
            raise ConfigError(f"{path}: the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read file: {exc}") from None
    if (line := _too_deep_early(text)) is not None:
        raise ConfigError(f"{path}:{line}: values nest too deeply (more than {MAX_DEPTH} levels)")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise ConfigError(f"{path}:{line}: not valid YAML: {exc.problem or exc}") from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (a NUL, a control code)
        line = text[: exc.position].count("\n") + 1
        raise ConfigError(f"{path}:{line}: not valid YAML: {exc.reason} (character {exc.character!r})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except RecursionError:
        line = _too_deep_line(text)
        raise ConfigError(f"{path}:{line}: values nest too deeply (more than {MAX_DEPTH} levels)") from None
    if root is None:
        raise ConfigError(f"{path}:1: the file is empty")
    doc = YamlDocument(path=path, data=None)
    try:
        doc.data = _Builder(doc.lines).construct(root, ())
    except yaml.constructor.ConstructorError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise ConfigError(f"{path}:{line}: {exc.problem}") from None
    except RecursionError:
        raise ConfigError(f"{path}: an alias refers to itself (or nests too deeply)") from None
    return doc


def _too_deep_early(text: str) -> int | None:
    """The line where values first nest deeper than MAX_DEPTH, found before the tree is built:
    PyYAML's own scanner slows down with every level of flow nesting (seconds for a few thousand
    brackets), libyaml's C parser, where it is installed, does not. Other problems are left for
    the composer, whose messages name them better."""
    loader = getattr(yaml, "CSafeLoader", None)
    if loader is None:
        return None
    depth = 0
    try:
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    return int(event.start_mark.line) + 1 if event.start_mark else 1
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                depth -= 1
    except yaml.MarkedYAMLError as exc:
        if "nesting depth" in str(exc.problem):  # libyaml's own limit, far beyond ours
            return int(exc.problem_mark.line) + 1 if exc.problem_mark else 1
    except yaml.YAMLError:
        pass
    return None


def _too_deep_line(text: str) -> int:
    """Where values first nest deeper than MAX_DEPTH: the parser's events come one by one,
    without the recursion that building the tree needs."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                depth += 1
                if depth > MAX_DEPTH and event.start_mark is not None:
                    return int(event.start_mark.line) + 1
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                depth -= 1
    except yaml.YAMLError:
        pass
    return 1


class _Builder:
    """Builds plain data from the node tree, counting what it builds: an alias is expanded
    where it is used, so the count, not the file's size, tells an alias bomb."""

    def __init__(self, lines: dict[PathKey, int]) -> None:
        self.lines = lines
        self.values = 0

    def construct(self, node: yaml.Node, location: PathKey) -> Any:
        self.values += 1
        if self.values > MAX_VALUES:
            raise yaml.constructor.ConstructorError(
                None, None, f"the file expands to more than {MAX_VALUES} values (aliases of aliases?)", node.start_mark
            )
        if len(location) > MAX_DEPTH:
            raise yaml.constructor.ConstructorError(
                None, None, f"values nest more than {MAX_DEPTH} levels deep", node.start_mark
            )
        return _construct(node, location, self)


def _construct(node: yaml.Node, location: PathKey, builder: _Builder) -> Any:
    lines = builder.lines
    lines.setdefault(location, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                continue
            key = _scalar(key_node)
            if key in result:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            child = (*location, key)
            lines[child] = key_node.start_mark.line + 1
            result[key] = builder.construct(value_node, child)
        # `<<: *anchor` merges another mapping in; keys written here win.
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                for key, value in _merged(value_node, location, builder).items():
                    result.setdefault(key, value)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [builder.construct(item, (*location, i)) for i, item in enumerate(node.value)]
    return _scalar(node)


def _merged(node: yaml.Node, location: PathKey, builder: _Builder) -> dict[Any, Any]:
    sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
    merged: dict[Any, Any] = {}
    for source in sources:
        if not isinstance(source, yaml.MappingNode):
            raise yaml.constructor.ConstructorError(
                None, None, "'<<' merges a mapping (an alias of one)", source.start_mark
            )
        # The merged values are located where they were written, not at this mapping.
        elsewhere = _Builder({})
        elsewhere.values = builder.values
        for key, value in elsewhere.construct(source, (*location, "<<")).items():
            merged.setdefault(key, value)
        builder.values = elsewhere.values
    return merged


def _scalar(node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise yaml.constructor.ConstructorError(None, None, "a mapping key must be a plain value", node.start_mark)
    try:
        return yaml.SafeLoader("").construct_object(node, deep=True)
    except ValueError as exc:  # e.g. a date that does not exist: 2026-13-45
        raise yaml.constructor.ConstructorError(None, None, f"cannot read value: {exc}", node.start_mark) from None


def validate(doc: YamlDocument, model: type[ModelT], what: str) -> ModelT:
    """Validate parsed YAML into `model`; errors name file, line, field and expectation."""
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(doc, exc, what)) from None


def format_validation_error(doc: YamlDocument, exc: ValidationError, what: str) -> str:
    # A value that fits none of a union's members gives one error per member: group them.
    grouped: dict[PathKey, list[str]] = {}
    for error in exc.errors(include_url=False):
        explanations = grouped.setdefault(_data_location(doc, error["loc"]), [])
        if (text := _explain(dict(error))) not in explanations:
            explanations.append(text)
    problems = [
        f"  {doc.where(location)}: {_dotted(location) or '(top)'}: {' -- or -- '.join(texts)}"
        for location, texts in grouped.items()
    ]
    count = len(problems)
    head = f"{doc.path}: {count} problem{'s' if count != 1 else ''} in this {what} file:"
    return "\n".join([head, *problems])


def _data_location(doc: YamlDocument, loc: tuple[Any, ...]) -> PathKey:
    """Keep the keys and indices that stand in the file; drop the labels pydantic adds for
    unions and validators. The last part stays even when absent: it names a missing field."""
    kept: PathKey = ()
    for i, part in enumerate(loc):
        candidate = (*kept, part)
        if candidate in doc.lines or (i == len(loc) - 1 and isinstance(value_at(doc.data, kept), dict)):
            kept = candidate
    return kept


def value_at(data: Any, location: PathKey) -> Any:
    """The value at `location` in plain data from YAML, or None where there is none."""
    for part in location:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _dotted(location: PathKey) -> str:
    out = ""
    for part in location:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _explain(error: dict[str, Any]) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")  # our own validators' messages stand alone
    if error["type"] == "missing":
        return "this field is required"
    if error["type"] == "extra_forbidden":
        return "unknown field (check the spelling)"
    value = error.get("input")
    if isinstance(value, str | int | float | bool) or value is None:
        shown = repr(value)  # a long text is cut: a message names a value, it does not repeat a file
        return f"{message} (got {shown if len(shown) <= 200 else shown[:200] + '…'})"
    return message
