"""The rules config.toml values follow: types, numeric bounds, URLs, addresses.
Pure core: no network (email-validator runs without DNS), no database, no clock, no file
writes.

Each check returns None for a good value, else the end of the sentence
"config.toml: [table] key has value V, <reason>" that config.py writes, so that every
problem stays one line naming the file, table, key and value. The keys each rule covers
are tables here, not code: a new numeric key needs a line in BOUNDS (tests/test_config.py
fails until it has one).
"""

from __future__ import annotations

import math
import re
import types
import typing
import unicodedata
from dataclasses import dataclass
from email.utils import getaddresses
from typing import Any
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

from .errors import ConfigError

DAY = 86_400.0


def coerce(hint: Any, value: Any, label: str, where: str) -> Any:
    """`value` as the type `hint` names (an int is a float too), or a ConfigError."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
        origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(where, f"{label} has value {value!r}, not a list of strings")
        return tuple(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        try:
            value = float(value)
        except OverflowError:
            raise ConfigError(where, f"{label} has value {value!r}, not a finite number") from None
    if hint in (int, float) and (isinstance(value, bool) or not isinstance(value, hint)):
        kind = "an integer" if hint is int else "a number"
        raise ConfigError(where, f"{label} has value {value!r}, not {kind}")
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(where, f"{label} has value {value!r}, not true or false")
    if hint is str and not isinstance(value, str):
        raise ConfigError(where, f"{label} has value {value!r}, not a string")
    if hint in (int, float) and value < 0:
        raise ConfigError(where, f"{label} has value {value!r}, which is negative")
    return value


@dataclass(frozen=True)
class Bounds:
    """The values a numeric key accepts: from `low` to `high`, finite."""

    low: float
    high: float
    above: bool = False  # the value must be above `low`, not equal to it
    zero: bool = False   # 0 is accepted too, as "off"

    def problem(self, value: float) -> str | None:
        if isinstance(value, float) and not math.isfinite(value):
            return "not a finite number"
        if self.zero and value == 0:
            return None
        if value < self.low or (self.above and value == self.low) or value > self.high:
            return f"not {self.describe()}"
        return None

    def describe(self) -> str:
        low, high = _num(self.low), _num(self.high)
        span = f"above {low} and at most {high}" if self.above else f"between {low} and {high}"
        return f"0 or {span}" if self.zero else span


def _num(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


BOUNDS: dict[tuple[str, str], Bounds] = {
    ("feed", "timeout_seconds"): Bounds(0, DAY, above=True),
    ("feed", "deadline_seconds"): Bounds(0, DAY, above=True),
    ("feed", "parse_seconds"): Bounds(0, DAY, above=True),
    ("feed", "max_bytes"): Bounds(1024, 1_000_000_000),
    ("feed", "max_pages"): Bounds(1, 1000),
    ("feed", "page_size"): Bounds(1, 500, zero=True),  # Blogger's max-results stops at 500; 0: don't ask
    ("newsletter", "max_posts"): Bounds(1, 500),
    ("newsletter", "max_sections"): Bounds(1, 50),
    ("newsletter", "excerpt_chars"): Bounds(20, 5000),
    ("newsletter", "first_issue_days"): Bounds(1, 36_500),  # tests and try-outs use a century: "every post"
    ("newsletter", "thumbnail_width"): Bounds(16, 2000),
    ("schedule", "max_late_hours"): Bounds(0, 24 * 365, above=True),
    ("author", "proof_hours"): Bounds(0, 24 * 6, above=True),  # within the week before the slot
    ("smtp", "port"): Bounds(1, 65535),
    ("smtp", "timeout_seconds"): Bounds(0, DAY, above=True),
    ("smtp", "data_timeout_seconds"): Bounds(0, DAY, above=True),
    ("smtp", "max_per_second"): Bounds(0.01, 10_000, zero=True),  # 0: no ceiling
    ("smtp", "connections"): Bounds(1, 64),
    ("smtp", "retry_window_minutes"): Bounds(0, 24 * 60),  # 0: no waiting within a run
    ("smtp", "retry_interval_minutes"): Bounds(0, 24 * 60, above=True),
    ("smtp", "give_up_hours"): Bounds(0, 24 * 30, above=True),
    ("web", "confirm_hours"): Bounds(0, 24 * 30, above=True),
    ("web", "confirm_resend_minutes"): Bounds(0, 7 * 24 * 60),
    ("web", "ip_limit_per_hour"): Bounds(1, 100_000),
    ("web", "confirm_per_hour"): Bounds(1, 100_000),
    ("web", "preferences_days"): Bounds(0, 3650, above=True),
    ("inbox", "port"): Bounds(1, 65535),
    ("inbox", "poll_minutes"): Bounds(1, 24 * 60, zero=True),  # 0: `digest serve` does not read the inbox
    ("inbox", "max_message_bytes"): Bounds(10_000, 100_000_000),
    ("inbox", "bounce_after"): Bounds(1, 100),
    ("inbox", "timeout_seconds"): Bounds(0, DAY, above=True),
    ("question", "keep_days"): Bounds(1, 36_500),
    ("question", "acknowledge_window_hours"): Bounds(0, 24 * 365, above=True),
    ("question", "acknowledge_per_hour"): Bounds(1, 10_000, zero=True),  # 0: no cap
}

# "link": a page a reader clicks (http or https). "base": the address every link of the
# web app starts with (f"{base}/unsubscribe/...", also written into headers). "origin":
# what a browser sends as Origin. "feed": a link, or a path to a file.
URL_KEYS: dict[tuple[str, str], str] = {
    ("blog", "url"): "link",
    ("blog", "contact_url"): "link",
    ("feed", "url"): "feed",
    ("question", "url"): "link",
    ("web", "base_url"): "base",
    ("web", "allowed_origins"): "origin",
}

# "mailbox": an address with an optional name ("Name <a@b.c>"), for From and Reply-To.
# "mailto": a bare address that also goes into a mailto: link.
ADDRESS_KEYS: dict[tuple[str, str], str] = {
    ("newsletter", "from"): "mailbox",
    ("newsletter", "reply_to"): "mailbox",
    ("newsletter", "unsubscribe_mailto"): "mailto",
    ("newsletter", "return_path"): "mailto",
    ("question", "email"): "mailto",
    ("author", "email"): "mailto",
}

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_NOT_IN_URLS = set(",\"'<>\\`")
_NOT_IN_MAILTO = set("?&%#")  # they would change the mailto: link the address goes into


def _bad_char(value: str) -> bool:
    """Whitespace, control or invisible formatting characters anywhere."""
    return any(c.isspace() or unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in value)


def url_problem(kind: str, value: str) -> str | None:
    """Why `value` is not a good URL of `kind` (see URL_KEYS), or None."""
    if kind == "feed" and not _SCHEME.match(value):
        if not value.strip():
            return "not a URL or a path"
        if any(unicodedata.category(c) == "Cc" for c in value):
            return "a path holding control characters"
        return None
    if _bad_char(value) or any(c in _NOT_IN_URLS for c in value):
        return "not a usable URL: no spaces, commas, quotes, angle brackets or control characters"
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "not an http(s) URL" + (" or a path" if kind == "feed" else "")
    try:
        _ = parts.port  # reading it is the check: urllib raises for a port that is not a number
    except ValueError:
        return "not an http(s) URL: its port is not a number from 1 to 65535"
    if "@" in parts.netloc:
        return "not a usable URL: it names a user before the host"
    if kind == "base":
        if not value.isascii():
            return "not an ASCII URL (write the host in its xn-- form and %-encode the path)"
        if "?" in value or "#" in value:
            return "not a base address: links are made by adding /unsubscribe/... to it, so no ? or #"
    if kind == "origin" and (parts.path not in ("", "/") or "?" in value or "#" in value):
        return "not an origin like 'https://example.com' (no path)"
    return None


def address_problem(kind: str, value: str) -> str | None:
    """Why `value` is not a good address of `kind` (see ADDRESS_KEYS), or None."""
    if any(unicodedata.category(c) == "Cc" for c in value):
        return "which holds a line break or control character"
    found = getaddresses([value])
    if len(found) != 1:
        several = sum(1 for _, addr in found if re.fullmatch(r"[^@\s]+@[^@\s]+", addr)) > 1
        return "not one email address" if several else "not an email address like 'Name <someone@example.com>'"
    name, addr = found[0]
    if kind == "mailto" and (name or addr != value.strip()):
        return "not a bare email address like 'someone@example.com'"
    try:
        validate_email(addr, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        return f"not an email address ({exc})"
    if kind == "mailto" and any(c in _NOT_IN_MAILTO for c in addr):
        return f"not usable in a mailto: link (no {' '.join(sorted(_NOT_IN_MAILTO))})"
    return None
