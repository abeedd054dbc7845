"""The published results site: signed bundles in, a static site out.

    testbed publish reports/*.bundle.tar.gz --public-key publisher.pub.pem --out site/

Every bundle is verified before anything is written: one that does not verify stops the whole
publication (a site that silently leaves a vendor out is worse than no new site). The site is
made from each bundle's results model only, nothing is re-run: an index of implementations by
role, a conformance statement per implementation with its history across versions, the
interop matrix, SVG badges and a printable certificate for every conforming run. Each bundle's
files are copied under bundles/<run>/ (with the archive itself, so a reader can verify it) and
statements link into them for the evidence. Pages use relative links and inline styles only,
so the folder opens from disk and can be served as it is. Everything read from a bundle is
untrusted text (a vendor names its own product) and is escaped by the templates.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from pydantic import ValidationError

from testbed.errors import TestbedError
from testbed.publish.badges import Standing, badge_svg
from testbed.publish.badges import standing as standing_of
from testbed.publish.matrix_model import ImplementationRow, Matrix, PairCell
from testbed.publish.matrix_model import RequirementRow as MatrixRequirement
from testbed.publish.matrix_report import expected_failures
from testbed.publish.suite import short
from testbed.report.bundle import MANIFEST, SIGNATURE, BundleError, verify_bundle
from testbed.report.html import check_anchor, format_time
from testbed.report.model import (
    ImplementationInfo,
    Level,
    Outcome,
    RegisteredImplementation,
    RequirementCoverage,
    RunResults,
    Verdict,
)

UNKNOWN = "unknown"  # a suite version or an identity a run did not record
SITE_MARKER = "site.json"  # names a folder as one this command wrote, so it may replace it
PUBLIC_KEY_NAME = "publisher.pub.pem"
UNTESTED = "untested"
XFAIL = "xfail"
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_SAFE_FOLDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,100}")  # a run id as runs make them


class PublishError(TestbedError):
    """A bundle, matrix or output folder the site cannot be made from; nothing was written."""


@dataclass(frozen=True)
class Bundle:
    """A verified bundle: its signed files, read into memory, and the run they hold."""

    path: Path
    folder: str  # the bundle's folder in the site, bundles/<folder>/
    files: dict[str, bytes]
    results: RunResults
    suite_version: str


@dataclass(frozen=True)
class EvidenceLink:
    label: str
    href: str  # relative to the site's root


@dataclass(frozen=True)
class RequirementRow:
    id: str
    level: Level
    statement: str
    source: str
    outcome: str  # an Outcome's value, "untested", or "xfail" for a declared expected failure that failed
    xfail: str | None  # the reason given for declaring it expected to fail
    evidence: list[EvidenceLink]


@dataclass(frozen=True)
class Statement:
    """What one run says about one implementation of one role: a conformance statement."""

    bundle: Bundle
    role: str
    node: ImplementationInfo | None
    name: str  # what groups runs into one implementation: its registry name, else its product
    product: str  # as the implementations registry declares it, else as the node reported it
    version: str
    vendor: str | None  # known from the implementations registry only
    reported: str | None  # the identity the node itself reported in the run (product and version)
    verdict: Verdict
    requirements: list[RequirementRow]
    files: list[EvidenceLink]  # the bundle's reports and the node's log, relative to the site's root

    @property
    def page(self) -> str:
        return f"statements/{self.bundle.folder}--{_slug(self.role)}.html"

    @property
    def certificate(self) -> str | None:
        return f"certificates/{self.bundle.folder}--{_slug(self.role)}.html" if self.conforms else None

    @property
    def conforms(self) -> bool:
        return standing_of(self.verdict) is Standing.CONFORMS

    @property
    def standing(self) -> str:
        return standing_of(self.verdict).value

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for row in self.requirements:
            found[row.outcome] = found.get(row.outcome, 0) + 1
        return found


@dataclass
class Implementation:
    """One implementation in one role, with every run of it the bundles hold, newest first."""

    role: str
    name: str  # its registry name, else its product
    statements: list[Statement] = field(default_factory=list)

    @property
    def product(self) -> str:
        return self.latest.product

    @property
    def slug(self) -> str:
        return _slug(f"{self.role} {self.name}", unique=f"{self.role}\0{self.name}")

    @property
    def page(self) -> str:
        return f"implementations/{self.slug}.html"

    @property
    def badge(self) -> str:
        return f"badges/{self.slug}.svg"

    @property
    def latest(self) -> Statement:
        return self.statements[0]


@dataclass(frozen=True)
class PublishedSite:
    index: Path
    implementations: int
    bundles: int


def publish_site(bundles: list[Path], *, public_key: Path, out: Path, matrix: Path | None = None) -> PublishedSite:
    """Verify every bundle, then write the site into `out` (replacing a site written there before)."""
    if not bundles:
        raise PublishError("no bundles given: name the .bundle.tar.gz files made by `testbed bundle`")
    if not public_key.is_file():
        raise PublishError(f"--public-key {public_key}: no such file (the publisher's public key, PEM)")
    verified = [read_bundle(path, public_key) for path in bundles]
    _refuse_duplicate_runs(verified)
    matrix_data = read_matrix(matrix) if matrix is not None else None
    implementations = group_implementations(s for bundle in verified for s in statements(bundle))
    _refuse_foreign_folder(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _write_site(staging, verified, implementations, matrix_data=matrix_data, public_key=public_key)
        _replace(out, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return PublishedSite(out / "index.html", len(implementations), len(verified))


# ---- bundles ---------------------------------------------------------------------------------


def read_bundle(path: Path, public_key: Path) -> Bundle:
    """The bundle's run, when its signature holds and every file is as signed."""
    try:
        manifest = verify_bundle(path, public_key)
    except BundleError as exc:
        raise PublishError(f"bundle {path} refused: {_one_line(exc)}") from None
    files = _signed_files(path, manifest)
    if "results.json" not in files:
        raise PublishError(f"bundle {path} refused: it has no results.json")
    results, suite_version = _results(path, files["results.json"])
    if results.kind != "conformance":
        raise PublishError(f"bundle {path} refused: it holds a {results.kind} run; a site publishes conformance runs")
    run_id = str(manifest.get("run_id") or results.run_id)
    folder = run_id if _SAFE_FOLDER.fullmatch(run_id) else _slug(run_id, unique=run_id)
    return Bundle(path, folder, files, results, suite_version)


