"""Deliver raw messages over SMTP. Adapter: the only module that talks SMTP.

TLS is always verified (ssl.create_default_context, plus [smtp] ca_file when set);
every command has a timeout, and the wait after the final dot is the long one RFC 5321
asks for, since giving up early there causes duplicates. An address or message that is not
ASCII goes with SMTPUTF8 (RFC 6531) when the server offers it; when it does not, nothing
is sent and InputError says why (smtplib would raise UnicodeEncodeError mid-transaction).
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Callable

from ..core.address import is_plain_address
from ..core.config import SMTPConfig
from ..core.errors import InputError, SendError
from ..core.models import Reply


def tls_context(config: SMTPConfig) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if config.ca_file:
        try:
            context.load_verify_locations(cafile=config.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise SendError(config.host, f"cannot load [smtp] ca_file {config.ca_file}: {exc}") from exc
    return context


def connect(config: SMTPConfig) -> smtplib.SMTP:
    """An open, greeted, secured and logged-in SMTP connection, or SendError."""
    where = f"{config.host}:{config.port}"
    client: smtplib.SMTP | None = None
    try:
        if config.security == "ssl":
            client = smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout_seconds, context=tls_context(config))
        else:
            client = smtplib.SMTP(config.host, config.port, timeout=config.timeout_seconds)
            client.ehlo()
            if config.security == "starttls":
                client.starttls(context=tls_context(config))
                client.ehlo()
        client.ehlo_or_helo_if_needed()
        if config.username:
            if config.password is None:
                raise SendError(where, f"no password: set the environment variable {config.password_env or '([smtp] password_env)'}")
            login_once(client, config.username, config.password)
        return client
    except BaseException as exc:
        if client is not None:
            client.close()
        if isinstance(exc, SendError) or not isinstance(exc, Exception):
            raise
        raise explain_failure(exc, config, where) from exc


def explain_failure(exc: Exception, config: SMTPConfig, where: str) -> SendError:
    """The SendError that explains a failure to connect, secure or log in."""
    waited = f"no answer within {config.timeout_seconds:g} s"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return SendError(where, f"TLS certificate not trusted: {exc.verify_message}",
                         hint="fix the server's certificate or set [smtp] ca_file")
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return SendError(where, f"login refused: {exc.smtp_code} {_text(exc.smtp_error)}",
                         hint="check [smtp] username and the password variable")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return SendError(where, f"the server does not offer this: {exc}", hint="check [smtp] security")
    if isinstance(exc, (socket.timeout, TimeoutError)) or (
            isinstance(exc, smtplib.SMTPServerDisconnected) and isinstance(exc.__context__, TimeoutError)):
        return SendError(where, waited, hint="check [smtp] host and port")  # smtplib wraps a greeting that never came
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return SendError(where, f"the server closed the connection: {exc}", hint="check [smtp] host, port and security")
    return SendError(where, f"cannot connect: {exc}", hint="check [smtp] host, port and security")


def login_once(client: smtplib.SMTP, username: str, password: str) -> None:
    """One AUTH attempt with the best mechanism both sides know. smtplib's login() tries the
    next mechanism after a refusal, which repeats a wrong password (and hung against aiosmtpd)."""
    offered = (client.esmtp_features.get("auth") or "").upper().split()
    client.user, client.password = username, password
    for mechanism, method in (("PLAIN", client.auth_plain), ("LOGIN", client.auth_login)):
        if mechanism in offered:
            client.auth(mechanism, method, initial_response_ok=True)
            return
    raise smtplib.SMTPNotSupportedError(f"no AUTH mechanism we know (the server offers: {' '.join(offered) or 'none'})")


def send_raw(client: smtplib.SMTP, sender: str, recipient: str, message: bytes, data_timeout: float,
             ready: Callable[[], None] | None = None, meanwhile: Callable[[], None] | None = None) -> Reply:
    """Send one message on an open connection; a refusal is a Reply, not an exception.

    Raises SMTPServerDisconnected/OSError only when the connection is gone before the
    final dot (the caller reconnects); a loss after it comes back as after_data=True.
    `ready()` runs before the message is sent: once the envelope is written, while the
    server answers it (PIPELINING), or else after the server's 354. If it raises, the
    connection is dropped unfinished (the server delivers nothing) and the error goes to
    the caller. `meanwhile()` runs once the message is written, before its reply is read.
    """
    options = _mail_options(client, sender, recipient, message)
    if client.has_extn("pipelining"):
        replies = _pipelined_envelope(client, sender, recipient, options, ready)
        ready = None  # done
    else:
        replies = _stepwise_envelope(client, sender, recipient, options)
    for (code, text), stage, ok in zip(replies, ("MAIL", "RCPT", "DATA"), ((250,), (250, 251), (354,)), strict=False):
        if code not in ok:
            if replies[-1][0] == 354:  # a server that accepted DATA without a recipient: end it empty
                client.send(b".\r\n")
                client.getreply()
            _rset(client, code)
            return Reply(code, _text(text), stage)
    payload = _dot_stuff(message)
    _wait_for(client, ready)
    client.send(payload)
    if meanwhile is not None:
        meanwhile()
    sock = client.sock
    try:
        if sock is not None:
            sock.settimeout(data_timeout)
        code, text = client.getreply()
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        return Reply(0, f"connection lost after the final dot: {exc}", "DATA", after_data=True)
    finally:
        if sock is not None and client.sock is not None:
            sock.settimeout(client.timeout)
    return Reply(code, _text(text))


class SMTPConnection:
    """One open SMTP session (the jobs' Connection): send messages, then close."""

    def __init__(self, config: SMTPConfig) -> None:
        self.config = config
        self.client = connect(config)

    @property
    def usable(self) -> bool:
        """False once the server has hung up: the caller opens a new connection."""
        return self.client.sock is not None

    @property
    def smtputf8(self) -> bool:
        """Whether the server takes addresses and headers that are not ASCII (RFC 6531)."""
        return bool(self.client.has_extn("smtputf8"))

    def send(self, sender: str, recipient: str, message: bytes, ready: Callable[[], None] | None = None,
             meanwhile: Callable[[], None] | None = None) -> Reply:
        """Send one message; a refusal or a connection lost mid-message is a Reply."""
        try:
            return send_raw(self.client, sender, recipient, message, self.config.data_timeout_seconds, ready,
                            meanwhile)
        except (smtplib.SMTPException, OSError) as exc:
            return Reply(0, f"connection failed before the end of the message: {exc}", "DATA")

    def close(self) -> None:
        try:
            self.client.quit()
        except (smtplib.SMTPException, OSError):
            self.client.close()


class SMTPMailer:
    """Opens connections to [smtp] (the jobs' Mailer)."""

    def __init__(self, config: SMTPConfig) -> None:
        self.config = config

    def connect(self) -> SMTPConnection:
        return SMTPConnection(self.config)

    def send_one(self, sender: str, recipient: str, message: bytes) -> Reply:
        """One message on a connection of its own: test copies and confirmation mail."""
        return send_one(self.config, sender, recipient, message)


def send_one(config: SMTPConfig, sender: str, recipient: str, message: bytes) -> Reply:
    """Open a connection, send one message, close: for test copies and confirmation mail."""
    client = connect(config)
    try:
        return send_raw(client, sender, recipient, message, config.data_timeout_seconds)
    except (smtplib.SMTPException, OSError) as exc:
        raise SendError(f"{config.host}:{config.port}", f"connection failed while sending: {exc}") from exc
    finally:
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()


def _mail_options(client: smtplib.SMTP, sender: str, recipient: str, message: bytes) -> list[str]:
    """The MAIL FROM parameters: SMTPUTF8 (and 8BITMIME) for what is not ASCII, else none.
    Sets the encoding smtplib writes commands in to match."""
    if (sender + recipient).isascii() and message.isascii():
        client.command_encoding = "ascii"
        return []
    if not client.has_extn("smtputf8"):
        raise InputError(f"{recipient}: not ASCII, and the mail server does not offer SMTPUTF8 to carry it")
    client.command_encoding = "utf-8"
    return ["SMTPUTF8"] + (["BODY=8BITMIME"] if client.has_extn("8bitmime") else [])


def _wait_for(client: smtplib.SMTP, ready: Callable[[], None] | None) -> None:
    """Run `ready()`; if it raises, drop the connection before any message is sent."""
    if ready is None:
        return
    try:
        ready()
    except BaseException:
        client.close()
        raise


def _pipelined_envelope(client: smtplib.SMTP, sender: str, recipient: str, options: list[str],
                        ready: Callable[[], None] | None = None) -> list[tuple[int, bytes]]:
    """MAIL, RCPT and DATA in one write, then `ready()`, then their three replies (RFC
    2920): one round trip instead of three, when the server offers PIPELINING."""
    params = "".join(" " + o for o in options)
    client.send(f"MAIL FROM:{_quote(sender)}{params}\r\nRCPT TO:{_quote(recipient)}\r\nDATA\r\n")
    _wait_for(client, ready)
    replies: list[tuple[int, bytes]] = []
    try:
        while len(replies) < 3:
            replies.append(client.getreply())
    except smtplib.SMTPServerDisconnected:
        if not replies:
            raise
        closed = (421, b"the server closed the connection")  # it answered the others, then hung up
        replies += [closed] * (3 - len(replies))
    return replies


def _stepwise_envelope(client: smtplib.SMTP, sender: str, recipient: str, options: list[str]) -> list[tuple[int, bytes]]:
    """MAIL, RCPT, DATA one at a time, stopping at the first refusal."""
    replies = [client.mail(sender, options)]
    if replies[-1][0] == 250:
        replies.append(client.rcpt(recipient))
        if replies[-1][0] in (250, 251):
            replies.append(client.docmd("DATA"))
    return replies


def _quote(address: str) -> str:
    """smtplib.quoteaddr, without its parseaddr for the plain addresses most are."""
    return f"<{address}>" if is_plain_address(address) else smtplib.quoteaddr(address)


def _rset(client: smtplib.SMTP, code: int) -> None:
    """Reset the transaction so the connection stays usable; a closing server (421) needs none."""
    if code == 421:
        client.close()
        return
    try:
        client.rset()
    except (smtplib.SMTPException, OSError):
        client.close()


def _dot_stuff(message: bytes) -> bytes:
    """The message as DATA carries it (RFC 5321 4.5.2): each line's leading dot doubled, and
    the final dot. A newsletter has no such line (core/message.py encodes them away): the
    replace then counts none and returns the message itself, one pass and no copy."""
    data = message.replace(b"\r\n.", b"\r\n..")
    if data.startswith(b"."):
        data = b"." + data
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _text(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return " ".join(text.split())[:300]
