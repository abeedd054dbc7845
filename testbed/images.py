"""`make images`: the reference node image, built here without pulling anything.

1. A base image: with `--base NAME` any image with Python 3.11 (for instance the official
   python:3.11-slim, for machines that can pull); by default a Debian bookworm root file
   system made with mmdebstrap from Debian's packages and brought in with `docker import`.
2. Wheels of the project and every dependency, built on this machine (pip, from the package
   index), so that the image build itself runs with no network at all.
3. `docker build --network none` of docker/Dockerfile on that base.

The node image is tagged with a hash of its inputs (the Dockerfile, the base, the project's
sources and pyproject.toml): with unchanged inputs nothing is rebuilt."""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from docker.errors import APIError, BuildError, ImageNotFound

import docker
from testbed.runtime.docker import DockerUnavailable, docker_client

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "docker" / "Dockerfile"
NODE_IMAGE = "health-testbed-node"
DEBIAN_BASE = "health-testbed-base:bookworm"
MMDEBSTRAP = ["mmdebstrap", "--variant=apt", "--include=python3,python3-venv,ca-certificates", "bookworm"]
LABEL = "health-testbed.inputs"
SOURCES = ("nodes", "protocols", "testbed", "pyproject.toml", "README.md")


class ImageError(Exception):
    """The image could not be built; the message says what to do."""


def inputs_hash(base: str) -> str:
    digest = hashlib.sha256()
    digest.update(DOCKERFILE.read_bytes())
    digest.update(base.encode())
    for path in _source_files():
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_node_image(base: str | None = None, progress: Callable[[str], None] = print) -> str:
    """The node image's tag, built if its inputs changed since the last build."""
    client = _client()
    base = base or ensure_debian_base(client, progress)
    digest = inputs_hash(base)
    tag = f"{NODE_IMAGE}:{digest[:12]}"
    if _exists(client, tag):
        progress(f"{tag} is up to date (inputs unchanged): nothing to build")
        client.images.get(tag).tag(NODE_IMAGE, "latest")
        return tag
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="testbed-image-") as scratch:
        context = Path(scratch)
        _wheels(context / "wheels", progress)
        shutil.copy(DOCKERFILE, context / "Dockerfile")
        progress(f"building {tag} on {base}, with no network")
        try:
            image, _ = client.images.build(
                path=str(context),
                tag=tag,
                buildargs={"BASE": base},
                network_mode="none",
                labels={LABEL: digest},
                rm=True,
            )
        except BuildError as exc:
            said = "".join(str(line.get("stream", line.get("error", ""))) for line in exc.build_log)[-2000:]
            raise ImageError(f"docker build failed: {exc.msg}\n{said}") from exc
    image.tag(NODE_IMAGE, "latest")
    progress(f"built {tag} in {time.monotonic() - started:.0f} s")
    return tag


def ensure_debian_base(client: docker.DockerClient, progress: Callable[[str], None] = print) -> str:
    """A Debian base image made from Debian's packages, unless it exists already."""
    if _exists(client, DEBIAN_BASE):
        return DEBIAN_BASE
    if shutil.which("mmdebstrap") is None:
        raise ImageError(
            "mmdebstrap is needed to make a base image without a registry: `apt-get install mmdebstrap`, "
            "or pass --base with an image you have (e.g. python:3.11-slim where you can pull)"
        )
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="testbed-rootfs-") as scratch:
        rootfs = Path(scratch) / "rootfs.tar"
        progress(f"making a Debian bookworm root file system with mmdebstrap (about half a minute): {rootfs}")
        done = subprocess.run([*MMDEBSTRAP, str(rootfs)], capture_output=True, text=True)
        if done.returncode != 0:
            raise ImageError(f"mmdebstrap failed:\n{done.stderr[-2000:]}")
        repository, tag = DEBIAN_BASE.split(":")
        client.api.import_image_from_file(str(rootfs), repository=repository, tag=tag)
    progress(f"imported {DEBIAN_BASE} in {time.monotonic() - started:.0f} s")
    return DEBIAN_BASE


def _wheels(folder: Path, progress: Callable[[str], None]) -> None:
    """Wheels of every dependency (one folder) and of the project (another), for the build."""
    progress("building wheels of the project and its dependencies (pip)")
    # A fixed date makes the project's wheel the same bytes for the same sources.
    environment = {**os.environ, "SOURCE_DATE_EPOCH": "1767225600"}
    # Built from a copy of the sources: a build writes its build/ folder there, not into the checkout.
    sources = folder / "src"
    for path in _source_files():
        (sources / path.relative_to(ROOT)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, sources / path.relative_to(ROOT))
    everything = folder / "all"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(everything), str(sources)],
        capture_output=True,
        text=True,
        env=environment,
    )
    if done.returncode != 0:
        raise ImageError(f"pip could not build the wheels:\n{done.stderr[-2000:]}")
    shutil.rmtree(sources)
    (folder / "deps").mkdir(parents=True)
    (folder / "project").mkdir(parents=True)
    for wheel in everything.glob("*.whl"):
        target = "project" if wheel.name.startswith("health_network_testbed-") else "deps"
        shutil.move(str(wheel), folder / target / wheel.name)


def _source_files() -> list[Path]:
    files: list[Path] = []
    for name in SOURCES:
        path = ROOT / name
        if path.is_file():
            files.append(path)
        else:
            files.extend(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return sorted(files)


def _exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except ImageNotFound:
        return False
    return True


def _client() -> docker.DockerClient:
    try:
        return docker_client()
    except DockerUnavailable as exc:
        raise ImageError(str(exc)) from exc


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m testbed.images", description=__doc__)
    parser.add_argument("--base", help="base image with Python 3.11 (default: a Debian base made here)")
    args = parser.parse_args()
    try:
        tag = ensure_node_image(args.base, progress=lambda message: print(f"· {message}", flush=True))
    except (ImageError, APIError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"{tag} (also {NODE_IMAGE}:latest)")


if __name__ == "__main__":
    main()
