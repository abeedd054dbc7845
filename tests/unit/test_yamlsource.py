from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from testbed.errors import ConfigError
from testbed.yamlsource import read_yaml, validate


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int


class Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    items: list[Inner]


def test_lines_are_remembered_for_keys_and_items(write_yaml):
    doc = read_yaml(write_yaml("name: x\nitems:\n  - count: 1\n  - count: 2\n"))
    assert doc.data == {"name": "x", "items": [{"count": 1}, {"count": 2}]}
    assert doc.line_of(("items", 1, "count")) == 4
    assert doc.line_of(("items", 1, "missing")) == 4  # falls back to the longest known prefix


def test_validation_error_names_file_line_and_field(write_yaml):
    path = write_yaml("name: x\nitems:\n  - count: 1\n  - count: many\n")
    with pytest.raises(ConfigError) as caught:
        validate(read_yaml(path), Outer, "test")
    message = str(caught.value)
    assert f"{path}:4: items[1].count:" in message
    assert "'many'" in message


def test_missing_and_unknown_fields_are_explained(write_yaml):
    path = write_yaml("items: []\nnmae: x\n")
    with pytest.raises(ConfigError) as caught:
        validate(read_yaml(path), Outer, "test")
    message = str(caught.value)
    assert "name: this field is required" in message
    assert f"{path}:2: nmae: unknown field" in message


def test_invalid_yaml_reports_line(write_yaml):
    path = write_yaml("name: x\nitems: [1, 2\nother: 3\n")
    with pytest.raises(ConfigError, match=rf"{path}:\d+: not valid YAML"):
        read_yaml(path)


def test_duplicate_key_is_refused(write_yaml):
    path = write_yaml("name: x\nname: y\n")
    with pytest.raises(ConfigError, match=rf"{path}:2: duplicate key 'name'"):
        read_yaml(path)


def test_empty_and_missing_files(write_yaml, tmp_path: Path):
    with pytest.raises(ConfigError, match="the file is empty"):
        read_yaml(write_yaml(""))
    with pytest.raises(ConfigError, match="file not found"):
        read_yaml(tmp_path / "absent.yaml")


def test_merge_keys_copy_a_mapping_and_local_keys_win(write_yaml):
    path = write_yaml("base: &base {a: 1, b: {c: 2}}\nderived:\n  <<: *base\n  a: 3\n")
    doc = read_yaml(path)
    assert doc.data["derived"] == {"a": 3, "b": {"c": 2}}
    assert doc.data["base"] == {"a": 1, "b": {"c": 2}}


def test_merge_of_a_non_mapping_is_refused(write_yaml):
    with pytest.raises(ConfigError, match=r":1: '<<' merges a mapping"):
        read_yaml(write_yaml("base: &base [1, 2]\nderived: {<<: *base}\n"))
