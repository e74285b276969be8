"""Fetch a feed, page by page, from a file or over HTTP. Adapter: the only module that
reads feeds from the network. feedparser is handed bytes, never a URL.

HTTP: connect/read timeouts and an overall deadline (deadline.py: it holds while a server
drips its headers or body a byte at a time), gzip/deflate decoded here with caps
on both compressed and decompressed size (a gzip bomb stops at the cap), redirects
followed by hand so that a permanent move is reported, conditional GET with the ETag and
Last-Modified of the previous run, and Blogger's rel="next" paging up to a page cap.
Files: regular files only (not /dev/zero, not a FIFO), read no further than the cap.
"""

from __future__ import annotations

import os
import stat
import time
import zlib
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from ..core.errors import FeedParseError, FetchError
from ..core.models import FeedPage, FeedState, FetchResult, Post
from ..core.parse import FetchOptions, ParseOptions, parse_feed
from ..core.select import dedupe_posts
from .deadline import Deadline

if TYPE_CHECKING:
    import httpx

_MAX_REDIRECTS = 5


def fetch_feed(
    source: str,
    options: FetchOptions,
    *,
    since: datetime | None = None,
    state: FeedState | None = None,
) -> FetchResult:
    """Every post of the feed at `source` (a URL or a path) back to `since` (None: all pages).

    `state` is the previous run's: its validators make the first request conditional. A
    304 answer returns no posts and not_modified=True.
    """
    if not source.startswith(("http://", "https://")):
        return _fetch_file(Path(source), options)
    import httpx  # here: a feed read from a file (a preview of the sample) needs no HTTP client

    timeout = httpx.Timeout(options.timeout_seconds, connect=min(options.timeout_seconds, 10.0))
    headers = {"User-Agent": options.user_agent, "Accept-Encoding": "gzip, deflate",
               "Accept": "application/atom+xml, application/rss+xml, application/xml;q=0.9, */*;q=0.5"}
    posts: list[Post] = []
    warnings: list[str] = []
    new_state = FeedState(url=source)
    title = ""
    url: str | None = blogger_page_url(source, options.page_size)
    pages = 0
    parse = _Parser(options.parse)
    with (Deadline(options.deadline_seconds) as deadline,
          httpx.Client(timeout=timeout, follow_redirects=False, headers=headers, trust_env=False) as client):
        while url is not None:
            if pages >= options.max_pages:
                warnings.append(f"stopped after {options.max_pages} pages ([feed] max_pages)")
                break
            conditional = state if pages == 0 and state and state.url == source else None
            page = _get(client, url, options, deadline, conditional)
            if pages == 0:
                new_state = FeedState(url=source, etag=page.etag, last_modified=page.last_modified, moved_to=page.moved_to)
                if page.moved_to:
                    warnings.append(f"the feed moved permanently to {page.moved_to}: update [feed] url in config.toml")
                if page.not_modified:
                    return FetchResult(posts=(), state=conditional or new_state, not_modified=True, pages=1, warnings=tuple(warnings))
            pages += 1
            parsed = parse(page.body, page.final_url)
            warnings += _bozo_warning(page.final_url, parsed)
            title = title or parsed.title
            posts.extend(parsed.posts)
            url = parsed.next_url
            dates = [p.date for p in parsed.posts if p.date]
            if since is not None and dates and min(dates) <= since:
                break
            if not parsed.posts:
                break
    if not posts:
        raise FeedParseError(source, "the feed has no posts")
    return FetchResult(posts=tuple(dedupe_posts(posts)), state=new_state, pages=pages, warnings=tuple(warnings), title=title)


def blogger_page_url(url: str, page_size: int) -> str:
    """A Blogger feed URL asking for `page_size` posts a page (max-results), unless it asks already."""
    parts = urlsplit(url)
    if "/feeds/" not in parts.path or not page_size:
        return url
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(k == "max-results" for k, _ in query):
        return url
    return urlunsplit(parts._replace(query=urlencode(query + [("max-results", str(page_size))])))


@dataclass
class _Page:
    body: bytes
    final_url: str
    etag: str | None = None
    last_modified: str | None = None
    moved_to: str | None = None
    not_modified: bool = False


def _get(client: httpx.Client, url: str, options: FetchOptions, deadline: Deadline, state: FeedState | None) -> _Page:
    import httpx

    headers = {}
    if state and state.etag:
        headers["If-None-Match"] = state.etag
    if state and state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    moved_to = None
    permanent = True
    for _ in range(_MAX_REDIRECTS + 1):
        deadline.check(url)
        try:
            with client.stream("GET", url, headers=headers, extensions={"trace": deadline.trace}) as response:
                if response.status_code == 304:
                    return _Page(b"", url, not_modified=True, moved_to=moved_to)
                if response.has_redirect_location:
                    target = urljoin(url, response.headers.get("location", ""))
                    if not target.startswith(("http://", "https://")):
                        raise FetchError(url, f"HTTP {response.status_code} redirect to an unusable location")
                    permanent = permanent and response.status_code in (301, 308)
                    url = target
                    moved_to = url if permanent else None
                    continue
                if response.status_code == 410:
                    raise FetchError(url, "HTTP 410 Gone: the feed was removed", hint="check [feed] url in config.toml")
                if response.status_code >= 400:
                    raise FetchError(url, f"HTTP {response.status_code} {response.reason_phrase}", hint="check [feed] url in config.toml")
                body = _read_body(response, url, options, deadline)
                return _Page(body, url, response.headers.get("etag"), response.headers.get("last-modified"), moved_to)
        except httpx.HTTPError as exc:
            deadline.check(url)  # a connection cut at the deadline fails in one of many ways
            if isinstance(exc, httpx.TimeoutException):
                raise FetchError(url, f"no answer within {options.timeout_seconds:g} s ([feed] timeout_seconds)") from exc
            raise FetchError(url, f"cannot fetch: {exc}", hint="check the address and your network") from exc
    raise FetchError(url, f"more than {_MAX_REDIRECTS} redirects")


