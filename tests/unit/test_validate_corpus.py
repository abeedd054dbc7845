"""A corpus of malformed network and scenario files (tests/corpus): each is refused before
anything starts with one clear message naming the file (and its line, where the problem has
one), never a traceback, and `testbed validate` reports every file of the corpus at once.

Each corpus file's first line says what its message must match: `# expect: <regex>`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testbed.conformance.catalogue import Catalogue
from testbed.errors import ConfigError
from testbed.scenario.loader import validate_file
from testbed.yamlsource import MAX_FILE_BYTES
from tests.conftest import ROOT

CORPUS = ROOT / "tests" / "corpus"
FILES = sorted(CORPUS.glob("*.yaml"))
EXPECT = re.compile(rb"^# expect: (.*)$", re.MULTILINE)
# A message is for a person: never the whole of a large input (a file read as one text).
LONGEST_MESSAGE = 4000


def expectation(path: Path) -> str:
    found = EXPECT.match(path.read_bytes())
    assert found, f"{path.name} does not start with '# expect: <regex>'"
    return found.group(1).decode()



def refusal(path: Path, catalogue: Catalogue) -> str:
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        validate_file(path, catalogue, runtime="process")
    assert time.monotonic() - started < 5, f"{path.name} took too long to refuse"
    return str(caught.value)


def test_the_corpus_is_large_enough():
    assert len(FILES) >= 60
    assert {p.name[:2] for p in FILES} == {"n-", "s-"}  # network files and scenario files


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_each_malformed_file_is_refused_with_file_line_and_reason(path, catalogue):
    message = refusal(path, catalogue)
    assert re.search(expectation(path), message, re.DOTALL), message
    assert str(path) in message
    # Every problem has a line but a file that cannot be read at all (size, encoding).
    if "cannot read file" not in message:
        assert re.search(rf"{re.escape(str(path))}:\d+: ", message), message
    assert len(message) < LONGEST_MESSAGE, message[:500]
    assert "Traceback" not in message


def test_a_file_larger_than_the_limit_is_refused_unread(tmp_path, catalogue):
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * MAX_FILE_BYTES + "\nname: big\n", encoding="utf-8")
    assert "larger than 4 MiB" in refusal(big, catalogue)


def test_an_empty_file_is_refused(tmp_path, catalogue):
    empty = tmp_path / "empty.yaml"
    empty.write_bytes(b"")
    assert f"{empty}:1: the file is empty" in refusal(empty, catalogue)


def test_validate_reports_every_file_of_the_corpus_in_one_run(tmp_path):
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "testbed.cli", "validate", *map(str, FILES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert time.monotonic() - started < 60
    assert done.returncode == 2, done.stdout + done.stderr
    output = done.stdout + done.stderr
    assert "Traceback" not in output
    assert [p for p in FILES if str(p) not in output] == []
    assert f"{len(FILES)} of {len(FILES)} files have problems" in output


def test_validate_passes_good_files_and_still_reports_the_bad_ones(tmp_path):
    good = ROOT / "scenarios" / "networks" / "reference.yaml"
    bad = CORPUS / "s-node-not-found.yaml"
    done = subprocess.run(
        [sys.executable, "-m", "testbed.cli", "validate", str(bad), str(good)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert f"✓ {good}" in done.stdout
    assert "1 of 2 files have problems" in done.stderr
