"""A private CA made at test time with ``cryptography``, the certificates it issues, and a TLS
receiver that may demand a client certificate signed by a given CA."""

from __future__ import annotations

import contextlib
import http.server
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "postback tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class Issued:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def key_pem(self) -> str:
        return _key_pem(self.key)

    @property
    def cert_pem(self) -> str:
        return cert_pem(self.cert)

    @property
    def identity(self) -> str:
        """Key then certificate, in one PEM: what an endpoint's mTLS identity holds."""
        return self.key_pem + self.cert_pem


class CertificateAuthority:
    def __init__(self, name: str = "postback test CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
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
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )

    @property
    def pem(self) -> str:
        return cert_pem(self.cert)

    def issue(
        self,
        common: str,
        *,
        server: bool = False,
        not_after: datetime | None = None,
        not_before: datetime | None = None,
    ) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - timedelta(hours=1))
            .not_valid_after(not_after or now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        return Issued(key, builder.sign(self.key, hashes.SHA256()))


def server_context(
    tmp: Path, ca: CertificateAuthority, *, client_ca: CertificateAuthority | None = None
) -> ssl.SSLContext:
    """A receiver's TLS: a certificate for 127.0.0.1/localhost issued by ``ca``; with
    ``client_ca``, a client certificate signed by it is required."""
    issued = ca.issue("receiver", server=True)
    path = tmp / f"receiver-{id(issued)}.pem"
    path.write_text(issued.identity)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(path)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=client_ca.pem)
    return context


def _linger(tls: ssl.SSLSocket) -> None:
    """Shut our side of a refused connection and drain the client's, for up to a second."""
    with contextlib.suppress(OSError):
        tls.shutdown(socket.SHUT_WR)  # the TLS layer is dropped: plain socket from here
        tls.settimeout(1)
        while tls.recv(65536):
            pass
    with contextlib.suppress(OSError):
        tls.close()


class TlsReceiver:
    """An https receiver answering ``route``'s status and text, recording each request and
    the client certificate's subject. Blocking sockets (http.server), not asyncio: an asyncio
    server aborts a refused TLS connection without sending its alert, so a client would see
    only a reset, where real servers (nginx, Envoy, Java) tell it why."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._routes: dict[str, tuple[int, str]] = {}
        self._received: list[tuple[str, dict[str, str], bytes]] = []
        self.client_subjects: list[str] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                cert = self.connection.getpeercert()  # type: ignore[attr-defined]
                with receiver._lock:
                    receiver._received.append((self.path, dict(self.headers.items()), body))
                    if cert:
                        subject = dict(pair[0] for pair in cert.get("subject", ()))
                        receiver.client_subjects.append(subject.get("commonName", ""))
                status, text = receiver._routes.get(self.path, (404, "no such route"))
                data = text.encode()
                self.send_response(status)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: object) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def finish_request(self, request: Any, client_address: Any) -> None:
                # The handshake in the connection's own thread, and a refusal closed as
                # nginx closes it (lingering): the alert written, our side shut, what the
                # client sent meanwhile read and dropped, then close. Under TLS 1.3 a client
                # writes its request before it learns its certificate was refused; closing
                # with those bytes unread sends a reset, which can reach the client before
                # the alert does and erase it.
                tls = context.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
                try:
                    tls.settimeout(10)
                    tls.do_handshake()
                except (ssl.SSLError, OSError):
                    _linger(tls)
                    return
                super().finish_request(tls, client_address)

            def handle_error(self, *_: object) -> None:
                pass  # refused handshakes are the point of some tests

        self._server = Server(("127.0.0.1", 0), Handler)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def route(self, path: str, status: int = 200, text: str = "ok") -> str:
        self._routes[path] = (status, text)
        return self.url + path

    def received(self, path: str | None = None) -> list[tuple[str, dict[str, str], bytes]]:
        with self._lock:
            return [r for r in self._received if path is None or r[0] == path]

    def __enter__(self) -> TlsReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)