def _read_body(response: httpx.Response, url: str, options: FetchOptions, deadline: Deadline) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > options.max_bytes:
        raise FetchError(url, f"the feed is {int(declared):,} bytes, over the {options.max_bytes:,} byte cap ([feed] max_bytes)")
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        decoder = zlib.decompressobj()
    elif encoding in ("", "identity"):
        decoder = None
    else:
        raise FetchError(url, f"unsupported Content-Encoding {encoding!r}")
    received = 0
    out = bytearray()
    for chunk in response.iter_raw():  # no chunk size: a size makes httpx wait to fill it
        received += len(chunk)
        if received > options.max_bytes:
            raise FetchError(url, f"the feed is over the {options.max_bytes:,} byte cap ([feed] max_bytes)")
        deadline.check(url)
        if decoder is None:
            out += chunk
            continue
        data = chunk
        while data:
            try:
                piece = decoder.decompress(data, options.max_bytes - len(out) + 1)
            except zlib.error as exc:
                raise FetchError(url, f"the {encoding} body is corrupt: {exc}") from exc
            out += piece
            if len(out) > options.max_bytes:
                raise FetchError(url, f"the feed unpacks to over the {options.max_bytes:,} byte cap ([feed] max_bytes)")
            data = decoder.unconsumed_tail
    deadline.check(url)  # a body that ends with the connection ends early when the deadline cuts it
    return bytes(out)


def _fetch_file(path: Path, options: FetchOptions) -> FetchResult:
    data = _read_file(path, options.max_bytes)
    parsed = _Parser(options.parse)(data, path.resolve().as_uri())
    if not parsed.posts:
        raise FeedParseError(str(path), "the feed has no posts")
    return FetchResult(posts=tuple(dedupe_posts(parsed.posts)), state=FeedState(url=str(path)), pages=1,
                       title=parsed.title, warnings=tuple(_bozo_warning(str(path), parsed)))


class _Parser:
    """parse_feed for every page of one fetch, under one deadline: [feed] parse_seconds for
    the time spent parsing, all pages together (the fetching has its own)."""

    def __init__(self, options: ParseOptions) -> None:
        self.options = options
        self.left = options.deadline_seconds

    def __call__(self, data: bytes, url: str) -> FeedPage:
        if not self.options.deadline_seconds:
            return parse_feed(data, url, self.options)
        start = time.monotonic()
        until = start + self.left
        try:
            return parse_feed(data, url, replace(self.options, expired=lambda: time.monotonic() > until))
        finally:
            self.left -= time.monotonic() - start


def _read_file(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, if it is a regular file of at most `max_bytes`.

    A FIFO would block the open and /dev/zero would never end, so anything else is refused
    before it is opened; O_NONBLOCK and a second look at the open file close the gap in
    which the path could be swapped. The size is checked while reading too: a file can
    grow, and /proc files claim to be empty.
    """
    where = str(path)
    try:
        _require_regular(where, os.stat(path))
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as file:
            info = os.fstat(file.fileno())
            _require_regular(where, info)
            if info.st_size > max_bytes:
                raise FetchError(where, f"the file is {info.st_size:,} bytes, over the {max_bytes:,} byte cap ([feed] max_bytes)")
            data = file.read(max_bytes + 1)
    except FileNotFoundError:
        raise FetchError(where, "no such file", hint="check [feed] url in config.toml or --feed") from None
    except OSError as exc:
        raise FetchError(where, f"cannot read: {exc.strerror}") from exc
    if len(data) > max_bytes:
        raise FetchError(where, f"the file is over the {max_bytes:,} byte cap ([feed] max_bytes)")
    return data


def _require_regular(where: str, info: os.stat_result) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise FetchError(where, "is a folder, not a feed file")
    if not stat.S_ISREG(info.st_mode):
        raise FetchError(where, "is not a regular file (a device, a FIFO or a socket): refused",
                         hint="check [feed] url in config.toml or --feed")


def _bozo_warning(where: str, page: FeedPage) -> list[str]:
    """feedparser reads a malformed feed anyway; the author should still hear of it."""
    if not page.bozo_reason:
        return []
    return [f"{where}: the feed is not well-formed ({page.bozo_reason}); {len(page.posts)} posts read anyway"]