def _signed_files(path: Path, manifest: dict[str, Any]) -> dict[str, bytes]:
    """The bundle's files, each checked again against the verified manifest as it is read, so
    what the site copies is what was signed even if the file changed after verification."""
    listed: dict[str, str] = manifest["files"]
    files: dict[str, bytes] = {}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar.getmembers():
            name = member.name.split("/", 1)[-1]
            if not member.isfile() or name in (MANIFEST, SIGNATURE):
                continue
            extracted = tar.extractfile(member)
            data = extracted.read() if extracted is not None else b""
            if hashlib.sha256(data).hexdigest() != listed.get(_safe_name(path, name)):
                raise PublishError(f"bundle {path} refused: {name} is not the file its manifest signed")
            files[name] = data
    if set(files) != set(listed):
        raise PublishError(f"bundle {path} refused: its files changed while it was read")
    return files


def _safe_name(path: Path, name: str) -> str:
    """A file name that stays inside the bundle's folder when copied into the site."""
    if "\\" in name or any(part in ("", ".", "..") for part in name.split("/")):
        raise PublishError(f"bundle {path} refused: it holds a file named {name!r}, outside its own folder")
    return name


def _results(path: Path, data: bytes) -> tuple[RunResults, str]:
    try:
        results = RunResults.model_validate_json(data)
    except ValueError as exc:
        raise PublishError(
            f"bundle {path}: its results.json is not a run this testbed reads ({_first_problem(exc)})"
        ) from None
    # Bundles made before reports named their suite version are read as of an unknown one.
    return results, results.suite_version or UNKNOWN


def _refuse_duplicate_runs(bundles: list[Bundle]) -> None:
    seen: dict[str, Path] = {}
    for bundle in bundles:
        if bundle.folder in seen:
            raise PublishError(f"bundle {bundle.path} holds run {bundle.results.run_id}, as {seen[bundle.folder]} does")
        seen[bundle.folder] = bundle.path


