"""TLS at Traefik: the origin certificate only for the API host; unknown or absent SNI gets no certificate
(`sniStrict` on the default TLS options too, issue 13), so a scanner cannot learn what the origin serves."""

from __future__ import annotations

import socket
import ssl

import pytest

from tests.edge.harness import API_HOST, Traefik

pytestmark = pytest.mark.edge


def handshake(traefik: Traefik, server_hostname: str | None) -> dict[str, object] | None:
    """The peer certificate Traefik presents for `server_hostname` (None: send no SNI), unverified."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", traefik.tls_port), timeout=10) as sock,
        ctx.wrap_socket(sock, server_hostname=server_hostname) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    return {"der": der} if der else None


def test_the_api_host_gets_the_origin_certificate(edge: Traefik) -> None:
    cert = handshake(edge, API_HOST)
    assert cert is not None
    assert cert["der"] == ssl.PEM_cert_to_DER_cert(edge.cert.read_text())


@pytest.mark.parametrize("name", ["unknown.example.test", "localhost", "127.0.0.1", None], ids=str)
def test_unknown_or_missing_sni_gets_no_certificate(edge: Traefik, name: str | None) -> None:
    with pytest.raises(ssl.SSLError):
        handshake(edge, name)
