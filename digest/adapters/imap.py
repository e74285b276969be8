"""The [inbox] IMAP mailbox, through imap-tools. Adapter: the only module that talks IMAP.

TLS is always verified (ssl.create_default_context, plus [inbox] ca_file when set),
implicit ("ssl", port 993) or by STARTTLS ("starttls", port 143); the password comes
from the environment variable [inbox] password_env. Messages are listed by UID, their
sizes read first (RFC822.SIZE) and only then their bodies, with BODY.PEEK so that the
\\Seen flag stays as it was, in batches. Moving uses UID MOVE (RFC 6851), else UID COPY
and UID EXPUNGE (UIDPLUS), never a plain EXPUNGE, which would also remove whatever
someone else had marked deleted. Every failure is one InboxError naming the host.
"""

from __future__ import annotations

import imaplib
import re
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType

from imap_tools import BaseMailBox, MailBox, MailBoxStartTls
from imap_tools.errors import (
    MailboxFolderSelectError,
    MailboxLoginError,
    MailboxStarttlsError,
    UnexpectedCommandStatusError,
)
from imap_tools.utils import encode_folder

from ..core.config import InboxConfig
from ..core.errors import InboxError

_UID = re.compile(rb"UID (\d+)")
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


class IMAPMailbox:
    """One logged-in session on [inbox] folder: list, size, read and move messages."""

    def __init__(self, config: InboxConfig) -> None:
        self.config = config
        self.where = f"{config.host}:{config.port}"
        self.box: BaseMailBox | None = None
        self.uidvalidity = 0

    def __enter__(self) -> IMAPMailbox:
        self.open()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def open(self) -> None:
        """Connect, secure, log in, make sure done_folder exists, select folder."""
        c = self.config
        if c.password is None:
            raise InboxError(self.where, f"no password: set the environment variable {c.password_env or '([inbox] password_env)'}")
        try:
            self._open(c, c.password)
        except BaseException:
            self.close()
            raise

    def _open(self, c: InboxConfig, password: str) -> None:
        with self._guard("connecting"):
            context = self._context()
            if c.security == "ssl":
                self.box = MailBox(c.host, c.port, timeout=c.timeout_seconds, ssl_context=context)
            else:
                self.box = MailBoxStartTls(c.host, c.port, timeout=c.timeout_seconds, ssl_context=context)
        with self._guard("logging in"):
            if c.username.isascii() and password.isascii():
                self.box.login(c.username, password, initial_folder=None)
            else:
                self.box.login_utf8(c.username, password, initial_folder=None)
            typ, data = self.box.client.capability()  # the list grows after login (MOVE, UIDPLUS)
            if typ == "OK" and data and isinstance(data[-1], bytes):
                self.box.client.capabilities = tuple(data[-1].decode("ascii", "replace").upper().split())
        with self._guard(f"opening the folder {c.done_folder!r}"):
            if not self.box.folder.exists(c.done_folder):
                self.box.folder.create(c.done_folder)
        with self._guard(f"opening the folder {c.folder!r}"):
            self.box.folder.set(c.folder)
            values = self.box.client.untagged_responses.get("UIDVALIDITY") or [b"0"]
            last = values[-1]
            self.uidvalidity = int(last) if isinstance(last, bytes) and last.strip().isdigit() else 0

    def close(self) -> None:
        if self.box is None:
            return
        box, self.box = self.box, None
        try:
            box.logout()
        except (OSError, imaplib.IMAP4.error, UnexpectedCommandStatusError):
            try:
                box.client.shutdown()
            except OSError:
                pass

    def uids(self) -> list[int]:
        """Every message in the folder, oldest first."""
        with self._guard("listing the messages"):
            return sorted(int(u) for u in self._box().uids("ALL", charset=None))  # some servers refuse CHARSET

    def sizes(self, uids: Sequence[int]) -> dict[int, int]:
        """uid -> RFC822.SIZE, for the messages still there."""
        out: dict[int, int] = {}
        for meta, _ in self._fetch(uids, "(UID RFC822.SIZE)", "reading the sizes"):
            uid, size = _UID.search(meta), _SIZE.search(meta)
            if uid and size:
                out[int(uid.group(1))] = int(size.group(1))
        return out

    def headers(self, uids: Sequence[int]) -> dict[int, bytes]:
        """uid -> the Message-ID, From and Subject header lines (for a message too large to read)."""
        return dict(self._bodies(uids, "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID FROM SUBJECT)]", "reading headers"))

    def bodies(self, uids: Sequence[int]) -> dict[int, bytes]:
        """uid -> the whole message, unread flags left as they were."""
        return dict(self._bodies(uids, "BODY.PEEK[]", "reading messages"))

    def move(self, uids: Sequence[int], folder: str) -> None:
        """Move the messages to `folder` (done_folder)."""
        if not uids:
            return
        client = self._box().client
        uid_set, target = ",".join(str(u) for u in uids), encode_folder(folder).decode("ascii")
        with self._guard(f"moving messages to {folder!r}"):
            if "MOVE" in client.capabilities:
                result = client.uid("MOVE", uid_set, target)
                if result[0] == "NO" and b"EXPUNGEISSUED" in b" ".join(x for x in result[1] if isinstance(x, bytes)):
                    # someone else moved some of them meanwhile: once this session has heard of it
                    # (NOOP), UID MOVE passes over the missing UIDs
                    client.noop()
                    result = client.uid("MOVE", uid_set, target)
                _check(result, f"UID MOVE to {folder!r}")
            elif "UIDPLUS" in client.capabilities:
                _check(client.uid("COPY", uid_set, target), f"UID COPY to {folder!r}")
                _check(client.uid("STORE", uid_set, "+FLAGS.SILENT", r"(\Deleted)"), "UID STORE")
                _check(client.uid("EXPUNGE", uid_set), "UID EXPUNGE")
            else:
                raise InboxError(self.where, "the server offers neither MOVE nor UIDPLUS, so handled mail cannot be "
                                 "moved without touching other messages", hint="use another IMAP server")

    # ---- internals ----

    def _box(self) -> BaseMailBox:
        if self.box is None:
            raise InboxError(self.where, "not connected")
        return self.box

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.config.ca_file:
            try:
                context.load_verify_locations(cafile=self.config.ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise InboxError(self.where, f"cannot load [inbox] ca_file {self.config.ca_file}: {exc}") from exc
        return context

    def _fetch(self, uids: Sequence[int], items: str, what: str) -> Iterator[tuple[bytes, bytes]]:
        """(metadata, literal) of each message of one UID FETCH."""
        if not uids:
            return
        with self._guard(what):
            typ, data = self._box().client.uid("FETCH", ",".join(str(u) for u in uids), items)
            _check((typ, data), f"UID FETCH {items}")
        pending: bytes | None = None
        literal = b""
        for item in data:
            if isinstance(item, tuple):
                if pending is not None:
                    yield pending, literal
                pending, literal = bytes(item[0]), bytes(item[1])
            elif isinstance(item, bytes):
                if pending is not None and item.strip() not in (b")", b""):  # e.g. " UID 5)" after the literal
                    pending += b" " + item
                    yield pending, literal
                    pending = None
                elif pending is not None:
                    yield pending, literal
                    pending = None
                elif item:
                    yield item, b""
        if pending is not None:
            yield pending, literal

    def _bodies(self, uids: Sequence[int], item: str, what: str) -> Iterator[tuple[int, bytes]]:
        for meta, literal in self._fetch(uids, f"(UID {item})", what):
            uid = _UID.search(meta)
            if uid:
                yield int(uid.group(1)), literal

    @contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        """Turn whatever the server, TLS or the network raise into one InboxError line."""
        c = self.config
        try:
            yield
        except InboxError:
            raise
        except ssl.SSLCertVerificationError as exc:
            raise InboxError(self.where, f"TLS certificate not trusted: {exc.verify_message}",
                             hint="fix the server's certificate or set [inbox] ca_file") from exc
        except MailboxLoginError as exc:
            raise InboxError(self.where, f"login refused for {c.username!r}: {_said(exc)}",
                             hint=f"check [inbox] username and the password in {c.password_env}") from exc
        except MailboxStarttlsError as exc:
            raise InboxError(self.where, f"STARTTLS refused: {_said(exc)}", hint="check [inbox] security and port") from exc
        except MailboxFolderSelectError as exc:
            raise InboxError(self.where, f"cannot open the folder {c.folder!r}: {_said(exc)}",
                             hint="check [inbox] folder") from exc
        except ssl.SSLError as exc:
            if doing == "connecting":
                raise InboxError(self.where, f"TLS failed: {exc.reason or exc}",
                                 hint="check [inbox] security and port: 993 is \"ssl\", 143 \"starttls\"") from exc
            raise InboxError(self.where, f"the connection was lost while {doing}: {_said(exc)}",
                             hint="nothing is lost: run digest inbox again") from exc
        except TimeoutError as exc:
            hint = "check [inbox] host, port and security" if doing == "connecting" else "nothing is lost: run digest inbox again"
            raise InboxError(self.where, f"no answer within {c.timeout_seconds:g} s while {doing}", hint=hint) from exc
        except (imaplib.IMAP4.abort, ConnectionError, EOFError, OSError) as exc:
            if doing == "connecting":
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else _said(exc)
                raise InboxError(self.where, f"cannot connect: {reason}", hint="check [inbox] host, port and security") from exc
            raise InboxError(self.where, f"the connection was lost while {doing}: {_said(exc)}",
                             hint="nothing is lost: run digest inbox again") from exc
        except ValueError as exc:  # imap-tools refuses STARTTLS on port 993 this way
            if doing == "connecting":
                raise InboxError(self.where, f"cannot connect: {exc}", hint="check [inbox] security and port") from exc
            raise InboxError(self.where, f"the server's answer while {doing} made no sense: {exc}") from exc
        except (imaplib.IMAP4.error, UnexpectedCommandStatusError) as exc:
            raise InboxError(self.where, f"the server refused {doing}: {_said(exc)}") from exc


def _check(result: tuple[str, list[object]], command: str) -> None:
    if result[0] != "OK":
        raise UnexpectedCommandStatusError(command_result=result, expected="OK")


def _said(exc: BaseException) -> str:
    """What the server said, on one line."""
    result = getattr(exc, "command_result", None)
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], list):
        text = b" ".join(x for x in result[1] if isinstance(x, bytes)).decode("utf-8", "replace")
    else:
        text = str(exc)
    return " ".join(text.split())[:200] or type(exc).__name__