def read_matrix(path: Path) -> Matrix:
    try:
        return Matrix.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise PublishError(f"matrix {path}: cannot be read ({_one_line(exc)})") from None
    except ValueError as exc:
        raise PublishError(f"matrix {path}: not a matrix.json of `testbed matrix` ({_first_problem(exc)})") from None


@dataclass(frozen=True)
class InteropView:
    """A matrix.json laid out for its page: a table per role, the pairs by scenario, every
    declared expected failure, and links to the implementations the site also publishes."""

    matrix: Matrix
    roles: list[tuple[str, list[MatrixRequirement], list[ImplementationRow]]]
    scenarios: list[str]
    pairs: list[tuple[PairCell, list[PairCell | None]]]  # a pair's first cell (names, roles), a cell per scenario
    xfails: list[tuple[ImplementationRow, str, str, str]]  # implementation, requirement, state, reason
    pages: dict[tuple[str, str], str]  # (role, registry name) -> its page in the site

    @property
    def suite_versions(self) -> list[str]:
        return sorted({row.suite_version or UNKNOWN for row in self.matrix.implementations})


def interop_view(matrix: Matrix, implementations: list[Implementation]) -> InteropView:
    roles = sorted({row.role for row in matrix.implementations})
    scenarios = sorted({pair.scenario for pair in matrix.pairs})
    cells = {(pair.a, pair.b, pair.scenario): pair for pair in matrix.pairs}
    firsts: dict[tuple[str, str], PairCell] = {}
    for pair in matrix.pairs:
        firsts.setdefault((pair.a, pair.b), pair)
    return InteropView(
        matrix=matrix,
        roles=[(role, [r for r in matrix.requirements if r.role == role], matrix.of_role(role)) for role in roles],
        scenarios=scenarios,
        pairs=[(first, [cells.get((*key, scenario)) for scenario in scenarios]) for key, first in firsts.items()],
        xfails=expected_failures(matrix),
        pages={(i.role, i.name): i.page for i in implementations},
    )


# ---- statements ------------------------------------------------------------------------------


def statements(bundle: Bundle) -> list[Statement]:
    """One statement per role whose profile the run replayed: a conformance statement is made
    from a profile run only, which tests every MUST of its role."""
    results = bundle.results
    if not results.profiles:
        raise PublishError(
            f"bundle {bundle.path} refused: run {results.run_id} replayed no profile; a conformance statement "
            "comes from a profile run (`testbed conformance --profile ROLE`)"
        )
    return [_statement(bundle, role) for role in results.profiles]


def _statement(bundle: Bundle, role: str) -> Statement:
    registered = next((r for r in bundle.results.registered if r.role == role), None)
    node = under_test(bundle.results, role, registered)
    reported = (node.product or node.image or node.public_url) if node else None
    reported_version = node.version if node else None
    product = (registered.product if registered else reported) or UNKNOWN
    return Statement(
        bundle=bundle,
        role=role,
        node=node,
        name=registered.name if registered else product,
        product=product,
        version=(registered.version if registered else reported_version) or UNKNOWN,
        vendor=registered.vendor if registered else None,
        reported=" ".join(part for part in (reported, reported_version) if part) or None,
        verdict=role_verdict(bundle.results, role),
        requirements=[_row(bundle, r) for r in bundle.results.requirements if r.role == role],
        files=_report_links(bundle, node),
    )


def under_test(
    results: RunResults, role: str, registered: RegisteredImplementation | None = None
) -> ImplementationInfo | None:
    """The node of the role the run tested: the one a registered implementation stood in for,
    else one named by url or image (the reference nodes fill the other places), else the
    role's first reference node."""
    of_role = [i for i in results.implementations if i.role == role]
    if registered is not None:
        return next((i for i in of_role if i.node == registered.node), None)
    return next((i for i in of_role if i.kind != "reference"), of_role[0] if of_role else None)


