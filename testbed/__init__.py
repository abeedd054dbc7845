"""Conformance and load testbed for health-data exchange networks."""

__version__ = "0.1.0"
