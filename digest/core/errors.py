"""Every error blog-digest raises on purpose. Standard library only; no I/O.

The tree (exit code in brackets)::

    DigestError [1]
    ├── ConfigError [3]          config.toml is missing, unreadable or wrong
    ├── TemplateError [3]        a template (yours, in templates_dir) has a mistake: file and line
    ├── InputError [2]           a file or value given on the command line is wrong
    ├── FeedError [4]
    │   ├── FetchError           the feed could not be fetched (network, HTTP status, size)
    │   └── FeedParseError       what was fetched holds no feed
    ├── StoreError [6]           the subscriber database cannot be opened or written
    ├── SendError [5]            the SMTP server cannot be reached or refuses us as a whole
    ├── TokenError [7]           a signed link is forged, expired or for another purpose
    ├── ListenError [8]          `digest serve` cannot listen on its host and port (in use)
    ├── InboxError [9]           the [inbox] IMAP mailbox cannot be read (connect, TLS, login,
    │                            folder, a connection lost mid-read)
    ├── DeliverabilityError [10] a check `digest send` runs first found a problem: nobody was mailed
    └── DNSError [1]             a DNS server does not answer (`digest doctor` reports it as a check)

The CLI (digest/cli/__init__.py, main) turns them into ``Error: <message>`` and
``exit_code``. Where no one is at a terminal they are caught at the edge of the work that
raised them and recorded instead: the web app answers a page (web/app.py), and the jobs that
`digest serve` runs on a timer (the weekly send, the retries, the inbox) log them as one line (the
inbox's outcome is also kept for `digest status`); a single mail that could not leave is logged and the request still
answers.
Failures of single recipients are not exceptions: the sender reports them as data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:  # the checks ride along as data; nothing is imported when the program runs
    from .verdict import Check


class DigestError(Exception):
    """Base of every error the user should see as one line."""

    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(DigestError):
    """config.toml is missing, unreadable, or has a wrong, unknown or missing key."""

    exit_code = 3

    def __init__(self, path: str, message: str, *, key: str | None = None) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.key = key


class TemplateError(DigestError):
    """A template cannot be rendered: a syntax error, a misspelt variable, a missing file."""

    exit_code = 3

    def __init__(self, template: str, line: int | None, message: str) -> None:
        where = f"{template}, line {line}" if line else template
        super().__init__(f"{where}: {message}", hint="fix the template, or remove it to use the built-in one")
        self.template = template
        self.line = line


class InputError(DigestError):
    """A file or value given on the command line is wrong."""

    exit_code = 2


class FeedError(DigestError):
    """The feed could not be turned into posts."""

    exit_code = 4


class FetchError(FeedError):
    """The feed could not be fetched: network, HTTP status, size or time limits."""

    def __init__(self, url: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"{url}: {message}", hint=hint)
        self.url = url


class FeedParseError(FeedError):
    """What was fetched is not a feed (an HTML page, an empty file, garbage)."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(f"{url}: {message}", hint="check [feed] url in config.toml")
        self.url = url


class StoreError(DigestError):
    """The subscriber database cannot be opened, upgraded or written."""

    exit_code = 6


class SendError(DigestError):
    """The SMTP server cannot be used at all (connect, TLS, authentication)."""

    exit_code = 5

    def __init__(self, host: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"SMTP {host}: {message}", hint=hint)
        self.host = host


class TokenError(DigestError):
    """A signed link is forged, tampered with, expired or meant for another purpose."""

    exit_code = 7


class ListenError(DigestError):
    """`digest serve` cannot listen on its host and port: in use, privileged, not local."""

    exit_code = 8

    def __init__(self, host: str, port: int, message: str, *, hint: str | None = None) -> None:
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        super().__init__(f"cannot listen on {where}: {message}", hint=hint)
        self.host = host
        self.port = port


class InboxError(DigestError):
    """The [inbox] IMAP mailbox cannot be read: connect, TLS, login, folder, a lost connection."""

    exit_code = 9

    def __init__(self, host: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"IMAP {host}: {message}", hint=hint)
        self.host = host


class DeliverabilityError(DigestError):
    """A deliverability check (core/deliverability.py) found a problem before a send: nobody
    is mailed until it is fixed. `checks` are the problems found, for the author's mail;
    `unfinished` the recorded issue that was going on (some readers may have it), if any."""

    exit_code = 10

    def __init__(self, message: str, *, hint: str | None = None, checks: tuple[Check, ...] = (),
                 unfinished: int | None = None) -> None:
        super().__init__(message, hint=hint)
        self.checks = checks
        self.unfinished = unfinished


class DNSError(DigestError):
    """A DNS server does not answer, or answers with an error."""

    def __init__(self, server: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"DNS {server}: {message}", hint=hint)
        self.server = server
