"""The network's certificate authority: every node serves HTTPS with a certificate from it,
and every client (harness and nodes alike) trusts it and nothing else."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from testbed.errors import TestbedError

VALIDITY = dt.timedelta(days=7)
CA_VALIDITY = dt.timedelta(days=365)


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    ca: Path


class NetworkCA:
    """A fresh CA per run; its private key stays in the run's state folder."""

    def __init__(self, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, cert_path: Path):
        self._cert = cert
        self._key = key
        self.cert_path = cert_path

    @classmethod
    def open(cls, directory: Path, network_name: str) -> NetworkCA:
        """The CA kept in `directory`, created there first if it has none. Keeping one CA
        across runs lets an implementation under test trust it once."""
        cert_path, key_path = directory / "ca.pem", directory / "ca-key.pem"
        if not cert_path.exists():
            return cls.create(directory, network_name)
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise TestbedError(f"{directory}: not a usable CA (ca.pem and ca-key.pem): {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TestbedError(f"{key_path}: expected an EC private key")
        if cert.not_valid_after_utc < dt.datetime.now(dt.UTC) + dt.timedelta(hours=1):
            raise TestbedError(
                f"{cert_path}: the CA certificate expires within the hour; remove {directory} to make a new one"
            )
        return cls(cert, key, cert_path)

    @classmethod
    def create(cls, directory: Path, network_name: str) -> NetworkCA:
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "health-network-testbed"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"{network_name} network CA"),
            ]
        )
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        cert_path = directory / "ca.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_private_key(directory / "ca-key.pem", key)
        return cls(cert, key, cert_path)

    def issue(self, directory: Path, common_name: str, hosts: list[str]) -> TlsFiles:
        """A certificate valid for server and client use (the latter for mutual TLS)."""
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name(
                    [
                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "health-network-testbed"),
                        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                    ]
                )
            )
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.SubjectAlternativeName(_alt_names(hosts)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        files = TlsFiles(cert=directory / "cert.pem", key=directory / "key.pem", ca=self.cert_path)
        files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_private_key(files.key, key)
        return files


def write_trust_bundle(path: Path, ca: NetworkCA, extra_bundles: list[Path]) -> Path:
    """One PEM file with the network CA and the CAs of implementations under test: what
    the harness and every reference node trust."""
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = [ca.cert_path.read_text(encoding="ascii")]
    for bundle in extra_bundles:
        try:
            parts.append(bundle.read_text(encoding="ascii"))
        except (OSError, UnicodeDecodeError) as exc:
            raise TestbedError(f"ca_bundle {bundle}: cannot read it: {exc}") from exc
    path.write_text("\n".join(p.strip() + "\n" for p in parts), encoding="ascii")
    return path


def _alt_names(hosts: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _write_private_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.touch(mode=0o600)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
