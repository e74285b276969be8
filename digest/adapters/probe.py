"""Probe the [smtp] relay without sending: connect, TLS, login, QUIT. Adapter (SMTP).

It reuses the sender's own pieces (adapters/smtp.py: the verified TLS context, the one
AUTH attempt, the translation of failures into words), so that what the doctor finds is
what `digest send` will meet.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import replace

from ..core.config import SMTPConfig
from ..core.errors import SendError
from ..core.relay import RelayProbe
from .smtp import explain_failure, login_once, tls_context


def probe_relay(config: SMTPConfig) -> RelayProbe:
    """What connecting to the relay finds; no MAIL command is ever given."""
    base = RelayProbe(config.host, config.port, config.security)
    where = f"{config.host}:{config.port}"
    client: smtplib.SMTP | None = None
    stage = "connect"
    try:
        if config.security == "ssl":
            context = tls_context(config)  # a ca_file that cannot be loaded is a TLS finding
            client = smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout_seconds, context=context)
        else:
            client = smtplib.SMTP(config.host, config.port, timeout=config.timeout_seconds)
        client.ehlo()
        offered = bool(client.has_extn("starttls"))
        base = replace(base, starttls_offered=offered)
        if config.security == "starttls":
            stage = "tls"
            if not offered:
                return replace(base, stage=stage, error="the relay does not offer STARTTLS")
            client.starttls(context=tls_context(config))
            client.ehlo()
        version = str(client.sock.version()) if isinstance(client.sock, ssl.SSLSocket) else ""
        base = replace(base, tls_version=version, auth_offered=str(client.esmtp_features.get("auth", "")))
        stage = "login"
        return replace(base, login=_try_login(client, config))
    except SendError as exc:
        return replace(base, stage="tls", error=exc.message.removeprefix(f"SMTP {config.host}: "))
    except (smtplib.SMTPException, OSError) as exc:
        text = explain_failure(exc, config, where).message.removeprefix(f"SMTP {where}: ")
        if stage == "login":
            return replace(base, login=f"the connection failed during login: {text}")
        return replace(base, stage="tls" if isinstance(exc, ssl.SSLError) else stage, error=text)
    finally:
        if client is not None:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()


def _try_login(client: smtplib.SMTP, config: SMTPConfig) -> str:
    """"" with no username; "ok"; else why the login failed."""
    if not config.username:
        return ""
    if config.password is None:
        return f"no password: the environment variable {config.password_env or '([smtp] password_env)'} is not set"
    try:
        login_once(client, config.username, config.password)
    except smtplib.SMTPAuthenticationError as exc:
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"login refused: {exc.smtp_code} {' '.join(text.split())}"
    except smtplib.SMTPNotSupportedError as exc:
        return f"login not possible: {exc}"
    return "ok"
