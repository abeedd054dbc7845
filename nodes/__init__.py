"""Reference implementations of every role in the network, as real HTTPS services."""

__version__ = "0.1.0"
