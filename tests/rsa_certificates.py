"""An RSA key with a certificate from a network CA (which itself has an EC key): what a
client such as nuts-knooppunt holds, for tests of RSA signatures and RSA client certificates."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID


@dataclass(frozen=True)
class RsaCertificate:
    certificate: x509.Certificate
    ca_certificate: x509.Certificate
    key: rsa.RSAPrivateKey

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    @property
    def chain_pem(self) -> bytes:
        """The certificate, then the CA's."""
        return self.certificate.public_bytes(serialization.Encoding.PEM) + self.ca_certificate.public_bytes(
            serialization.Encoding.PEM
        )


def rsa_certificate(ca_dir: Path, *, common_name: str, client_auth: bool = False) -> RsaCertificate:
    """A fresh RSA-2048 key with a day-long certificate from the CA in `ca_dir` (ca.pem and
    ca-key.pem), for localhost; `client_auth` adds the TLS client key usage."""
    ca_certificate = x509.load_pem_x509_certificate((ca_dir / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((ca_dir / "ca-key.pem").read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if client_auth:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return RsaCertificate(certificate=builder.sign(ca_key, hashes.SHA256()), ca_certificate=ca_certificate, key=key)
