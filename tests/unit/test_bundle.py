"""Signed bundles of a run's reports: made, verified, and refused when anything changed."""

import io
import tarfile
from pathlib import Path

import pytest

from testbed.report.bundle import BundleError, make_bundle, new_key, verify_bundle


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    folder = tmp_path / "reports" / "20260101T000000Z-conformance-abcd"
    (folder / "logs").mkdir(parents=True)
    (folder / "results.json").write_text('{"exit_code": 0}')
    (folder / "summary.md").write_text("# passes\n")
    (folder / "logs" / "node.log").write_text("started\n")
    return folder


def test_a_bundle_verifies_with_the_publishers_key(reports: Path, tmp_path: Path):
    public = new_key(tmp_path / "publisher.pem")
    bundle = make_bundle(reports, tmp_path / "publisher.pem")
    manifest = verify_bundle(bundle, public)
    assert manifest["run_id"] == reports.name
    assert set(manifest["files"]) == {"results.json", "summary.md", "logs/node.log"}


def test_another_key_or_a_changed_file_is_refused(reports: Path, tmp_path: Path):
    new_key(tmp_path / "publisher.pem")
    other = new_key(tmp_path / "other.pem")
    bundle = make_bundle(reports, tmp_path / "publisher.pem")
    with pytest.raises(BundleError, match="does not verify"):
        verify_bundle(bundle, other)
    # Rebuild the archive with one file changed, manifest and signature kept.
    changed = tmp_path / "changed.tar.gz"
    with tarfile.open(bundle, "r:gz") as source, tarfile.open(changed, "w:gz") as target:
        for member in source.getmembers():
            extracted = source.extractfile(member)
            assert extracted is not None  # every member of a bundle is a file
            data = extracted.read()
            if member.name.endswith("results.json"):
                data = b'{"exit_code": 1}'
                member.size = len(data)
            target.addfile(member, io.BytesIO(data))
    public = tmp_path / "publisher.pub.pem"
    with pytest.raises(BundleError, match=r"changed \['results.json'\]"):
        verify_bundle(changed, public)


def test_a_folder_that_is_not_a_run_is_refused(tmp_path: Path):
    new_key(tmp_path / "k.pem")
    with pytest.raises(BundleError, match=r"no results\.json"):
        make_bundle(tmp_path, tmp_path / "k.pem")
