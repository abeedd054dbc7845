"""Signing keys of a trust node's subjects.

Keys are P-256, derived from the network seed, the node and the subject, so one seed gives
the same keys in every run. They are derived inside the node and never served."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey

ALGORITHM = "ES256"
_P256_ORDER = int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16)


def derive_key(seed: str, node: str, subject: str) -> ECKey:
    material = hashlib.sha512(f"key|{seed}|{node}|{subject}".encode()).digest()
    scalar = int.from_bytes(material, "big") % (_P256_ORDER - 1) + 1
    return ECKey.import_key(ec.derive_private_key(scalar, ec.SECP256R1()))


def public_jwk(key: ECKey) -> dict[str, str]:
    return {k: str(v) for k, v in key.as_dict(private=False).items() if k in ("kty", "crv", "x", "y")}
