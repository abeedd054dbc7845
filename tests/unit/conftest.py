"""Fixtures the unit tests share: the requirement catalogue and the reference network, each
read once per session."""

from __future__ import annotations

import pytest

from testbed.conformance.catalogue import Catalogue
from testbed.topology import Network, load_network
from tests.conftest import REFERENCE_NETWORK


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return Catalogue.load()


@pytest.fixture(scope="session")
def network() -> Network:
    return load_network(REFERENCE_NETWORK).network
