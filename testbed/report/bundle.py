"""A signed bundle of a run's reports, for publishing conformance results: the report folder
frozen into one .tar.gz with a manifest (the SHA-256 of every file) and a detached JWS (ES256)
over the manifest, made with the publisher's key. Anyone with the publisher's public key can
check that no file was changed, added or removed since.

    testbed bundle reports/<run-id> --key publisher.pem     -> reports/<run-id>.bundle.tar.gz
    testbed verify-bundle reports/<run-id>.bundle.tar.gz --public-key publisher.pub.pem
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

MANIFEST, SIGNATURE = "manifest.json", "manifest.jws"


class BundleError(Exception):
    """The bundle cannot be made or does not verify; the message says why."""


def new_key(path: Path) -> Path:
    """A P-256 key pair for signing bundles: `path` (private, PEM) and `<path>.pub.pem`."""
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)
    public = path.with_name(path.name.removesuffix(".pem") + ".pub.pem")
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return public


def make_bundle(report_dir: Path, key_file: Path, out: Path | None = None) -> Path:
    if not (report_dir / "results.json").is_file():
        raise BundleError(f"{report_dir} is not a run's report folder (it has no results.json)")
    files = sorted(p for p in report_dir.rglob("*") if p.is_file())
    manifest = {
        "run_id": report_dir.name,
        "made": datetime.now(UTC).isoformat(),
        "files": {str(p.relative_to(report_dir)): _sha256(p.read_bytes()) for p in files},
    }
    manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode()
    signature = jws.serialize_compact({"alg": "ES256", "typ": "manifest+jws"}, manifest_bytes, _private_key(key_file))
    out = out or report_dir.with_name(f"{report_dir.name}.bundle.tar.gz")
    with tarfile.open(out, "w:gz") as tar:
        for path in files:
            tar.add(path, arcname=f"{report_dir.name}/{path.relative_to(report_dir)}")
        _add_bytes(tar, f"{report_dir.name}/{MANIFEST}", manifest_bytes)
        _add_bytes(tar, f"{report_dir.name}/{SIGNATURE}", signature.encode())
    return out


def verify_bundle(bundle: Path, public_key_file: Path) -> dict[str, Any]:
    """The manifest, when the signature holds and every file matches it; else BundleError."""
    try:
        with tarfile.open(bundle, "r:gz") as tar:
            contents = {m.name.split("/", 1)[1]: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    except (OSError, tarfile.TarError, IndexError) as exc:
        raise BundleError(f"{bundle} is not a readable bundle: {exc}") from exc
    if MANIFEST not in contents or SIGNATURE not in contents:
        raise BundleError(f"{bundle} has no {MANIFEST} and {SIGNATURE}")
    try:
        verified = jws.deserialize_compact(contents[SIGNATURE], _public_key(public_key_file))
    except (JoseError, ValueError) as exc:
        raise BundleError(f"the signature does not verify with {public_key_file}: {exc}") from exc
    if verified.payload != contents[MANIFEST]:
        raise BundleError("the signed manifest is not the manifest in the bundle")
    manifest: dict[str, Any] = json.loads(verified.payload)
    listed = manifest["files"]
    present = {name for name in contents if name not in (MANIFEST, SIGNATURE)}
    changed = [name for name, digest in listed.items() if name in contents and _sha256(contents[name]) != digest]
    missing, added = sorted(set(listed) - present), sorted(present - set(listed))
    if changed or missing or added:
        raise BundleError(
            f"the bundle does not match its manifest: changed {changed}, missing {missing}, added {added}"
        )
    return manifest


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _private_key(path: Path) -> ECKey:
    try:
        return ECKey.import_key(path.read_bytes())
    except (OSError, ValueError, JoseError) as exc:
        raise BundleError(f"{path}: not a readable EC private key (PEM): {exc}") from exc


def _public_key(path: Path) -> ECKey:
    try:
        return ECKey.import_key(path.read_bytes())
    except (OSError, ValueError, JoseError) as exc:
        raise BundleError(f"{path}: not a readable EC public key (PEM): {exc}") from exc
