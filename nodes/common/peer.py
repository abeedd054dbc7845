"""The certificate the TLS client presented, as each request sees it.

uvicorn does not fill in the ASGI TLS extension (`scope["extensions"]["tls"]`), so a handler
could not tell which certificate a request came with. `TlsScopeProtocol` adds it for every
connection; a handler reads it with `client_certificate`."""

from __future__ import annotations

import asyncio
import ssl
from functools import lru_cache
from typing import Any

from cryptography import x509
from starlette.requests import Request
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class TlsScopeProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol on httptools (the parser of uvicorn's standard install), with
    the TLS extension in the scope of every request made over the connection (the
    certificate is the same for all of them)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        extension = tls_extension(transport.get_extra_info("ssl_object"))
        app = self.app

        async def with_tls(scope: dict[str, Any], receive: Any, send: Any) -> None:
            scope.setdefault("extensions", {})["tls"] = extension
            await app(scope, receive, send)

        self.app = with_tls


def tls_extension(connection: ssl.SSLObject | None) -> dict[str, Any]:
    """The fields of the ASGI TLS extension this node can fill in (version 0.2): the client's
    certificate as PEM, first in `client_cert_chain`; an empty chain when there is none."""
    der = connection.getpeercert(binary_form=True) if connection is not None else None
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": None,
        "cipher_suite": None,
    }


def client_certificate(request: Request) -> x509.Certificate | None:
    """The certificate the TLS client presented on this request's connection, if any."""
    chain = request.scope.get("extensions", {}).get("tls", {}).get("client_cert_chain") or []
    return _certificate(chain[0]) if chain else None


@lru_cache(maxsize=256)
def _certificate(pem: str) -> x509.Certificate:
    """Read once per certificate: a connection's every request carries the same one."""
    return x509.load_pem_x509_certificate(pem.encode("ascii"))


def certificate_names(certificate: x509.Certificate) -> set[str]:
    """The host names and addresses a certificate is issued for (its subject alternative names)."""
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(name) for name in names.get_values_for_type(x509.DNSName)} | {
        str(address) for address in names.get_values_for_type(x509.IPAddress)
    }
