"""`testbed publish`: signed bundles in, a static results site out.

Each run is built in code, written with every report writer and frozen into a real signed
bundle, so the site is made from exactly what `testbed bundle` hands a publisher.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from testbed.publish.matrix_model import Cell, ImplementationRow, Matrix, PairCell
from testbed.publish.matrix_model import RequirementRow as MatrixRequirement
from testbed.publish.site import PublishError, publish_site, role_verdict
from testbed.report.bundle import make_bundle, new_key
from testbed.report.model import (
    CheckResult,
    ImplementationInfo,
    InputFile,
    Level,
    MachineInfo,
    Outcome,
    RegisteredImplementation,
    RequirementCoverage,
    RunResults,
    ScenarioResult,
    Summary,
    Verdict,
)
from testbed.report.writers import write_all
from tests.conftest import ROOT

T0 = datetime(2026, 5, 1, 9, 0, 0, tzinfo=UTC)
SUITE = "sha256:0a1b2c3d4e5f60718293a4b5c6d7e8f9"
HOSTILE = '<script>alert("owned")</script> & <img src=x onerror=alert(1)>'
REQUIREMENTS = [("VAULT-A-01", Level.MUST), ("VAULT-A-02", Level.MUST), ("VAULT-A-03", Level.SHOULD)]


def make_run(product: str, version: str, *, fail: bool = False, day: int = 0) -> RunResults:
    """A vault profile run of one implementation named by URL, the reference filling the rest."""
    started = T0 + timedelta(days=day)
    outcomes = [Outcome.FAILED if fail and i == 1 else Outcome.PASSED for i in range(len(REQUIREMENTS))]
    checks = [
        CheckResult(
            id=f"check-{i}", title=f"check {i}", requirements=[rid], outcome=outcome, started=started, duration_ms=5.0
        )
        for i, ((rid, _), outcome) in enumerate(zip(REQUIREMENTS, outcomes, strict=True))
    ]
    return RunResults(
        run_id=f"2026050{day + 1}T090000Z-conformance-{sum(map(ord, product + version)) % 10000:04d}",
        verdict=Verdict.FAILS if fail else Verdict.CONFORMS,
        exit_code=1 if fail else 0,
        harness_version="0.1.0",
        started=started,
        finished=started + timedelta(seconds=20),
        runtime="process",
        seed="publish-test",
        network=InputFile(path="scenarios/networks/reference.yaml", sha256="a" * 64),
        implementations=[
            ImplementationInfo(node="welldata-trust", role="trust", organisation="welldata", kind="reference"),
            ImplementationInfo(
                node="welldata-vault",
                role="vault",
                organisation="welldata",
                kind="url",
                public_url="https://127.0.0.1:9443",
                product=product,
                version=version,
            ),
        ],
        machine=MachineInfo(platform="Linux", python="3.11", cpus=2),
        profiles=["vault"],
        scenarios=[ScenarioResult(name="vault-access", file="vault-access.yaml", sha256="b" * 64, checks=checks)],
        requirements=[
            RequirementCoverage(
                id=rid,
                role="vault",
                level=level,
                statement=f"statement of {rid}",
                source="Solid",
                outcome=outcome,
                checks=[f"vault-access/check-{i}"],
            )
            for i, ((rid, level), outcome) in enumerate(zip(REQUIREMENTS, outcomes, strict=True))
        ],
        summary=Summary(total=3, passed=3 - fail, failed=int(fail), must_failed=int(fail)),
    )


@pytest.fixture
def key(tmp_path: Path) -> tuple[Path, Path]:
    private = tmp_path / "publisher.pem"
    return private, new_key(private)


def bundle_of(tmp_path: Path, key: tuple[Path, Path], run: RunResults, suite_version: str | None = SUITE) -> Path:
    """A real signed bundle of the run's report folder, as `testbed bundle` makes it; with
    suite_version None, as made before results named their suite version."""
    folder = tmp_path / "reports" / run.run_id
    write_all(run.model_copy(update={"suite_version": suite_version or ""}), folder)
    (folder / "logs").mkdir()
    (folder / "logs" / "welldata-vault.log").write_text("vault started\n")
    if suite_version is None:
        raw = json.loads((folder / "results.json").read_text())
        del raw["suite_version"]
        (folder / "results.json").write_text(json.dumps({**raw, "schema_version": "1.0"}))
    return make_bundle(folder, key[0])


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value is not None:
                self.links.append(value)
            if name == "id" and value is not None:
                self.ids.add(value)


def parse(page: Path) -> Links:
    links = Links()
    links.feed(page.read_text(encoding="utf-8"))
    return links


def our_pages(site: Path) -> list[Path]:
    return [p for p in site.rglob("*.html") if "bundles" not in p.relative_to(site).parts]


def test_two_bundles_make_a_site_whose_index_links_both_implementations(tmp_path, key):
    good = bundle_of(tmp_path, key, make_run("Acme Vault", "2.1"))
    bad = bundle_of(tmp_path, key, make_run("Other Pod Server", "0.9", fail=True))
    site = publish_site([good, bad], public_key=key[1], out=tmp_path / "site")
    assert (site.implementations, site.bundles) == (2, 2)
    index = tmp_path / "site" / "index.html"
    pages = {link for link in parse(index).links if link.startswith("implementations/")}
    assert len(pages) == 2
    texts = {(tmp_path / "site" / page).read_text() for page in pages}
    assert any("Acme Vault" in t and "conforms" in t for t in texts)
    assert any("Other Pod Server" in t and "does not conform" in t for t in texts)
    # A certificate for the conforming implementation only, made to be printed.
    [certificate] = (tmp_path / "site" / "certificates").iterdir()
    assert "Acme Vault" in certificate.read_text() and "@media print" in certificate.read_text()
    badges = sorted((tmp_path / "site" / "badges").iterdir())
    assert len(badges) == 2 and all(b.stat().st_size < 1000 for b in badges)
    assert {("does not conform" in b.read_text()) for b in badges} == {True, False}


def test_a_statement_shows_outcomes_evidence_and_history_across_versions(tmp_path, key):
    bundles = [
        bundle_of(tmp_path, key, make_run("Acme Vault", "2.0", fail=True, day=0), suite_version="suite-1"),
        bundle_of(tmp_path, key, make_run("Acme Vault", "2.1", day=1), suite_version="suite-2"),
    ]
    site = publish_site(bundles, public_key=key[1], out=tmp_path / "site")
    assert site.implementations == 1
    [page] = (tmp_path / "site" / "implementations").iterdir()
    text = page.read_text()
    assert text.index("2.1") < text.index("2.0")  # the newest version first in the history
    assert "suite-1" in text and "suite-2" in text
    assert "VAULT-A-02" in text and 'class="cell o-passed"' in text
    assert "report.html#check-vault-access--check-1" in text and "logs/welldata-vault.log" in text
    statements = sorted(p.name for p in (tmp_path / "site" / "statements").iterdir())
    assert len(statements) == 2
    failed = next(p for p in (tmp_path / "site" / "statements").iterdir() if "2.0" in p.read_text().split("<h1>")[1])
    assert 'class="cell o-failed">failed' in failed.read_text()


def test_a_bundle_from_before_suite_versions_reads_as_unknown(tmp_path, key):
    bundle = bundle_of(tmp_path, key, make_run("Acme Vault", "2.1"), suite_version=None)
    publish_site([bundle], public_key=key[1], out=tmp_path / "site")
    assert '<code title="unknown">unknown</code>' in (tmp_path / "site" / "index.html").read_text()
    [badge] = (tmp_path / "site" / "badges").iterdir()
    assert "suite unknown" in badge.read_text()


def tampered(bundle: Path, target: Path) -> Path:
    """The bundle with one byte of results.json changed, manifest and signature kept."""
    with tarfile.open(bundle, "r:gz") as source, tarfile.open(target, "w:gz") as changed:
        for member in source.getmembers():
            extracted = source.extractfile(member)
            assert extracted is not None
            data = extracted.read()
            if member.name.endswith("/results.json"):
                data = data[:10] + bytes([data[10] ^ 1]) + data[11:]
            changed.addfile(member, io.BytesIO(data))
    return target


def test_a_tampered_bundle_is_refused_and_nothing_is_written(tmp_path, key):
    good = bundle_of(tmp_path, key, make_run("Acme Vault", "2.1"))
    other = bundle_of(tmp_path, key, make_run("Other Pod Server", "0.9"))
    bad = tampered(other, tmp_path / "tampered.bundle.tar.gz")
    with pytest.raises(PublishError, match=r"tampered\.bundle\.tar\.gz refused: .*changed \['results\.json'\]"):
        publish_site([good, bad], public_key=key[1], out=tmp_path / "site")
    assert not (tmp_path / "site").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".site")] == []  # no staging left


def test_the_command_refuses_a_tampered_bundle_in_one_line_and_keeps_the_old_site(tmp_path, key):
    good = bundle_of(tmp_path, key, make_run("Acme Vault", "2.1"))
    bad = tampered(good, tmp_path / "tampered.bundle.tar.gz")
    site = ["--out", str(tmp_path / "s")]
    command = [sys.executable, "-m", "testbed.cli", "publish", "--public-key", str(key[1]), *site]
    env = {**os.environ, "COLUMNS": "300"}
    first = subprocess.run([*command, str(good)], cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert first.returncode == 0, first.stderr
    before = (tmp_path / "s" / "index.html").read_text()
    done = subprocess.run([*command, str(bad)], cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "tampered.bundle.tar.gz refused" in line and "results.json" in line and "Traceback" not in done.stderr
    assert (tmp_path / "s" / "index.html").read_text() == before


def test_a_bundle_signed_by_another_key_is_refused(tmp_path, key):
    bundle = bundle_of(tmp_path, key, make_run("Acme Vault", "2.1"))
    stranger = new_key(tmp_path / "stranger.pem")
    with pytest.raises(PublishError, match=r"refused: the signature does not verify"):
        publish_site([bundle], public_key=stranger, out=tmp_path / "site")
    assert not (tmp_path / "site").exists()


def test_a_hostile_product_name_is_escaped_everywhere(tmp_path, key):
    bundle = bundle_of(tmp_path, key, make_run(HOSTILE, "1.0"), suite_version='"><svg onload=alert(1)>')
    publish_site([bundle], public_key=key[1], out=tmp_path / "site")
    site = tmp_path / "site"
    for page in our_pages(site):
        text = page.read_text()
        assert "<script" not in text and "<img src=x" not in text and "<svg onload" not in text, page
    escaped = "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt; &amp; &lt;img src=x"
    assert escaped in (site / "index.html").read_text()
    [badge] = (site / "badges").iterdir()
    assert "<svg onload" not in badge.read_text() and badge.read_text().count("<svg") == 1
    # File names come from a digest and cleaned text, never from the name as written.
    safe = set("abcdefghijklmnopqrstuvwxyz0123456789-.")
    assert all(set(p.name) <= safe for p in (site / "implementations").iterdir())


def test_every_relative_link_resolves_to_a_file_and_anchor_that_exist(tmp_path, key):
    bundles = [
        bundle_of(tmp_path, key, make_run("Acme Vault", "2.0", day=0)),
        bundle_of(tmp_path, key, make_run("Acme Vault", "2.1", fail=True, day=1)),
        bundle_of(tmp_path, key, make_run("Other Pod Server", "0.9", day=2)),
        bundle_of(tmp_path, key, registered_run("Vendor One", "one-pods", day=3)),
    ]
    site = tmp_path / "site"
    matrix = tmp_path / "matrix.json"
    matrix.write_text(interop_matrix().model_dump_json())
    publish_site(bundles, public_key=key[1], out=site, matrix=matrix)
    walked = 0
    for page in site.rglob("*.html"):
        for link in parse(page).links:
            parts = urlsplit(link)
            assert not parts.scheme and not parts.netloc, f"{page}: {link} is not a relative link"
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            assert target.is_relative_to(site.resolve()) and target.is_file(), f"{page}: {link}"
            if parts.fragment and target.suffix == ".html":
                assert parts.fragment in parse(target).ids, f"{page}: {link}"
            walked += 1
    assert walked > 50


def interop_matrix() -> Matrix:
    """What `testbed matrix` writes: two vendors of one role, one pair, one declared xfail."""
    rows = [
        ImplementationRow(
            name=name,
            vendor=vendor,
            product=f"{vendor} Pods",
            version="3.0",
            role="vault",
            node="welldata-vault",
            reached_by="url https://127.0.0.1:9443",
            run=f"runs/{name}",
            verdict=Verdict.CONFORMS,
            exit_code=0,
            suite_version=SUITE,
            xfail={"VAULT-A-03": "sorts <i>by name</i>"} if name == "two-pods" else {},
            cells={
                "VAULT-A-01": Cell(state="passed"),
                "VAULT-A-03": Cell(state="xfail", xfail="sorts <i>by name</i>")
                if name == "two-pods"
                else Cell(state="passed"),
            },
        )
        for name, vendor in (("one-pods", "Vendor One"), ("two-pods", "Vendor <Two>"))
    ]
    return Matrix(
        title="Vault interop",
        registry="implementations.yaml",
        registry_sha256="f" * 64,
        started=T0,
        runtime="process",
        requirements=[
            MatrixRequirement(id=rid, role="vault", level=level, statement=f"statement of {rid}")
            for rid, level in REQUIREMENTS
        ],
        implementations=rows,
        pairs=[
            PairCell(
                a="one-pods",
                b="two-pods",
                roles=["vault", "vault"],
                how="grant",
                scenario="welldata",
                state="failed",
                passed=3,
                failed=1,
            )
        ],
    )


def test_a_matrix_file_is_rendered_with_its_xfails_and_pairs(tmp_path, key):
    bundle = bundle_of(tmp_path, key, registered_run("Vendor One", "one-pods", day=0))
    matrix = tmp_path / "matrix.json"
    matrix.write_text(interop_matrix().model_dump_json())
    publish_site([bundle], public_key=key[1], out=tmp_path / "site", matrix=matrix)
    text = (tmp_path / "site" / "matrix.html").read_text()
    assert "Vault interop" in text and "Vendor &lt;Two&gt;" in text and "sorts &lt;i&gt;by name&lt;/i&gt;" in text
    assert 'class="cell o-xfail"' in text and "3/4 passed" in text and "one-pods → two-pods" in text
    assert 'href="implementations/vault-' in text and ">one-pods</a>" in text  # published: linked
    assert ">two-pods<br>" in text  # not published: named, not linked
    assert "Requirement by implementation" not in text and "From the published runs" in text


@pytest.mark.parametrize(
    ("content", "problem"),
    [("[1, 2", "not a matrix.json of `testbed matrix`"), ('{"title": "t"}', "registry: Field required")],
)
def test_a_matrix_file_that_is_not_one_is_refused(tmp_path, key, content, problem):
    bundle = bundle_of(tmp_path, key, make_run("Acme Vault", "2.1"))
    matrix = tmp_path / "matrix.json"
    matrix.write_text(content)
    with pytest.raises(PublishError, match=rf"matrix .*matrix\.json: .*{re.escape(problem)}"):
        publish_site([bundle], public_key=key[1], out=tmp_path / "site", matrix=matrix)
    assert not (tmp_path / "site").exists()


def test_a_folder_of_other_files_is_never_replaced(tmp_path, key):
    bundle = bundle_of(tmp_path, key, make_run("Acme Vault", "2.1"))
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("mine")
    with pytest.raises(PublishError, match=r"--out .*docs holds files of something else"):
        publish_site([bundle], public_key=key[1], out=tmp_path / "docs")
    assert [p.name for p in (tmp_path / "docs").iterdir()] == ["notes.txt"]


def test_the_same_run_twice_is_refused(tmp_path, key):
    bundle = bundle_of(tmp_path, key, make_run("Acme Vault", "2.1"))
    copy = tmp_path / "copy.bundle.tar.gz"
    copy.write_bytes(bundle.read_bytes())
    with pytest.raises(PublishError, match=r"copy\.bundle\.tar\.gz holds run .*, as .* does"):
        publish_site([bundle, copy], public_key=key[1], out=tmp_path / "site")


def test_a_run_of_several_roles_gives_each_role_its_own_verdict(tmp_path):
    run = make_run("Acme Vault", "2.1").model_copy(update={"profiles": ["trust", "vault"], "verdict": Verdict.FAILS})
    trust_failure = RequirementCoverage(
        id="TRUST-01", role="trust", level=Level.MUST, statement="s", source="Nuts", outcome=Outcome.FAILED
    )
    run.requirements.append(trust_failure)
    assert role_verdict(run, "trust") is Verdict.FAILS
    assert role_verdict(run, "vault") is Verdict.CONFORMS


def registered_run(vendor: str, name: str, *, day: int) -> RunResults:
    """A `testbed matrix` run: the reference vault registered as one vendor's product, expected
    to fail a SHOULD it does fail."""
    run = make_run("health-network-testbed reference node", "0.1.0", day=day)
    reason = "the pod lists containers <b>in creation order</b>"
    run.registered = [
        RegisteredImplementation(
            name=name,
            vendor=vendor,
            product=f"{vendor} Pods",
            version="3.0",
            role="vault",
            node="welldata-vault",
            reached_by="url https://127.0.0.1:9443",
            xfail={"VAULT-A-03": reason},
        )
    ]
    run.requirements[2].outcome = Outcome.FAILED
    run.requirements[2].xfail = reason
    run.scenarios[0].checks[2].outcome = Outcome.FAILED
    run.scenarios[0].checks[2].xfail = {"VAULT-A-03": reason}
    return run


def test_registered_implementations_are_named_by_the_registry_and_their_xfails_shown(tmp_path, key):
    bundles = [
        bundle_of(tmp_path, key, registered_run("Vendor One", "one-pods", day=0)),
        bundle_of(tmp_path, key, registered_run("Vendor Two", "two-pods", day=1)),
    ]
    site = tmp_path / "site"
    assert publish_site(bundles, public_key=key[1], out=site).implementations == 2
    index = (site / "index.html").read_text()
    assert "Vendor One Pods" in index and "by Vendor Two" in index and index.count("1 declared") == 2
    [page, _] = sorted((site / "implementations").iterdir())
    text = page.read_text()
    assert "Reports itself as</dt><dd>health-network-testbed reference node 0.1.0" in text
    assert 'class="cell o-xfail">xfail' in text and "&lt;b&gt;in creation order&lt;/b&gt;" in text
    assert 'id="xfail"' in text and "verdict v-conforms" in text  # a SHOULD expected to fail: still conforms
    matrix = (site / "matrix.html").read_text()
    assert matrix.count('class="cell o-xfail"') == 2
    for certificate in (site / "certificates").iterdir():
        assert "Expected failures" in certificate.read_text()


def test_a_run_without_a_profile_is_refused(tmp_path, key):
    bundle = bundle_of(tmp_path, key, make_run("Acme Vault", "2.1").model_copy(update={"profiles": []}))
    with pytest.raises(PublishError, match=r"refused: run .* replayed no profile"):
        publish_site([bundle], public_key=key[1], out=tmp_path / "site")
    assert not (tmp_path / "site").exists()


def test_a_signed_bundle_with_a_file_outside_its_folder_is_refused(tmp_path, key):
    """Signed does not mean safe to unpack: a name with `..` would land outside the site."""
    from joserfc import jws
    from joserfc.jwk import ECKey

    good = bundle_of(tmp_path, key, make_run("Acme Vault", "2.1"))
    with tarfile.open(good, "r:gz") as tar:
        results = next(m for m in tar.getmembers() if m.name.endswith("/results.json"))
        results_bytes = tar.extractfile(results).read()  # type: ignore[union-attr]
    evil = b"<p>outside</p>"
    digest = {
        name: hashlib.sha256(data).hexdigest() for name, data in (("results.json", results_bytes), ("../x.html", evil))
    }
    manifest = json.dumps({"run_id": "run", "made": "now", "files": digest}).encode()
    signature = jws.serialize_compact({"alg": "ES256"}, manifest, ECKey.import_key(key[0].read_bytes())).encode()
    crafted = tmp_path / "crafted.bundle.tar.gz"
    with tarfile.open(crafted, "w:gz") as tar:
        for name, data in (("results.json", results_bytes), ("../x.html", evil), ("manifest.json", manifest)):
            info = tarfile.TarInfo(f"run/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("run/manifest.jws")
        info.size = len(signature)
        tar.addfile(info, io.BytesIO(signature))
    with pytest.raises(PublishError, match=r"crafted\.bundle\.tar\.gz refused: it holds a file named '\.\./x\.html'"):
        publish_site([crafted], public_key=key[1], out=tmp_path / "site")
    assert not (tmp_path / "site").exists() and not (tmp_path / "x.html").exists()


def test_a_missing_public_key_is_named(tmp_path, key):
    bundle = bundle_of(tmp_path, key, make_run("Acme Vault", "2.1"))
    with pytest.raises(PublishError, match=r"--public-key .*nowhere\.pem: no such file"):
        publish_site([bundle], public_key=tmp_path / "nowhere.pem", out=tmp_path / "site")
