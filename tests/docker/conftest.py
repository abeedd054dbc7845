"""Docker tests run where a Docker Engine answers; elsewhere they skip and say why. The node
image is built (offline, `make images`) once per session when it is missing or stale."""

from __future__ import annotations

import shutil

import pytest

from testbed.images import ImageError, ensure_node_image
from testbed.runtime.docker import DockerUnavailable, docker_client


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        docker_client()
    except DockerUnavailable as exc:
        skip = pytest.mark.skip(reason=f"needs a Docker Engine, and none answers on this machine ({exc})")
        for item in items:
            if "tests/docker" in str(item.fspath):
                item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def node_image() -> str:
    if shutil.which("mmdebstrap") is None:
        pytest.skip("the node image is built from an mmdebstrap base: apt-get install mmdebstrap")
    try:
        return ensure_node_image(progress=lambda _: None)
    except ImageError as exc:
        pytest.fail(f"the node image could not be built: {exc}")