def role_verdict(results: RunResults, role: str) -> Verdict:
    """The run's verdict, narrowed to one role when the run tested several: a failure of one
    role's MUST does not make another role's implementation fail."""
    if len(results.profiles) <= 1 or results.verdict in (Verdict.ERROR, Verdict.INTERRUPTED):
        return results.verdict
    outcomes = {r.outcome for r in results.requirements if r.role == role and r.level is Level.MUST}
    if Outcome.FAILED in outcomes:
        return Verdict.FAILS
    if Outcome.ERROR in outcomes:
        return Verdict.ERROR
    if None in outcomes or Outcome.SKIPPED in outcomes:
        return Verdict.INCOMPLETE
    if results.selection is not None and results.selection.partial:
        return Verdict.INCOMPLETE  # a run of chosen checks never conforms, whatever they found
    return Verdict.CONFORMS


def _row(bundle: Bundle, requirement: RequirementCoverage) -> RequirementRow:
    xfail = _xfail_reason(bundle.results, requirement)
    outcome = requirement.outcome.value if requirement.outcome is not None else UNTESTED
    if xfail and outcome == Outcome.FAILED.value:
        outcome = XFAIL
    return RequirementRow(
        id=requirement.id,
        level=requirement.level,
        statement=requirement.statement,
        source=requirement.source,
        outcome=outcome,
        xfail=xfail,
        evidence=[_evidence_link(bundle, ref) for ref in requirement.checks],
    )


def _xfail_reason(results: RunResults, requirement: RequirementCoverage) -> str | None:
    """Why a requirement was declared expected to fail: on the requirement, or on a check that
    verifies it."""
    if requirement.xfail:
        return requirement.xfail
    refs = set(requirement.checks)
    for scenario, check in results.all_checks():
        if requirement.id in check.xfail and f"{scenario.name}/{check.id}" in refs:
            return check.xfail[requirement.id]
    return None


def _evidence_link(bundle: Bundle, check_ref: str) -> EvidenceLink:
    """A check's evidence: its row in the bundle's HTML report (request, response, log tail),
    or the results.json of a bundle without one."""
    scenario, _, check_id = check_ref.partition("/")
    if "report.html" in bundle.files:
        return EvidenceLink(check_ref, f"bundles/{bundle.folder}/report.html#{check_anchor(scenario, check_id)}")
    return EvidenceLink(check_ref, f"bundles/{bundle.folder}/results.json")


def _report_links(bundle: Bundle, node: ImplementationInfo | None) -> list[EvidenceLink]:
    names = ["report.html", "results.json", "junit.xml", "earl.jsonld", "summary.md"]
    if node is not None:
        names.append(f"logs/{node.node}.log")
    links = [EvidenceLink(name, f"bundles/{bundle.folder}/{name}") for name in names if name in bundle.files]
    return [*links, EvidenceLink("signed bundle", f"bundles/{bundle.folder}.bundle.tar.gz")]


def group_implementations(found: Iterable[Statement]) -> list[Implementation]:
    """Statements grouped by role and product, each group's newest run first."""
    groups: dict[tuple[str, str], Implementation] = {}
    for statement in found:
        key = (statement.role, statement.name)
        groups.setdefault(key, Implementation(statement.role, statement.name)).statements.append(statement)
    for implementation in groups.values():
        implementation.statements.sort(key=lambda s: s.bundle.results.started, reverse=True)
    return [groups[key] for key in sorted(groups)]


# ---- writing ---------------------------------------------------------------------------------


def _write_site(
    root: Path,
    bundles: list[Bundle],
    implementations: list[Implementation],
    *,
    matrix_data: Matrix | None,
    public_key: Path,
) -> None:
    env = _environment()
    by_role: dict[str, list[Implementation]] = {}
    for implementation in implementations:
        by_role.setdefault(implementation.role, []).append(implementation)
    common = {"by_role": by_role, "key_name": PUBLIC_KEY_NAME}
    _render(env, root, "index.html", "index.html", **common)
    interop = interop_view(matrix_data, implementations) if matrix_data is not None else None
    matrix = {"interop": interop, "roles": _bundle_matrix(by_role)}
    _render(env, root, "matrix.html", "matrix.html", **matrix, **common)
    for implementation in implementations:
        _render(env, root, implementation.page, "implementation.html", implementation=implementation, **common)
        (root / implementation.badge).parent.mkdir(exist_ok=True)
        (root / implementation.badge).write_text(
            badge_svg(implementation.latest.verdict, implementation.latest.bundle.suite_version), encoding="utf-8"
        )
        for statement in implementation.statements:
            _render(env, root, statement.page, "statement.html", implementation=implementation, statement=statement)
            if statement.certificate:
                _render(env, root, statement.certificate, "certificate.html", statement=statement, **common)
    for bundle in bundles:
        _copy_bundle(root / "bundles", bundle)
    shutil.copyfile(public_key, root / PUBLIC_KEY_NAME)
    (root / SITE_MARKER).write_text(json.dumps(_site_index(implementations), indent=2) + "\n", encoding="utf-8")


