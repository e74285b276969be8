"""STARTTLS with a self-signed CA, and AUTH, against a real aiosmtpd server."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.smtp import AuthResult, LoginPassword
from mailserver import MailServer

from digest.adapters.smtp import send_one
from digest.core.config import SMTPConfig
from digest.core.errors import SendError

MESSAGE = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nbody\r\n"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[MailServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    seen: list[tuple[str, str]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword):
            seen.append((data.login.decode(), data.password.decode()))
            return AuthResult(success=data.login == b"author" and data.password == b"s3cret", handled=False)
        return AuthResult(success=False, handled=False)

    server = MailServer(tls_context=context, require_starttls=True, authenticator=authenticator, auth_require_tls=True)
    server.seen_logins = seen  # type: ignore[attr-defined]
    server.start()
    yield server
    server.stop()


def smtp(server: MailServer, **kw: Any) -> SMTPConfig:
    return SMTPConfig(host="127.0.0.1", port=server.port, security="starttls", timeout_seconds=5, **kw)


def test_self_signed_server_is_refused_without_its_ca(tls_server: MailServer) -> None:
    with pytest.raises(SendError, match="TLS certificate not trusted"):
        send_one(smtp(tls_server), "a@example.com", "b@example.org", MESSAGE)
    assert tls_server.received == []


def test_configured_ca_and_auth(tls_server: MailServer, ca: trustme.CA, tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    reply = send_one(smtp(tls_server, ca_file=str(ca_file), username="author", password="s3cret"),
                     "a@example.com", "b@example.org", MESSAGE)
    assert reply.code == 250
    assert tls_server.seen_logins == [("author", "s3cret")]  # type: ignore[attr-defined]
    assert len(tls_server.received) == 1


def test_wrong_password_is_one_clear_error(tls_server: MailServer, ca: trustme.CA, tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with pytest.raises(SendError, match="login refused: 535"):
        send_one(smtp(tls_server, ca_file=str(ca_file), username="author", password="wrong"), "a@example.com",
                 "b@example.org", MESSAGE)


def test_missing_password_variable(tls_server: MailServer, ca: trustme.CA, tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with pytest.raises(SendError, match="no password: set the environment variable DIGEST_SMTP_PASSWORD"):
        send_one(smtp(tls_server, ca_file=str(ca_file), username="author", password_env="DIGEST_SMTP_PASSWORD"),
                 "a@example.com", "b@example.org", MESSAGE)


def test_plain_connection_to_a_starttls_only_server_is_refused(tls_server: MailServer) -> None:
    config = SMTPConfig(host="127.0.0.1", port=tls_server.port, security="none", timeout_seconds=5)
    reply = send_one(config, "a@example.com", "b@example.org", MESSAGE)
    assert reply.code == 530 and tls_server.received == []