def _render(env: Environment, root: Path, page: str, template: str, **values: Any) -> None:
    target = root / page
    target.parent.mkdir(parents=True, exist_ok=True)
    up = "../" * page.count("/")  # every link in the templates is relative to the site's root
    target.write_text(env.get_template(template).render(root=up, page=page, **values), encoding="utf-8")


def _environment() -> Environment:
    # Autoescaping: product names, statements and messages come from bundles and are untrusted.
    env = Environment(
        loader=PackageLoader("testbed.publish", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=format_time, short=short)
    return env


def _copy_bundle(folder: Path, bundle: Bundle) -> None:
    target = folder / bundle.folder
    for name, data in bundle.files.items():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_bytes(data)
    shutil.copyfile(bundle.path, folder / f"{bundle.folder}.bundle.tar.gz")


@dataclass(frozen=True)
class RoleMatrix:
    """Requirement x implementation for one role, from each implementation's newest run."""

    role: str
    columns: list[Implementation]
    rows: list[tuple[str, Level, list[RequirementRow | None]]]  # requirement id, level, a cell per column
    suite_versions: list[str]  # more than one: the columns are not comparable like for like


def _bundle_matrix(by_role: dict[str, list[Implementation]]) -> list[RoleMatrix]:
    matrices = []
    for role, columns in sorted(by_role.items()):
        cells = [{row.id: row for row in c.latest.requirements} for c in columns]
        levels = {row.id: row.level for c in columns for row in c.latest.requirements}
        rows = [(rid, level, [cell.get(rid) for cell in cells]) for rid, level in levels.items()]
        suites = sorted({c.latest.bundle.suite_version for c in columns})
        matrices.append(RoleMatrix(role, columns, rows, suites))
    return matrices


def _site_index(implementations: list[Implementation]) -> dict[str, Any]:
    """site.json: what the site holds, for a script (and the mark that this command wrote it)."""
    return {
        "implementations": [
            {
                "role": i.role,
                "name": i.name,
                "product": i.product,
                "page": i.page,
                "badge": i.badge,
                "runs": [
                    {
                        "run_id": s.bundle.results.run_id,
                        "version": s.version,
                        "suite_version": s.bundle.suite_version,
                        "verdict": s.verdict.value,
                        "statement": s.page,
                        "certificate": s.certificate,
                    }
                    for s in i.statements
                ],
            }
            for i in implementations
        ]
    }


def _refuse_foreign_folder(out: Path) -> None:
    """Replace only an empty folder or a site this command wrote: never someone's other files."""
    if out.exists() and not out.is_dir():
        raise PublishError(f"--out {out} is a file; give a folder for the site")
    if out.is_dir() and any(out.iterdir()) and not (out / SITE_MARKER).is_file():
        raise PublishError(f"--out {out} holds files of something else (no {SITE_MARKER}); give an empty folder")


def _replace(out: Path, staging: Path) -> None:
    """Swap the finished site into place, so a reader never sees half of one."""
    if out.exists():
        old = staging.with_name(staging.name + ".old")
        out.rename(old)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(out)


def _slug(text: str, unique: str | None = None) -> str:
    """A file name safe on every system, from untrusted text; with a digest of `unique` so that
    names that read the same once cleaned ("A/B" and "A B") stay apart."""
    cleaned = _NOT_SLUG.sub("-", text.lower()).strip("-")[:60] or "x"
    if unique is None:
        return cleaned
    return f"{cleaned}-{hashlib.sha256(unique.encode()).hexdigest()[:8]}"


def _first_problem(exc: ValueError) -> str:
    """Where a file fails its model, in one line: the first problem pydantic found."""
    if isinstance(exc, ValidationError) and exc.errors():
        first = exc.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return _one_line(exc)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
